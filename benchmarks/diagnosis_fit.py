"""The national build's solver path on the split problem, as ``calibration_diagnosis.py``
and the benchmarks built on it run it: ``build_config``, the scaled design weights,
``fit_build`` and its family-limit refits (``fit_build_to_limits``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from split_fits import residual_rows
from split_problem import SplitProblem
from split_scoring import evaluate

from microplex_assets.calibration.design_rake import demographic_margins, rake_factors
from microplex_assets.calibration.fit_weights import (
    demographic_boosts,
    family_fit_weights,
    fit_to_family_limits,
    with_target_boost,
)
from microplex_assets.calibration.fit_weights import (
    family_losses as fit_weights_family_losses,
)
from microplex_assets.calibration.scorecard import PROTECTED_FAMILIES, protected_allowed_loss
from microplex_assets.calibration.solver import CalibrationResult, calibrate
from microplex_assets.calibration.solver_config import SolverConfig
from microplex_assets.run_profile.profile import national_solver
from microplex_assets.targets.state_tables import NATIONAL_HOUSEHOLDS_TARGET


def build_config(**overrides: Any) -> SolverConfig:
    """The national build's solver (profile defaults, no gates), with overrides."""
    return SolverConfig(**{"l0_lambda": 0.0, **national_solver({}), **overrides})


def scaled_design(problem: SplitProblem, scale: bool = True) -> np.ndarray:
    """The free households' starting weights: design, put on the household count (as
    ``weights.household_count_scale``) when ``scale``."""
    free, design = ~problem.fixed, problem.design
    initial = design[free].copy()
    if scale:
        is_count = problem.targets["name"] == NATIONAL_HOUSEHOLDS_TARGET
        if is_count.any():
            count = float(problem.targets.loc[is_count, "value"].iloc[0])
            initial *= (count - design[~free].sum()) / initial.sum()
    return initial


def fit_build(
    problem: SplitProblem,
    config: SolverConfig,
    fit_weight_fn=None,
    with_validation: bool = True,
    family_boosts: dict[str, float] | None = None,
) -> tuple[np.ndarray, CalibrationResult]:
    """``weights.solve_weights`` on the split problem: train fitted, validation selecting
    (``with_validation``; without, only train rows reach the solver), test never passed.
    The one fit sequence of the benchmarks (residual rows, family fit weights, calibrate,
    merge). ``fit_weight_fn(index) -> multipliers`` replaces the family fit weights when
    given; ``family_boosts`` (family -> boost) overrides ``config.protected_boost`` per
    family."""
    initial = scaled_design(problem, config.scale_to_household_count)
    anchor = None
    if config.scale_to_household_count and config.rake_to_age:
        labels, contributions, totals = demographic_margins(
            problem.targets["name"].tolist(),
            problem.targets["group"].tolist(),
            problem.values,
            problem.matrix,
            config.rake_filing_statuses,
        )
        if labels:
            full = problem.design.copy()
            full[~problem.fixed] = initial
            anchor = (full * rake_factors(contributions, totals, full, problem.fixed))[
                ~problem.fixed
            ]
    rows = problem.mask("train") | (problem.mask("validation") if with_validation else False)
    matrix, residual, index = residual_rows(problem, rows)
    fit_weight = None
    family_boosts = demographic_boosts(config.population_boost, family_boosts)
    if fit_weight_fn is not None:
        fit_weight = fit_weight_fn(index)
    elif config.balance_families or config.protected_boost != 1.0 or family_boosts:
        families = problem.targets["family"].to_numpy()[index]
        fit_weight = family_fit_weights(
            families,
            PROTECTED_FAMILIES,
            config.protected_boost,
            config.balance_families,
            family_boosts,
        )
    fit_weight = with_target_boost(  # as weights.solve_weights applies it
        fit_weight,
        problem.targets["name"].to_numpy()[index] == NATIONAL_HOUSEHOLDS_TARGET,
        config.household_count_boost,
    )
    result = calibrate(
        matrix,
        residual,
        problem.is_national[index],
        problem.mask("train")[index],
        initial,
        config,
        fit_weight,
        anchor,
    )
    return problem.merge(result.weights), result


def train_family_losses(problem: SplitProblem, weights: np.ndarray) -> dict[str, float]:
    """Each protected family's loss over its *train* targets only."""
    return fit_weights_family_losses(
        problem.matrix @ weights,
        problem.values,
        problem.is_national,
        problem.targets["family"].to_numpy(),
        PROTECTED_FAMILIES,
        problem.mask("train"),
    )


def fit_build_to_limits(
    problem: SplitProblem, config: SolverConfig, ecps_weights: np.ndarray
) -> tuple[np.ndarray, CalibrationResult, dict[str, Any]]:
    """``fit_build`` with the family-limit refits (``fit_weights.fit_to_family_limits``) as
    ``weights.solve_weights`` runs them: limits from the eCPS method's train family losses,
    boosts raised on train losses only."""
    limits = {
        f: protected_allowed_loss(loss)
        for f, loss in train_family_losses(problem, ecps_weights).items()
    }
    health: list[dict[str, Any]] = []

    def fit(boosts: dict[str, float]) -> tuple[np.ndarray, CalibrationResult]:
        weights, result = fit_build(problem, config, family_boosts=boosts)
        scored = evaluate(problem, weights)
        health.append(
            {k: scored[k] for k in ("train_loss", "validation_loss", "ess_share", "max_ratio")}
            | {"chosen_epoch": int(result.best_epoch)}
        )
        print(f"  round {len(health) - 1}: boosts {boosts} -> {health[-1]}", flush=True)
        return weights, result

    fitted = fit_to_family_limits(
        fit,
        lambda weights: train_family_losses(problem, weights),
        limits,
        {f: config.protected_boost for f in limits},
        config.family_limit_rounds,
        config.family_limit_margin,
        config.family_limit_max_step,
    )
    info = {"limits": limits, "chosen_round": fitted.chosen_round, "rounds": fitted.rounds}
    for number, row in enumerate(fitted.rounds):  # what each round's weights score
        row.update(health[number])
    return fitted.weights, fitted.result, info
