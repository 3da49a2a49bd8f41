"""Stage 7: household weights from a calibration backend, and the diagnostics every weight
vector carries.

Backends: ``microplex`` (default) fits the weights to the training targets with the
configured method (``SolverConfig.method``: chi-square calibration for national cells, the
torch solver for local shards), the held-out targets choosing among its candidates;
``none`` passes the sample's design weights through, honestly labelled as not calibrated.
The eCPS-method reproduction runs through the same solver with the incumbent's settings,
so the two differ only in method, never in data or loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.calibration.design_rake import demographic_margins, rake_factors
from microplex_assets.calibration.fit_weights import (
    demographic_boosts,
    family_fit_weights,
    family_losses,
    fit_to_family_limits,
    with_target_boost,
)
from microplex_assets.calibration.fixed_records import fixed_household_ids, residual_problem
from microplex_assets.calibration.loss import kish_ess
from microplex_assets.calibration.matrix import TargetMatrix, require_finite_matrix
from microplex_assets.calibration.scorecard import PROTECTED_FAMILIES, protected_allowed_loss
from microplex_assets.calibration.solver import calibrate
from microplex_assets.calibration.solver_config import SolverConfig
from microplex_assets.targets.state_tables import NATIONAL_HOUSEHOLDS_TARGET

CALIBRATION_BACKENDS = ("microplex", "none")


@dataclass
class CalibrationRun:
    """A weight vector with how it was made: backend, label, loss history, timing."""

    weights: pd.Series  # household_weight by household_id
    backend: str
    label: str
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    best_epoch: int | None = None
    seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)
    fixed_records: dict[str, Any] = field(default_factory=dict)
    # ESS / ratio of the free households and the cell's weights_healthy limits
    health: dict[str, Any] = field(default_factory=dict)
    # the family-limit refits (limits, boosts and train family losses per round), if any
    family_limit_fit: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "label": self.label,
            "seconds": round(self.seconds, 2),
            "best_epoch": self.best_epoch,
            "epochs_run": int(len(self.history)) if len(self.history) else None,
            "config": self.config,
            "fixed_records": self.fixed_records,
            **({"family_limit_fit": self.family_limit_fit} if self.family_limit_fit else {}),
        }


def weight_diagnostics(weights: np.ndarray) -> dict[str, Any]:
    """Records, nonzero weights, effective sample size (Kish) and concentration."""
    weights = np.asarray(weights, dtype=float)
    total = float(weights.sum())
    ess = kish_ess(weights)
    ordered = np.sort(weights)[::-1]
    top_1pct = ordered[: max(1, len(ordered) // 100)].sum()
    return {
        "records": int(len(weights)),
        "nonzero_weights": int((weights > 0).sum()),
        "weight_total": total,
        "effective_sample_size": ess,
        "ess_share": ess / len(weights) if len(weights) else 0.0,
        "largest_weight_share": float(ordered[0] / total) if total > 0 else 0.0,
        "top_1pct_records_weight_share": float(top_1pct / total) if total > 0 else 0.0,
        "non_finite_weights": int((~np.isfinite(weights)).sum()),
        "negative_weights": int((weights < 0).sum()),
    }


def design_weights(household: pd.DataFrame) -> pd.Series:
    """The sample's design weights by household_id; NaN, infinite or negative ones are an
    error naming the households (every solver and score starts from them)."""
    weights = household["household_weight"].to_numpy(dtype=float)
    ids = household["household_id"].to_numpy()
    bad = ~np.isfinite(weights) | (weights < 0)
    if bad.any():
        where = np.flatnonzero(bad)[:5]
        raise ValueError(
            f"household_weight: {int(bad.sum())} of {len(weights)} design weights are NaN, "
            f"infinite or negative, e.g. household_id {ids[where].tolist()} = "
            f"{weights[where].tolist()}; expected finite weights >= 0"
        )
    return pd.Series(weights, index=pd.Index(ids, name="household_id"), name="household_weight")


def solve_weights(
    matrix: TargetMatrix,
    initial: pd.Series,
    config: SolverConfig,
    backend: str,
    label: str,
    fixed_ids: np.ndarray | None = None,
    family_limits: dict[str, float] | None = None,
) -> CalibrationRun:
    """Fit weights to the matrix's training targets, starting from ``initial``.

    Households in ``fixed_ids`` (the spine) keep their initial weights; the others are
    fitted to the targets minus the spine's contribution (see ``fixed_records``). With
    ``family_limits`` (family -> largest allowed *train* loss, ``protected_family_limits``)
    and ``config.family_limit_rounds`` > 0, the fit is repeated with the boosts of the
    families over their limit raised (``fit_weights.fit_to_family_limits``)."""
    fixed_ids = np.zeros(0, dtype=np.int64) if fixed_ids is None else fixed_ids
    require_finite_matrix(matrix)
    start = matrix.aligned(initial)
    anchor = None
    if config.scale_to_household_count:
        start = start * household_count_scale(matrix, start, fixed_ids)
        if config.rake_to_age:
            anchor = start * demographic_rake(matrix, start, fixed_ids, config.rake_filing_statuses)
    problem = residual_problem(matrix, start, fixed_ids)
    families = matrix.families[problem.rows]
    is_household_count = (
        np.array([t.name for t in matrix.targets], dtype=object)[problem.rows]
        == NATIONAL_HOUSEHOLDS_TARGET
    )

    def fit(boosts: dict[str, float] | None) -> tuple[np.ndarray, Any]:
        fit_weight = None
        boosts = demographic_boosts(config.population_boost, boosts)
        if config.balance_families or config.protected_boost != 1.0 or boosts:
            fit_weight = family_fit_weights(
                families,
                PROTECTED_FAMILIES,
                config.protected_boost,
                config.balance_families,
                boosts,
            )
        fit_weight = with_target_boost(fit_weight, is_household_count, config.household_count_boost)
        result = calibrate(
            problem.matrix,
            problem.values,
            problem.is_national,
            problem.train,
            problem.initial,
            config,
            fit_weight,
            None if anchor is None else anchor[problem.free],
        )
        return problem.merge(result.weights), result

    refits: dict[str, Any] = {}
    if family_limits and config.family_limit_rounds > 0:
        fitted = fit_to_family_limits(
            fit,
            lambda weights: train_family_losses(matrix, weights, tuple(family_limits)),
            family_limits,
            {f: config.protected_boost for f in family_limits},
            config.family_limit_rounds,
            config.family_limit_margin,
            config.family_limit_max_step,
        )
        merged, result = fitted.weights, fitted.result
        chosen = fitted.rounds[fitted.chosen_round]
        refits = {
            "limits": dict(family_limits),
            "chosen_round": fitted.chosen_round,
            "rounds": fitted.rounds,
            "summary": f"round {fitted.chosen_round} of {len(fitted.rounds)} chosen, boosts "
            f"{chosen['boosts']}, over the train limit by {chosen['over_limit'] or 'none'}",
        }
    else:
        merged, result = fit(None)
    weights = pd.Series(
        merged,
        index=pd.Index(matrix.household_ids, name="household_id"),
        name="household_weight",
    )
    return CalibrationRun(
        weights=weights.reindex(initial.index),
        backend=backend,
        label=label,
        history=result.history,
        best_epoch=int(result.best_epoch),
        seconds=float(result.seconds),
        config=dict(result.config),
        fixed_records=problem.report,
        family_limit_fit=refits,
    )


def train_family_losses(
    matrix: TargetMatrix, weights: np.ndarray, which: tuple[str, ...] = PROTECTED_FAMILIES
) -> dict[str, float]:
    """Each family's loss over its *train* targets (weights in the matrix's column order)."""
    return family_losses(
        matrix.estimates(weights),
        matrix.values,
        matrix.is_national,
        matrix.families,
        which,
        matrix.train,
    )


def protected_family_limits(matrix: TargetMatrix, baseline: np.ndarray) -> dict[str, float]:
    """Each protected family's largest allowed train loss: the baseline weights' (the eCPS
    method's, fitted to train targets only) plus the protected-families gate's tolerance.
    The gate scores a family on all its kept targets; a family whose targets are all train
    (every protected family on the national split) is judged on exactly these."""
    losses = train_family_losses(matrix, baseline)
    return {family: protected_allowed_loss(loss) for family, loss in losses.items()}


def demographic_rake(
    matrix: TargetMatrix,
    start: np.ndarray,
    fixed_ids: np.ndarray | None = None,
    filing_statuses: tuple[str, ...] = (),
) -> np.ndarray:
    """Per-household factor raking ``start`` to the household count, the national
    population by age and the national returns of ``filing_statuses`` (``design_rake``);
    ones when the matrix has none of them."""
    labels, contributions, totals = demographic_margins(
        [t.name for t in matrix.targets],
        list(matrix.groups),
        matrix.values,
        matrix.matrix,
        filing_statuses,
    )
    if not labels:
        return np.ones(len(start))
    fixed = np.isin(matrix.household_ids, np.asarray([] if fixed_ids is None else fixed_ids))
    return rake_factors(contributions, totals, start, fixed)


def household_count_scale(
    matrix: TargetMatrix, initial: np.ndarray, fixed_ids: np.ndarray | None = None
) -> np.ndarray:
    """Per-household factor putting the free households' weights on the national household
    count (the fixed spine's own weights kept): ones when the matrix has no such target."""
    names = [t.name for t in matrix.targets]
    factor = np.ones(len(initial))
    if NATIONAL_HOUSEHOLDS_TARGET not in names:
        return factor
    count = float(matrix.values[names.index(NATIONAL_HOUSEHOLDS_TARGET)])
    fixed = np.isin(matrix.household_ids, np.asarray([] if fixed_ids is None else fixed_ids))
    free_total = float(np.asarray(initial)[~fixed].sum())
    remaining = count - float(np.asarray(initial)[fixed].sum())
    if free_total <= 0 or remaining <= 0:
        raise ValueError(
            f"cannot scale to {NATIONAL_HOUSEHOLDS_TARGET} = {count:,.0f}: the free households "
            f"weigh {free_total:,.0f} and the fixed ones leave {remaining:,.0f}"
        )
    factor[~fixed] = remaining / free_total
    return factor


def calibrate_weights(
    household: pd.DataFrame,
    backend: str,
    matrix: TargetMatrix | None = None,
    config: SolverConfig | None = None,
    baseline: pd.Series | None = None,
) -> CalibrationRun:
    """Household weights for the chosen backend (``matrix`` required unless ``none``).
    With ``config.family_limit_rounds`` > 0 and ``baseline`` weights (the eCPS method's),
    the protected families' train limits come from them (``protected_family_limits``)."""
    if backend not in CALIBRATION_BACKENDS:
        raise ValueError(
            f"unknown calibration backend '{backend}'; expected one of {CALIBRATION_BACKENDS}"
        )
    initial = design_weights(household)
    if backend == "none":
        return CalibrationRun(initial, "none", "design weights (not calibrated)")
    if matrix is None:
        raise ValueError("calibration backend 'microplex' needs the target matrix")
    config = config or SolverConfig()
    limits = None
    if config.family_limit_rounds > 0 and baseline is not None:
        limits = protected_family_limits(matrix, matrix.aligned(baseline))
    return solve_weights(
        matrix,
        initial,
        config,
        backend,
        (
            "calibrated to training targets (chi-square), pull chosen by held-out loss "
            "among healthy optima"
            if config.method == "chi_square"
            else "calibrated to training targets, epoch chosen by held-out loss among "
            "converged ones"
        ),
        fixed_ids=fixed_household_ids(household),
        family_limits=limits,
    )
