"""Calibration judged on a three-way split by whole target groups: train, validation, test.

    python benchmarks/calibration_split.py [--work-dir DIR] [--epochs N] [--only NAME ...]
                                           [--gate-seeds SEED ...] [--out PATH]

Reads the matrix a national build saved (``--work-dir``, default the national US work
folder: ``target_matrix.npz``, ``..._targets.parquet``, ``..._household_ids.npy``,
``..._design_weights.npy``; the build's ``policyengine_us_2024.h5`` for a reference row)
and splits its kept targets by whole groups:

- test: whole target *families* that no choice ever saw and that the synthetic PUF donor
  was not built from (see ``donor_families``). Never passed to a solver; scored once,
  after every choice is made.
- validation: whole groups that choose the returned epoch and (``recommend``) the
  settings; the current build's held-out groups, already spent on earlier choices.
- train: everything else, the only targets any solver fits.

Spine households (the fixed top-tail records, see ``fixed_records``) keep their design
weight 1; every solver fits the free households to the targets minus the spine's
contribution, and every loss is ``loss.target_loss`` on the full targets with the full
weight vector (spine included).

Methods: the design weights; the eCPS method (``ecps_method_config``, train only); our
solver (``SolverConfig()``, train fitted, epoch chosen on validation by its own rule) with
and without hard-concrete gates and with ``log_weight_penalty``; and ``fit_bounded``, a
solver written here with the weight ratio w / w0 kept inside [1 / 50, 50] by a smooth
bound on the log-ratio, optional log-ratio / KL / chi-square penalties towards the design
weights and optional gates, its epoch chosen post hoc (``SELECTIONS``: by default the
solver's rule, lowest validation loss within 1% of the best train loss; also pure
validation and an ESS floor). ``--gate-seeds`` reruns the seed-dependent methods to see
whether the gates' effect is larger than seed noise.

Reports per method: train / validation / test loss, the same on targets with at least
``SUPPORT_FLOOR`` supporting households (diagnostic), Kish ESS of the free households and
its share of them, max final / design ratio, top-1% weight share, share of targets within
10% relative error (all kept and train), seconds, the done-criteria met, and per held-out
group the mean squared relative error. Prints markdown tables and writes JSON to
``benchmarks/results/calibration_split_<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from microplex_assets.calibration.hard_concrete import HardConcreteGates  # noqa: E402
from microplex_assets.calibration.loss import count_normalisation, target_loss  # noqa: E402
from microplex_assets.calibration.matrix import MIN_ABS_TARGET, load_saved_matrix  # noqa: E402
from microplex_assets.calibration.solver import calibrate  # noqa: E402
from microplex_assets.calibration.solver_config import SolverConfig, ecps_method_config  # noqa: E402
from microplex_assets.calibration.sparse_torch import sparse_matvec, torch_csr  # noqa: E402
from microplex_assets.sources.soi_bands import SOI_NEEDED  # noqa: E402
from microplex_assets.targets.registry import DEFAULT_HELD_OUT_GROUPS  # noqa: E402

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


# --- scoring -------------------------------------------------------------------------------


def kish_ess(weights: np.ndarray) -> float:
    squares = float(np.square(weights).sum())
    return float(weights.sum() ** 2 / squares) if squares > 0 else 0.0


def evaluate(problem: SplitProblem, weights: np.ndarray) -> dict[str, Any]:
    """Losses per split (full targets, full weights), weight health (free households) and
    the share of targets within ``WITHIN`` relative error."""
    estimates = problem.matrix @ weights
    values, national = problem.values, problem.is_national
    within = np.abs(estimates - values) <= WITHIN * np.abs(values)
    supported = problem.support >= SUPPORT_FLOOR
    record: dict[str, Any] = {}
    for name in SPLITS:
        m = problem.mask(name)
        record[f"{name}_loss"] = target_loss(estimates[m], values[m], national[m])
        record[f"{name}_within_10pct"] = float(within[m].mean())
        s = m & supported
        record[f"{name}_loss_support{SUPPORT_FLOOR}"] = target_loss(
            estimates[s], values[s], national[s]
        )
    free = weights[~problem.fixed]
    design = problem.design[~problem.fixed]
    ess = kish_ess(free)
    ordered = np.sort(free)[::-1]
    record.update(
        within_10pct=float(within.mean()),
        ess=ess,
        ess_share=ess / len(free),
        max_ratio=float(np.max(free / design)),
        top_1pct_weight_share=float(ordered[: max(1, len(free) // 100)].sum() / free.sum()),
        zero_weights=int((free <= 0).sum()),
        weight_total=float(weights.sum()),
    )
    errors = ((estimates - values + 1.0) / (values + 1.0)) ** 2
    held = problem.targets["split"] != "train"
    record["group_mse"] = (
        pd.Series(errors[held.to_numpy()], index=problem.targets.loc[held, "group"])
        .groupby(level=0)
        .mean()
        .to_dict()
    )
    return record


def goals(record: dict[str, Any], design: dict[str, Any], ecps: dict[str, Any] | None) -> dict:
    """Which of the issue's done-criteria a method meets (None where a reference is absent)."""
    return {
        "test_below_design": record["test_loss"] < design["test_loss"],
        "test_at_most_half_ecps": None
        if ecps is None
        else record["test_loss"] <= 0.5 * ecps["test_loss"],
        "train_no_worse_than_ecps": None
        if ecps is None
        else record["train_loss"] <= ecps["train_loss"],
        "ess_share_at_least_25pct": record["ess_share"] >= ESS_FLOOR,
        "max_ratio_at_most_50": record["max_ratio"] <= MAX_RATIO + 1e-6,
        "kept_within_10pct_at_least_90pct": record["within_10pct"] >= 0.9,
    }


