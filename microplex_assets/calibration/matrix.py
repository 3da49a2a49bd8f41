"""Target materialization (stage 7): each target's per-household contribution, by PolicyEngine.

For a target t and household h, ``M[t, h]`` is what h adds to t's estimate at weight 1:
the sum over h's records of the target's entity that pass the scope rule, the filters and
the geography, of the variable (sums) or of 1 (counts). Every quantity comes from
``policyengine_us`` on the candidate population, so the weights are fitted to the same
numbers a user of the published H5 will compute. The estimate of every target is then
``M @ weights``: scoring any weight vector (ours, the eCPS-method baseline's) is one
sparse product, no new simulation.

Targets that cannot be scored are dropped into the ledger with the reason: variable
missing from this policyengine-us, geography absent from the candidate, zero value
(|t| < 0.1, as the eCPS method drops them), or no support (no household contributes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from microplex_assets.calibration.loss import target_loss
from microplex_assets.calibration.simulation_arrays import (
    DISTRICT_VARIABLE,
    SimulationArrays,
    record_contributions,
)
from microplex_assets.calibration.top_tail import TopTailArrays, top_tail_arrays
from microplex_assets.geography.districts import parse_district
from microplex_assets.geography.states import fips_from_code
from microplex_assets.targets.model import Target, TargetSet

MIN_ABS_TARGET = 0.1
# Ledger reasons that mean PolicyEngine or the candidate cannot score the target at all.
UNSUPPORTED_REASONS = ("variable missing", "geography absent", "computation failed")
LEDGER_COLUMNS = (
    "name",
    "family",
    "group",
    "geography",
    "value",
    "status",
    "reason",
    "supporting_households",
)


class NonFiniteTargetError(ValueError):
    """A target's household contributions hold NaN or infinity."""


def require_finite_contributions(
    target: Target, by_household: np.ndarray, household_ids: np.ndarray
) -> None:
    """Raise, naming the target, its variable and households, on a non-finite contribution:
    a NaN here would otherwise stop the solver at its first non-finite loss, silently."""
    bad = ~np.isfinite(by_household)
    if bad.any():
        raise NonFiniteTargetError(
            f"target {target.name} (variable {target.variable}): {int(bad.sum())} household "
            f"contributions are NaN or infinite, e.g. household_id "
            f"{household_ids[np.flatnonzero(bad)[:5]].tolist()}; expected finite numbers"
        )


def require_finite_matrix(matrix: TargetMatrix) -> None:
    """Raise naming the targets whose matrix rows or values are not finite."""
    data_bad = ~np.isfinite(matrix.matrix.data)
    rows = np.unique(
        np.repeat(np.arange(matrix.matrix.shape[0]), np.diff(matrix.matrix.indptr))[data_bad]
    )
    rows = np.union1d(rows, np.flatnonzero(~np.isfinite(matrix.values)))
    if len(rows):
        names = [matrix.targets.targets[i].name for i in rows[:5]]
        raise NonFiniteTargetError(
            f"{len(rows)} targets have NaN or infinite contributions or values, e.g. {names}; "
            "expected finite numbers"
        )


def unsupported_reason(arrays: SimulationArrays, target: Target, states: set[int]) -> str | None:
    """Why a target cannot be scored before computing it, or None."""
    needed = [target.variable, *(f.variable for f in target.filters)]
    missing = [name for name in needed if not arrays.has_variable(name)]
    if missing:
        return f"variable missing: {', '.join(missing)} not in this policyengine-us"
    if abs(target.value) < MIN_ABS_TARGET:
        return f"zero value: |{target.value:g}| < {MIN_ABS_TARGET}"
    if target.geography_level == "district":
        if not arrays.has_variable(DISTRICT_VARIABLE):
            return f"variable missing: {DISTRICT_VARIABLE} not in this policyengine-us"
        if parse_district(target.geography).state_fips not in states:
            return f"geography absent: no candidate household in {target.geography}'s state"
    elif target.geography != "US" and fips_from_code(target.geography) not in states:
        return f"geography absent: no candidate household in {target.geography}"
    return None


MATRIX_PREFIX = "target_matrix"  # file names of a saved matrix (``TargetMatrix.save``)


