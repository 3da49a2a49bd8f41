"""The problem ``calibration_split.py`` judges methods on: the saved matrix of a national
build with its kept targets split by whole groups into train / validation / test, the fixed
spine households, the goals' constants, and the build's own files (its published weights,
the inputs' hashes)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from microplex_assets.calibration.matrix import load_saved_matrix
from microplex_assets.sources.soi_bands import SOI_NEEDED
from microplex_assets.targets.registry import DEFAULT_HELD_OUT_GROUPS

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORK_DIR = ROOT / "dagster_home" / "artifacts" / "_work" / "national" / "US" / "latest"
# For a matrix saved before the build kept its own split: the registry's validation groups.
VALIDATION_GROUPS: tuple[str, ...] = DEFAULT_HELD_OUT_GROUPS
# Whole families never used for a choice and outside the donor's SOI tables: EITC (IRS
# Table 2.5 by AGI x children, Historic Table 2 by state, Treasury; income/program, both
# levels) and Medicaid enrollment by state (CMS; a geography family).
TEST_FAMILIES: tuple[str, ...] = ("eitc", "medicaid")
# The SOI tables the synthetic PUF reproduces (synthetic_puf.py: Publication 1304 Tables
# 1.1, 1.2, 1.4 and 2.1); 1.4A and the by-size-of-AGI tables are the same Table 1.4 facts.
DONOR_TABLE_PATTERN = re.compile(
    r"Table (?:1\.1|1\.2|1\.4A?|2\.1)\b|Individual Statistical Tables by Size of Adjusted"
)
MAX_RATIO = 50.0  # goal: max final / design weight
ESS_FLOOR = 0.25  # goal: Kish ESS of the free households / their number
WITHIN = 0.10  # goal: >= 90% of kept targets within 10% relative error
# Diagnostic only: losses also on the targets at least this many households support (cells
# of one to a few records carry most of the validation and test losses).
SUPPORT_FLOOR = 20
SPLITS = ("train", "validation", "test")


# --- the problem and its split -------------------------------------------------------------


@dataclass
class SplitProblem:
    """Kept targets x households, the target table with its ``split``, design weights and
    the fixed (spine) columns."""

    matrix: sp.csr_matrix
    targets: pd.DataFrame  # name, value, is_national, family, group, ..., split
    household_ids: np.ndarray
    design: np.ndarray
    fixed: np.ndarray  # bool per column: spine household, weight held at its design value

    @property
    def values(self) -> np.ndarray:
        return self.targets["value"].to_numpy(dtype=float)

    @property
    def is_national(self) -> np.ndarray:
        return self.targets["is_national"].to_numpy(dtype=bool)

    def mask(self, split: str) -> np.ndarray:
        return (self.targets["split"] == split).to_numpy()

    @property
    def support(self) -> np.ndarray:
        """Households contributing to each target (nonzeros of its row)."""
        return np.diff(self.matrix.indptr)

    @property
    def fixed_weights(self) -> np.ndarray:
        return np.where(self.fixed, self.design, 0.0)

    def merge(self, free_weights: np.ndarray) -> np.ndarray:
        """Full weight vector: fitted free weights, spine weights unchanged."""
        weights = self.fixed_weights
        weights[~self.fixed] = free_weights
        return weights


def spine_columns(household_ids: np.ndarray, design: np.ndarray) -> tuple[np.ndarray, str]:
    """The fixed spine's columns and how they were found.

    ``candidate/spine.py`` appends the spine after the largest candidate household id with
    consecutive ids and (Forbes list) weight 1, and the saved files carry no
    ``is_fixed_spine`` flag: the spine is the trailing run of columns with design weight
    exactly 1 and consecutive ids. Falls back to every weight-1 column if the run is not
    consecutive (said in the returned note)."""
    ones = design == 1.0
    run = 0
    while run < len(design) and ones[len(design) - 1 - run]:
        run += 1
    fixed = np.zeros(len(design), dtype=bool)
    tail = household_ids[len(design) - run :]
    if run and np.all(np.diff(tail) == 1):
        fixed[len(design) - run :] = True
        other = int(ones[: len(design) - run].sum())
        note = (
            f"trailing {run} columns with design weight 1 and consecutive household ids "
            f"{int(tail[0])}-{int(tail[-1])} (after the candidate's largest id "
            f"{int(household_ids[len(design) - run - 1])}); {other} other weight-1 columns"
        )
        return fixed, note
    return ones, "no consecutive trailing run: every weight-1 column treated as fixed"


def donor_families(targets: pd.DataFrame) -> set[str]:
    """Families with a group the synthetic PUF donor was synthesized from: an SOI column
    the donor reproduces (``SOI_NEEDED``; ``count`` is the returns group) or a group from
    the donor's SOI tables. Test must hold none of them."""
    columns = {"returns" if c == "count" else c for c in SOI_NEEDED}
    by_column = targets["group"].str.removeprefix("irs_soi/").isin(columns)
    by_table = targets["table"].fillna("").str.contains(DONOR_TABLE_PATTERN)
    return set(targets.loc[by_column | by_table, "family"])