# --- fitting with the production solver ----------------------------------------------------


def residual_rows(
    problem: SplitProblem, rows: np.ndarray
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """The free households' columns of ``rows`` whose target minus the spine's contribution
    keeps its sign and |.| >= MIN_ABS_TARGET (as ``fixed_records.residual_problem``)."""
    values = problem.values
    residual = values - problem.matrix @ problem.fixed_weights
    ok = rows & (np.abs(residual) >= MIN_ABS_TARGET) & (np.sign(residual) == np.sign(values))
    index = np.flatnonzero(ok)
    return problem.matrix[index][:, ~problem.fixed].tocsr(), residual[index], index


def fit_solver(
    problem: SplitProblem, config: SolverConfig, with_validation: bool
) -> tuple[np.ndarray, dict[str, Any]]:
    """``solver.calibrate`` on the train rows (plus the validation rows as its held-out set,
    which picks the epoch, when ``with_validation``); test rows are never passed."""
    rows = problem.mask("train") | (problem.mask("validation") if with_validation else False)
    matrix, residual, index = residual_rows(problem, rows)
    train = problem.mask("train")[index]
    result = calibrate(
        matrix,
        residual,
        problem.is_national[index],
        train,
        problem.design[~problem.fixed],
        config,
    )
    info = {
        "seconds": result.seconds,
        "chosen_epoch": int(result.best_epoch),
        "epochs_run": int(result.history["epoch"].iloc[-1]),
        "rows_fitted": int(train.sum()),
        "rows_selecting": int((~train).sum()),
        "config": {k: v for k, v in asdict(config).items() if k not in ("device", "threads")},
    }
    return problem.merge(result.weights), info


# --- the bounded-ratio solver --------------------------------------------------------------


@dataclass(frozen=True)
class BoundedConfig:
    """Log-ratio solver: w = w0 * exp(b(u)), b a smooth bound onto [-log(1/min_ratio),
    log(max_ratio)] (b(u) = L tanh(u / L) on each side, slope 1 at 0), fitted by Adam to the
    train targets' loss plus

    log_penalty * mean(b^2)  (the solver's log_weight_penalty),
    kl_penalty * sum w0 (r log r - r + 1) / sum w0  (KL of w to w0, r = w / w0),
    chi2_penalty * sum w0 (r - 1)^2 / sum w0  (the chi-square distance; ~ 1 / ESS),
    l0_lambda * expected open gates (hard-concrete gates as the solver's, when > 0).

    With ``huber_delta`` the fitted term is the pseudo-Huber 2 delta^2 (sqrt(1 + (e /
    delta)^2) - 1) of each relative error e instead of e^2 (the same near 0, linear far
    out): targets no weighting within the bounds can reach stop dominating the gradient.
    The reported losses stay ``loss.target_loss``.

    Every ``record_every`` epochs the weights and their train / validation losses, Kish
    ESS share and max ratio are kept; ``selections`` then choose epochs post hoc."""

    epochs: int = 4_000
    learning_rate: float = 0.1
    final_learning_rate: float | None = None
    max_ratio: float = MAX_RATIO
    min_ratio: float = 1.0 / MAX_RATIO
    log_penalty: float = 0.0
    kl_penalty: float = 0.0
    chi2_penalty: float = 0.0
    l0_lambda: float = 0.0
    huber_delta: float | None = None
    record_every: int = 10
    seed: int = 1456


def bound(u: torch.Tensor, high: float, low: float) -> torch.Tensor:
    """Smooth two-sided bound of the log-ratio: high tanh(u / high) above 0, low below."""
    return torch.where(u >= 0, high * torch.tanh(u / high), low * torch.tanh(u / low))


def fit_bounded(problem: SplitProblem, config: BoundedConfig) -> tuple[pd.DataFrame, list, float]:
    """Run the bounded solver on the train rows; validation rows are only recorded.

    Returns the history (epoch, train_loss, validation_loss, ess_share, max_ratio), the
    free weights recorded at each history row (float32) and the seconds taken."""
    started = time.perf_counter()
    train, validation = problem.mask("train"), problem.mask("validation")
    rows = np.flatnonzero(train | validation)
    is_train = train[rows]
    matrix = problem.matrix[rows][:, ~problem.fixed].tocsr()
    offset = (problem.matrix @ problem.fixed_weights)[rows]  # the spine's fixed part
    values, national = problem.values[rows], problem.is_national[rows]
    w0 = problem.design[~problem.fixed]
    dtype, device = torch.float32, torch.device("cpu")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        m = torch_csr(matrix, device, dtype)
        m_t = torch_csr(matrix.T.tocsr(), device, dtype)
        fit_idx = torch.from_numpy(np.flatnonzero(is_train))
        t_fit = torch.tensor(values[is_train] - offset[is_train], dtype=dtype)
        scale = count_normalisation(national[is_train]) / is_train.sum()
        coef = torch.tensor(scale / (values[is_train] + 1.0) ** 2, dtype=dtype)
        scale_t = torch.tensor(scale, dtype=dtype)
        w0_t = torch.tensor(w0, dtype=dtype)
        w0_share = w0_t / w0_t.sum()
        u = torch.zeros(len(w0), dtype=dtype, requires_grad=True)
        params = [u]
        gates = None
        generator = torch.Generator().manual_seed(config.seed)
        if config.l0_lambda > 0:
            gates = HardConcreteGates(len(w0), device=device, dtype=dtype)
            params.append(gates.log_alpha)
        high, low = math.log(config.max_ratio), -math.log(config.min_ratio)

        def weights(sampled: bool) -> tuple[torch.Tensor, torch.Tensor]:
            b = bound(u, high, low)
            w = w0_t * torch.exp(b)
            if gates is not None:
                w = w * (gates.sample(generator) if sampled else gates.deterministic())
            return w, b

        optimizer = torch.optim.Adam(params, lr=config.learning_rate)
        scheduler = None
        if config.final_learning_rate is not None:
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=config.epochs, eta_min=config.final_learning_rate
            )
        records: list[dict[str, float]] = []
        snapshots: list[np.ndarray] = []

        def record(epoch: int, w: torch.Tensor, estimates: torch.Tensor) -> None:
            est = estimates.detach().double().numpy() + offset
            free = w.detach().double().numpy()
            ess = kish_ess(free)
            records.append(
                {
                    "epoch": epoch,
                    "train_loss": target_loss(est[is_train], values[is_train], national[is_train]),
                    "validation_loss": target_loss(
                        est[~is_train], values[~is_train], national[~is_train]
                    ),
                    "ess_share": ess / len(free),
                    "max_ratio": float(np.max(free / w0)),
                }
            )
            snapshots.append(w.detach().numpy().copy())

        for epoch in range(config.epochs + 1):
            optimizer.zero_grad(set_to_none=True)
            w, b = weights(sampled=gates is not None)
            estimates = sparse_matvec(m, m_t, w)
            keep = epoch % config.record_every == 0 or epoch == config.epochs
            if keep and gates is None:
                record(epoch, w, estimates)
            elif keep:
                with torch.no_grad():
                    wd, _ = weights(sampled=False)
                    record(epoch, wd.clone(), torch.mv(m, wd))
            if epoch == config.epochs:
                break
            residual = estimates.index_select(0, fit_idx) - t_fit + 1.0
            if config.huber_delta is None:
                objective = torch.sum(coef * residual * residual)
            else:
                delta = config.huber_delta
                relative = residual * torch.sqrt(coef / scale_t)
                huber = 2 * delta**2 * (torch.sqrt(1 + (relative / delta) ** 2) - 1)
                objective = torch.sum(scale_t * huber)
            if config.log_penalty > 0:
                objective = objective + config.log_penalty * torch.mean(b * b)
            if config.kl_penalty > 0 or config.chi2_penalty > 0:
                r = torch.exp(b)
                if config.kl_penalty > 0:
                    kl = torch.sum(w0_share * (r * b - r + 1.0))
                    objective = objective + config.kl_penalty * kl
                if config.chi2_penalty > 0:
                    chi2 = torch.sum(w0_share * (r - 1.0) ** 2)
                    objective = objective + config.chi2_penalty * chi2
            if gates is not None:
                objective = objective + config.l0_lambda * gates.expected_open()
            objective.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
    finally:
        torch.set_num_threads(before)
    return pd.DataFrame.from_records(records), snapshots, time.perf_counter() - started