@dataclass
class TargetMatrix:
    """Kept targets x households contributions, the ledger of every target, the split."""

    matrix: sparse.csr_matrix
    targets: TargetSet
    household_ids: np.ndarray
    ledger: pd.DataFrame
    train: np.ndarray  # bool per kept target: True = fitted, False = held out
    top_tail: TopTailArrays | None = None  # capital income and AGI per column, for reports
    # bool per kept target: True = test (held out and never shown to a solver); the other
    # held-out targets are the validation split, which chooses the epoch.
    test: np.ndarray | None = None
    # The folder ``save`` last wrote to (the producing run's work folder): publication reads
    # the ledger and matrices there, so a run that re-executes only ``published_dataset``
    # finds them although its own work folder is new.
    saved_in: str | None = None

    def __post_init__(self) -> None:
        if self.test is None:
            self.test = np.zeros(len(self.train), dtype=bool)
        if (self.train & self.test).any():
            raise ValueError("a target cannot be both train and test")

    @property
    def validation(self) -> np.ndarray:
        """Held out and shown to the solver only to choose the epoch."""
        return ~self.train & ~self.test

    @property
    def split(self) -> np.ndarray:
        """train / validation / test per kept target."""
        return np.where(self.train, "train", np.where(self.test, "test", "validation"))

    @property
    def values(self) -> np.ndarray:
        return np.array([t.value for t in self.targets], dtype=float)

    @property
    def is_national(self) -> np.ndarray:
        return np.array([t.is_national for t in self.targets], dtype=bool)

    def drop_targets(self, reasons: dict[str, str]) -> TargetMatrix:
        """This matrix without the named targets, each dropped into the ledger with its
        reason (every row, split and target of the others kept)."""
        if not reasons:
            return self
        keep = np.array([t.name not in reasons for t in self.targets], dtype=bool)
        ledger = self.ledger.copy()
        for name, reason in reasons.items():
            row = ledger["name"] == name
            ledger.loc[row, "status"] = "dropped"
            ledger.loc[row, "reason"] = reason
        return replace(
            self,
            matrix=self.matrix[keep].tocsr(),
            targets=TargetSet(tuple(t for t, k in zip(self.targets, keep, strict=True) if k)),
            ledger=ledger,
            train=self.train[keep],
            test=self.test[keep],
        )

    @property
    def families(self) -> np.ndarray:
        return np.array([t.family for t in self.targets])

    @property
    def groups(self) -> np.ndarray:
        return np.array([t.group for t in self.targets])

    def estimates(self, weights: np.ndarray) -> np.ndarray:
        return np.asarray(self.matrix @ np.asarray(weights, dtype=float)).ravel()

    def aligned(self, weights: pd.Series) -> np.ndarray:
        """Weights by household_id put in the matrix's column order (KeyError names gaps)."""
        missing = np.setdiff1d(self.household_ids, weights.index.to_numpy())
        if len(missing):
            raise KeyError(f"weights lack {len(missing)} households of the matrix: {missing[:5]}")
        return weights.reindex(self.household_ids).to_numpy(dtype=float)

    def loss(self, weights: np.ndarray, mask: np.ndarray | None = None) -> float:
        """The shared target loss on the targets in ``mask`` (all kept targets by default)."""
        mask = np.ones(len(self.targets), dtype=bool) if mask is None else mask
        return target_loss(self.estimates(weights)[mask], self.values[mask], self.is_national[mask])

    def counts(self, loaded: int) -> dict[str, int]:
        """loaded (the cell's registry targets), supported (PolicyEngine can compute them and
        the geography is present), kept (also a nonzero value and support), held out, train."""
        unsupported = self.ledger["reason"].str.startswith(UNSUPPORTED_REASONS)
        return {
            "loaded": int(loaded),
            "supported": int(loaded - unsupported.sum()),
            "kept": int(len(self.targets)),
            "held_out": int((~self.train).sum()),
            "train": int(self.train.sum()),
            "validation": int(self.validation.sum()),
            "test": int(self.test.sum()),
        }

    def save(
        self, folder: Path, design_weights: np.ndarray | None = None, prefix: str = MATRIX_PREFIX
    ) -> dict[str, Path]:
        """matrix npz, kept targets + split parquet, ledger CSV, household ids and (given)
        the design weights in column order: benchmarks, notebooks and derived cells read
        these without rerunning PolicyEngine (``benchmarks/calibration.py --from-build``,
        ``load_saved_matrix``)."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = saved_matrix_paths(folder, prefix)
        paths["ledger"] = folder / (
            "target_ledger.csv" if prefix == MATRIX_PREFIX else f"{prefix}_ledger.csv"
        )
        sparse.save_npz(paths["matrix"], self.matrix)
        frame = self.targets.to_frame()
        frame["is_national"] = self.is_national
        frame["train"] = self.train
        frame["split"] = self.split
        frame.to_parquet(paths["targets"], index=False)
        self.ledger.to_csv(paths["ledger"], index=False)
        np.save(paths["household_ids"], self.household_ids)
        if design_weights is not None:
            paths["design_weights"] = folder / f"{prefix}_design_weights.npy"
            np.save(paths["design_weights"], np.asarray(design_weights, dtype=float))
        if prefix == MATRIX_PREFIX:
            self.saved_in = str(folder)
        return paths


def saved_matrix_paths(folder: Path, prefix: str = MATRIX_PREFIX) -> dict[str, Path]:
    """Where ``TargetMatrix.save`` puts the matrix, its targets and its household ids."""
    return {
        "matrix": folder / f"{prefix}.npz",
        "targets": folder / f"{prefix}_targets.parquet",
        "household_ids": folder / f"{prefix}_household_ids.npy",
    }


@dataclass
class SavedMatrix:
    """A saved matrix read back: contributions, target table (name, value, geography, group,
    is_national, train, ...) and household ids, in matrix order."""

    matrix: sparse.csr_matrix
    targets: pd.DataFrame
    household_ids: np.ndarray

    def estimates_by_name(self, weights: pd.Series, names: pd.Index) -> pd.Series:
        """Each named target's estimate under ``weights`` (by household_id); targets this
        matrix did not keep estimate 0 (no record here contributes to them)."""
        aligned = weights.reindex(self.household_ids)
        if aligned.isna().any():
            missing = self.household_ids[aligned.isna().to_numpy()][:5]
            raise KeyError(f"weights lack households of the saved matrix, e.g. {missing}")
        values = np.asarray(self.matrix @ aligned.to_numpy(dtype=float)).ravel()
        return pd.Series(values, index=self.targets["name"]).reindex(names, fill_value=0.0)


def load_saved_matrix(folder: Path, prefix: str = MATRIX_PREFIX) -> SavedMatrix:
    """A matrix saved by ``TargetMatrix.save``; a missing file is named."""
    paths = saved_matrix_paths(folder, prefix)
    missing = [str(p) for p in paths.values() if not p.exists()]
    if missing:
        raise FileNotFoundError(f"saved target matrix incomplete: missing {missing}")
    matrix = sparse.load_npz(paths["matrix"]).tocsr()
    targets = pd.read_parquet(paths["targets"])
    household_ids = np.load(paths["household_ids"])
    if matrix.shape != (len(targets), len(household_ids)):
        raise ValueError(
            f"{paths['matrix']}: shape {matrix.shape} does not match {len(targets)} targets x "
            f"{len(household_ids)} households"
        )
    return SavedMatrix(matrix, targets, household_ids)


def materialize_targets(
    arrays: SimulationArrays,
    target_set: TargetSet,
    progress: Callable[[str], None] | None = None,
    states: set[int] | None = None,
) -> TargetMatrix:
    """Compute every supported target's household contributions; ledger every target.

    Every kept target starts as a training target; ``holdout.split_by_groups`` moves
    whole groups out. ``states`` (default: those of ``arrays``) decides which state
    targets have a geography: a slice of the file passes the whole file's, so it computes
    what every slice computes.
    """
    if states is None:
        states = set(np.unique(arrays.values("state_fips", "household").astype(int)).tolist())
    n_households = len(arrays.household_ids)
    rows, columns, data, kept, ledger = [], [], [], [], []
    started = time.perf_counter()
    for number, target in enumerate(target_set, start=1):
        reason = unsupported_reason(arrays, target, states)
        support = 0
        if reason is None:
            try:
                contributions = record_contributions(arrays, target)
            except Exception as error:  # a PolicyEngine formula failing names the target
                reason = f"computation failed: {type(error).__name__}: {error}"
            else:
                by_household = np.bincount(
                    arrays.household_position(target.entity),
                    weights=contributions,
                    minlength=n_households,
                )
                require_finite_contributions(target, by_household, arrays.household_ids)
                nonzero = np.flatnonzero(by_household)
                support = len(nonzero)
                if not support:
                    reason = "no support: no candidate household contributes"
                else:
                    rows.append(np.full(support, len(kept)))
                    columns.append(nonzero)
                    data.append(by_household[nonzero])
                    kept.append(target)
        ledger.append(
            {
                "name": target.name,
                "family": target.family,
                "group": target.group,
                "geography": target.geography,
                "value": target.value,
                "status": "dropped" if reason else "kept",
                "reason": reason or "",
                "supporting_households": support,
            }
        )
        if progress and number % 500 == 0:
            progress(
                f"materialized {number:,}/{len(target_set):,} targets "
                f"({time.perf_counter() - started:.0f}s)"
            )
    matrix = sparse.csr_matrix(
        (
            np.concatenate(data) if data else np.zeros(0),
            (
                np.concatenate(rows) if rows else np.zeros(0, int),
                np.concatenate(columns) if columns else np.zeros(0, int),
            ),
        ),
        shape=(len(kept), n_households),
    )
    frame = pd.DataFrame(ledger, columns=list(LEDGER_COLUMNS))
    frame["held_out"] = False
    train = np.ones(len(kept), dtype=bool)
    return TargetMatrix(
        matrix, TargetSet(tuple(kept)), arrays.household_ids, frame, train, top_tail_arrays(arrays)
    )


def targets_for_geography(target_set: TargetSet, geography: str) -> TargetSet:
    """The targets a cell is fitted and scored on: all of them for the US, a state's own
    targets for a state (national totals do not describe one state's records)."""
    if geography == "US":
        return target_set
    return TargetSet(tuple(t for t in target_set if t.geography == geography))


def held_out_groups_for(
    target_set: TargetSet, groups: list[str], geography: str
) -> tuple[str, ...]:
    """The profile's held-out groups that exist in the cell's targets (a state cell keeps
    the state-level ones; national groups have no targets there)."""
    present = {t.group for t in target_set}
    if geography == "US":
        return tuple(groups)
    return tuple(g for g in groups if g in present)


def candidate_target_matrix(
    simulation: Any,
    year: int,
    cell_targets: TargetSet,
    held_out_groups: list[str],
    geography: str,
    fixed: pd.Series | None = None,
    progress: Callable[[str], None] | None = None,
    test_groups: list[str] | tuple[str, ...] = (),
    design: pd.Series | None = None,
    max_weight_ratio: float | None = None,
) -> TargetMatrix:
    """The cell's matrix from a candidate's simulation, with the profile's split
    (``held_out_groups`` validate, ``test_groups`` test; see ``holdout``);
    targets the ``fixed`` records (spine weights by household_id) alone overshoot are
    dropped into the ledger first, then (given the ``design`` weights by household_id and
    the solver's ``max_weight_ratio``) those the weight bound puts out of reach.

    One function for the build's candidate and for comparisons (the donor ablation), so
    both are scored on the same targets with the same split rule."""
    from microplex_assets.calibration.feasibility import (
        drop_bound_overshoots,
        drop_sign_infeasible,
    )
    from microplex_assets.calibration.fixed_records import drop_fixed_overshoots
    from microplex_assets.calibration.holdout import split_by_groups

    matrix = materialize_targets(SimulationArrays(simulation, year), cell_targets, progress)
    if fixed is not None:
        matrix = drop_fixed_overshoots(matrix, fixed)
    matrix = drop_sign_infeasible(matrix)  # a sign no non-negative weights reach
    if design is not None and max_weight_ratio is not None:
        fixed_ids = np.array([]) if fixed is None else fixed.index.to_numpy()
        is_fixed = np.isin(matrix.household_ids, fixed_ids)
        matrix = drop_bound_overshoots(
            matrix, matrix.aligned(design), is_fixed, float(max_weight_ratio)
        )
    groups = held_out_groups_for(matrix.targets, held_out_groups, geography)
    # A small candidate may leave a test group without kept targets: test what is there.
    present = {t.group for t in matrix.targets}
    test = tuple(g for g in test_groups if g in present)
    return split_by_groups(matrix, groups, test)