def choose_split(
    targets: pd.DataFrame,
    validation_groups: tuple[str, ...] = VALIDATION_GROUPS,
    test_families: tuple[str, ...] = TEST_FAMILIES,
) -> np.ndarray:
    """train / validation / test per target; raises if the rules are broken: test holds a
    state-level and a national group, no donor family and no validation group, validation
    holds both levels too."""
    split = np.full(len(targets), "train", dtype=object)
    split[targets["group"].isin(validation_groups).to_numpy()] = "validation"
    test = targets["family"].isin(test_families).to_numpy()
    if (test & (split == "validation")).any():
        raise ValueError("a validation group lies in a test family")
    split[test] = "test"
    leaking = set(test_families) & donor_families(targets)
    if leaking:
        raise ValueError(f"test families {sorted(leaking)} were used to build the donor")
    national = targets["is_national"].to_numpy(dtype=bool)
    for name in ("validation", "test"):
        chosen = split == name
        if not (chosen & national).any() or not (chosen & ~national).any():
            raise ValueError(f"{name} lacks a national or a state-level group")
    return split


def load_problem(work_dir: Path) -> tuple[SplitProblem, str]:
    """The saved matrix with its split and spine (and the note on how the spine was found)."""
    saved = load_saved_matrix(work_dir)
    design = np.load(work_dir / "target_matrix_design_weights.npy").astype(float)
    targets = saved.targets.copy()
    if "split" not in targets or not (targets["split"] == "test").any():
        targets["split"] = choose_split(targets)  # a matrix saved before the build had a test split
    fixed, note = spine_columns(saved.household_ids, design)
    return SplitProblem(saved.matrix, targets, saved.household_ids, design, fixed), note


def split_summary(problem: SplitProblem) -> dict[str, Any]:
    """Per split: targets (national / state) and each group with its target count."""
    t = problem.targets
    summary: dict[str, Any] = {}
    for name in SPLITS:
        part = t[t["split"] == name]
        groups = part.groupby(["family", "group"]).size().reset_index(name="targets")
        summary[name] = {
            "targets": int(len(part)),
            "national": int(part["is_national"].sum()),
            "state": int((~part["is_national"]).sum()),
            f"support_below_{SUPPORT_FLOOR}": int(
                (problem.support[problem.mask(name)] < SUPPORT_FLOOR).sum()
            ),
            "groups": groups.to_dict(orient="records"),
        }
    summary["donor_families"] = sorted(donor_families(t))
    return summary


# --- the build's files --------------------------------------------------------------------


def build_weights(
    work_dir: Path, household_ids: np.ndarray, name: str = "policyengine_us_2024.h5"
) -> np.ndarray | None:
    """The household weights of the work folder's H5 ``name`` (default the build's
    calibrated file) in column order (None without the H5 or for another build's)."""
    path = work_dir / name
    if not path.exists():
        return None
    import h5py

    with h5py.File(path, "r") as f:
        year = sorted(f["household_id"].keys())[0]  # the file's one period
        ids = f["household_id"][year][:]
        weights = f["household_weight"][year][:]
    aligned = pd.Series(weights, index=ids).reindex(household_ids).to_numpy(dtype=float)
    return None if np.isnan(aligned).any() else aligned  # an H5 of another build


def input_files(work_dir: Path) -> dict[str, dict[str, Any]]:
    """Size, modification time and sha256 of each input, to tie the results to a build."""
    files = {}
    for path in sorted(work_dir.glob("target_matrix*")) + [work_dir / "policyengine_us_2024.h5"]:
        if path.exists():
            stat = path.stat()
            files[path.name] = {
                "bytes": stat.st_size,
                "modified": dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC).isoformat(),
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            }
    return files