TRAIN_TOLERANCE = 0.01  # as SolverConfig.train_tolerance
SELECTIONS: dict[str, str] = {
    "final": "the last epoch",
    "val": "lowest validation loss",
    "val_tol": "lowest validation loss among epochs within 1% of the best train loss (as "
    "SolverConfig's train_tolerance)",
    "val_ess": f"val_tol among the epochs with ESS share >= {ESS_FLOOR:.0%} (an ESS floor "
    "in epoch selection)",
}


def select_epoch(history: pd.DataFrame, rule: str) -> int:
    """History row chosen by ``rule`` (see SELECTIONS); val_ess falls back to the highest
    ESS share when no epoch reaches the floor."""
    if rule == "final":
        return len(history) - 1
    if rule not in SELECTIONS:
        raise ValueError(f"unknown selection {rule!r}; known: {sorted(SELECTIONS)}")
    eligible = history
    if rule == "val_ess":
        eligible = history[history["ess_share"] >= ESS_FLOOR]
        if eligible.empty:
            return int(history["ess_share"].idxmax())
    if rule in ("val_tol", "val_ess"):
        best = eligible["train_loss"].min()
        eligible = eligible[eligible["train_loss"] <= best * (1 + TRAIN_TOLERANCE)]
    return int(eligible["validation_loss"].idxmin())


# --- the methods -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """A named method: a production solver config, or a bounded config with selections."""

    name: str
    label: str
    solver: SolverConfig | None = None
    with_validation: bool = True
    bounded: BoundedConfig | None = None
    selections: tuple[str, ...] = ("val_tol",)
    custom: Callable[[SplitProblem], tuple[np.ndarray, dict[str, Any]]] | None = None


GATES = SolverConfig().l0_lambda  # the eCPS method's L0 penalty, our default


def variants(epochs: int) -> list[Variant]:
    """The methods compared (the eCPS method keeps its own 1,000 epochs). Bounded variants
    are chosen by val_tol unless said otherwise."""
    ours = SolverConfig(epochs=epochs)
    nogates = replace(ours, l0_lambda=0.0)
    b = BoundedConfig(epochs=epochs)
    bounded = "bounded w/w0 in [1/50, 50]"
    production = replace(
        ours, l0_lambda=0.0, max_weight_ratio=MAX_RATIO, kl_penalty=0.3, min_ess_share=ESS_FLOOR
    )
    return [
        Variant(
            "ecps", "eCPS method (ecps_method_config), train only", ecps_method_config(), False
        ),
        Variant(
            "ours_default",
            "ours as the national build runs it: w/w0 in [1/50, 50], KL 0.3, no gates, "
            "validation epoch among ESS >= 25%",
            production,
        ),
        Variant(
            "microcalibrate",
            "microcalibrate (policyengine-us-data's settings), train only",
            custom=fit_microcalibrate,
        ),
        Variant("ours", "ours: SolverConfig() (gates)", ours),
        Variant("ours_nogates", "ours, no gates (l0_lambda=0)", nogates),
        *(
            Variant(
                f"ours_nogates_rho{rho:g}",
                f"ours, no gates, log_weight_penalty {rho:g}",
                replace(nogates, log_weight_penalty=rho),
            )
            for rho in (0.1, 1.0)
        ),
        Variant(
            "ours_rho1", "ours (gates), log_weight_penalty 1", replace(ours, log_weight_penalty=1.0)
        ),
        Variant(
            "bounded", f"{bounded}, no penalty", bounded=b, selections=("val_tol", "val", "val_ess")
        ),
        *(
            Variant(
                f"bounded_chi2_{lam:g}",
                f"{bounded} + chi2 {lam:g}",
                bounded=replace(b, chi2_penalty=lam),
            )
            for lam in (0.03, 0.3)
        ),
        *(
            Variant(
                f"bounded_kl{lam:g}",
                f"{bounded} + KL {lam:g}",
                bounded=replace(b, kl_penalty=lam),
                selections=("val_tol", "val") if lam == 0.1 else ("val_tol",),
            )
            for lam in (0.03, 0.1, 0.3, 1.0)
        ),
        *(
            Variant(
                f"bounded_kl{lam:g}_gates",
                f"{bounded} + KL {lam:g} + gates",
                bounded=replace(b, kl_penalty=lam, l0_lambda=GATES),
            )
            for lam in (0.1, 0.3)
        ),
    ]


def reseeded(variant: Variant, seed: int) -> Variant:
    """The variant with another seed (gate samples; the eCPS method's starting noise)."""
    return replace(
        variant,
        name=f"{variant.name}@seed{seed}",
        solver=None if variant.solver is None else replace(variant.solver, seed=seed),
        bounded=None if variant.bounded is None else replace(variant.bounded, seed=seed),
    )


SEED_CHECKED = ("ecps", "ours", "bounded_kl0.1_gates")  # the methods a seed changes


def recommend(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The default by a rule that never reads test: among methods meeting the weight-health
    goals (ESS share >= 25%, max ratio <= 50) whose validation loss is below the eCPS
    method's, the lowest train loss (fit as well as healthy weights allow)."""
    ecps = next((r for r in rows if r["method"] == "ecps"), None)
    if ecps is None:
        return None
    healthy = [
        r
        for r in rows
        if r["ess_share"] >= ESS_FLOOR
        and r["max_ratio"] <= MAX_RATIO + 1e-6
        and r["validation_loss"] < ecps["validation_loss"]
        and r["method"] != "design"
    ]
    return min(healthy, key=lambda r: r["train_loss"]) if healthy else None


def fit_microcalibrate(problem: SplitProblem) -> tuple[np.ndarray, dict[str, Any]]:
    """microcalibrate (``pip install -e '.[benchmark]'``) on the free households' train rows,
    configured as policyengine-us-data's geography calibration calls it (Adam lr 0.2, 600
    epochs, noise level 10, no dropout, no L0) with this loss's normalisation; final
    weights (it has no validation selection)."""
    import logging

    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.getLogger("microcalibrate").setLevel(logging.ERROR)
    from microcalibrate import Calibration

    started = time.perf_counter()
    matrix, residual, index = residual_rows(problem, problem.mask("train"))
    names = problem.targets["name"].to_numpy()[index]
    estimate_matrix = pd.DataFrame(matrix.T.toarray().astype(np.float32), columns=names)
    np.random.seed(1456)
    torch.manual_seed(1456)
    calibration = Calibration(
        weights=problem.design[~problem.fixed].copy(),
        targets=residual,
        estimate_matrix=estimate_matrix,
        epochs=600,
        learning_rate=0.2,
        noise_level=10.0,
        dropout_rate=0.0,
        normalization_factor=torch.tensor(
            count_normalisation(problem.is_national[index]), dtype=torch.float32
        ),
        device="cpu",
        regularize_with_l0=False,
    )
    calibration.calibrate()
    weights = np.asarray(calibration.weights, dtype=np.float64)
    return problem.merge(weights), {"seconds": time.perf_counter() - started, "epochs_run": 600}


def run_variant(problem: SplitProblem, variant: Variant) -> list[dict[str, Any]]:
    """One row per selection: the chosen weights scored on every split."""
    if variant.custom is not None:
        try:
            weights, info = variant.custom(problem)
        except ImportError as error:
            print(f"{variant.name} skipped: {error}", flush=True)
            return []
        return [
            {"method": variant.name, "label": variant.label, **info, **evaluate(problem, weights)}
        ]
    if variant.solver is not None:
        weights, info = fit_solver(problem, variant.solver, variant.with_validation)
        return [
            {"method": variant.name, "label": variant.label, **info, **evaluate(problem, weights)}
        ]
    history, snapshots, seconds = fit_bounded(problem, variant.bounded)
    rows = []
    for rule in variant.selections:
        index = select_epoch(history, rule)
        weights = problem.merge(snapshots[index].astype(float))
        rows.append(
            {
                "method": f"{variant.name}[{rule}]",
                "label": f"{variant.label}; epoch: {SELECTIONS[rule]}",
                "seconds": seconds,
                "chosen_epoch": int(history["epoch"].iloc[index]),
                "epochs_run": int(history["epoch"].iloc[-1]),
                "config": asdict(variant.bounded),
                "path": history.iloc[:: max(1, len(history) // 40)].to_dict(orient="list"),
                **evaluate(problem, weights),
            }
        )
    return rows


# --- output --------------------------------------------------------------------------------


def markdown(rows: list[dict[str, Any]]) -> str:
    header = (
        "| method | train | validation | test | ESS (share) | max w/w0 | top 1% | "
        "within 10% (all / train) | epoch | s |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [header]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['train_loss']:.4f} | {r['validation_loss']:.4f} | "
            f"{r['test_loss']:.4f} | {r['ess']:,.0f} ({r['ess_share']:.1%}) | "
            f"{r['max_ratio']:.1f} | {r['top_1pct_weight_share']:.1%} | "
            f"{r['within_10pct']:.1%} / {r['train_within_10pct']:.1%} | "
            f"{r.get('chosen_epoch', '-')} | {r.get('seconds', 0.0):.0f} |"
        )
    return "\n".join(lines)


GOAL_NAMES = {
    "test_below_design": "test < design",
    "test_at_most_half_ecps": "test <= 0.5 eCPS",
    "train_no_worse_than_ecps": "train <= eCPS",
    "ess_share_at_least_25pct": "ESS >= 25%",
    "max_ratio_at_most_50": "max w/w0 <= 50",
    "kept_within_10pct_at_least_90pct": ">= 90% within 10%",
}


def goals_markdown(rows: list[dict[str, Any]]) -> str:
    """Which done-criteria each method meets (yes / no), the supported-target losses and
    the count met."""
    names = list(GOAL_NAMES)
    header = (
        "| method | "
        + " | ".join(GOAL_NAMES[n] for n in names)
        + f" | met | val / test loss, support >= {SUPPORT_FLOOR} |\n|"
        + "---|" * (len(names) + 3)
    )
    lines = [header]
    for r in rows:
        marks = [{True: "yes", False: "no", None: "-"}[r["goals"][n]] for n in names]
        met = sum(bool(r["goals"][n]) for n in names)
        lines.append(
            f"| {r['method']} | " + " | ".join(marks) + f" | {met} | "
            f"{r[f'validation_loss_support{SUPPORT_FLOOR}']:.4f} / "
            f"{r[f'test_loss_support{SUPPORT_FLOOR}']:.4f} |"
        )
    return "\n".join(lines)


def print_split(summary: dict[str, Any], spine_note: str) -> None:
    print(f"spine: {spine_note}")
    print(f"donor families (never in test): {', '.join(summary['donor_families'])}")
    for name in SPLITS:
        part = summary[name]
        print(
            f"\n{name}: {part['targets']} targets ({part['national']} national, "
            f"{part['state']} state, {part[f'support_below_{SUPPORT_FLOOR}']} with fewer than "
            f"{SUPPORT_FLOOR} supporting households), {len(part['groups'])} groups"
        )
        if name != "train":
            for g in part["groups"]:
                print(f"  {g['family']:<12} {g['group']:<48} {g['targets']:>4}")


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--epochs", type=int, default=4_000, help="epochs of our solvers")
    parser.add_argument("--only", nargs="*", help="run only these variant names")
    parser.add_argument(
        "--gate-seeds",
        type=int,
        nargs="*",
        default=[],
        help=f"rerun {', '.join(SEED_CHECKED)} with these seeds (is the gates' effect noise?)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    problem, spine_note = load_problem(args.work_dir)
    summary = split_summary(problem)
    print_split(summary, spine_note)

    rows: list[dict[str, Any]] = [
        {"method": "design", "label": "design weights (not calibrated)", "seconds": 0.0,
         **evaluate(problem, problem.design)}
    ]  # fmt: skip
    published = build_weights(args.work_dir, problem.household_ids)
    reference = []
    if published is not None:
        reference.append(
            {
                "method": "build_weights",
                "label": "the build's published weights (trained with the test families: "
                "not a fair test, the issue's reference)",
                **evaluate(problem, published),
            }
        )
    chosen = [v for v in variants(args.epochs) if not args.only or v.name in args.only]
    for variant in chosen:
        print(f"\nrunning {variant.name}: {variant.label}", flush=True)
        for row in run_variant(problem, variant):
            rows.append(row)
            print(markdown([row]).splitlines()[-1], flush=True)

    seed_rows: list[dict[str, Any]] = []
    for seed in args.gate_seeds:
        for variant in variants(args.epochs):
            if variant.name in SEED_CHECKED:
                print(f"\nrunning {variant.name} with seed {seed}", flush=True)
                seed_rows.extend(run_variant(problem, reseeded(variant, seed)))
                print(markdown(seed_rows[-1:]).splitlines()[-1], flush=True)

    design = rows[0]
    ecps = next((r for r in rows if r["method"] == "ecps"), None)
    for row in rows + reference + seed_rows:
        row["goals"] = goals(row, design, ecps)
    table = markdown(rows + reference)
    goal_table = goals_markdown(rows + reference)
    chosen_default = recommend(rows)
    print(f"\n{table}\n\n{goal_table}")
    seed_table = markdown(seed_rows) if seed_rows else ""
    if seed_rows:
        print(f"\nother seeds:\n{seed_table}")
    if chosen_default is not None:
        print(f"\nrecommended by the rule in `recommend` (no test): {chosen_default['method']}")
    out = args.out or ROOT / "benchmarks" / "results" / f"calibration_split_{dt.date.today()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "date": dt.date.today().isoformat(),
                "work_dir": str(args.work_dir),
                "inputs": input_files(args.work_dir),
                "problem": {
                    "targets": int(problem.matrix.shape[0]),
                    "households": int(problem.matrix.shape[1]),
                    "nonzeros": int(problem.matrix.nnz),
                    "fixed_households": int(problem.fixed.sum()),
                    "spine": spine_note,
                },
                "split": summary,
                "goals": {
                    "ess_share_floor": ESS_FLOOR,
                    "max_ratio": MAX_RATIO,
                    "within": WITHIN,
                    "selections": SELECTIONS,
                },
                "machine": {
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "load_average": os.getloadavg(),
                    "torch": torch.__version__,
                    "torch_threads": 1,
                },
                "methods": rows,
                "reference": reference,
                "seed_check": seed_rows,
                "seed_table": seed_table,
                "table": table,
                "goals_table": goal_table,
                "recommended": None if chosen_default is None else chosen_default["method"],
                "recommendation_rule": recommend.__doc__,
            },
            indent=2,
            default=_json_default,
        )
    )
    print(f"\nwrote {out}")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | np.ndarray):
        return list(value)
    if isinstance(value, Callable):
        return repr(value)
    return str(value)


if __name__ == "__main__":
    main()
