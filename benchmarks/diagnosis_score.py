"""What ``calibration_diagnosis.py`` reports of one weight vector: the protected families'
losses against the eCPS method's, the issue's numbers (``score``) and the build's own
release gates (``release_gates``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from split_problem import SplitProblem
from split_scoring import evaluate

from microplex_assets.calibration.loss import target_loss
from microplex_assets.calibration.scorecard import (
    CANDIDATE,
    ECPS_METHOD,
    PROTECTED_FAMILIES,
    Scorecard,
    evaluate_gates,
    protected_allowed_loss,
)
from microplex_assets.calibration.weight_health import (
    weight_health,
    weights_healthy_gate,
)
from microplex_assets.calibration.weights import CalibrationRun


def family_losses(problem: SplitProblem, weights: np.ndarray) -> dict[str, float]:
    """The protected-families gate's per-family loss."""
    estimates = problem.matrix @ weights
    out = {}
    for family in PROTECTED_FAMILIES:
        mask = (problem.targets["family"] == family).to_numpy()
        if mask.any():
            out[family] = target_loss(
                estimates[mask], problem.values[mask], problem.is_national[mask]
            )
    return out


def failing_families(ours: dict[str, float], ecps: dict[str, float]) -> list[str]:
    """Protected families above the eCPS method's loss + max(5%, 0.005)."""
    return [f for f, loss in ours.items() if loss > protected_allowed_loss(ecps[f])]


def score(problem: SplitProblem, weights: np.ndarray, ecps_families: dict[str, float]) -> dict:
    """The issue's numbers for one weight vector."""
    record = {k: v for k, v in evaluate(problem, weights).items() if k != "group_mse"}
    estimates = problem.matrix @ weights
    record["all_loss"] = target_loss(estimates, problem.values, problem.is_national)
    record["families"] = family_losses(problem, weights)
    if ecps_families:
        record["failing_families"] = failing_families(record["families"], ecps_families)
        # loss - allowed per protected family (> 0: fails the gate)
        record["protected_margins"] = {
            f: round(loss - protected_allowed_loss(ecps_families[f]), 5)
            for f, loss in record["families"].items()
        }
    return record


def release_gates(
    problem: SplitProblem, weights: np.ndarray, ecps_weights: np.ndarray
) -> dict[str, str]:
    """The build's own gate functions on these weights (``Scorecard`` with the candidate,
    the eCPS method and the design weights; ``weights_healthy`` at 25% / 50): gate ->
    pass / fail and its summary."""
    frame = problem.targets.copy()
    frame["train"] = problem.mask("train")
    card = Scorecard(
        frame,
        {
            CANDIDATE: problem.matrix @ weights,
            ECPS_METHOD: problem.matrix @ ecps_weights,
            "design": problem.matrix @ problem.design,
        },
    )
    gates = [g for g in evaluate_gates(card) if g.applicable]
    ids = pd.Index(problem.household_ids, name="household_id")
    health = weight_health(
        pd.Series(weights, index=ids),
        pd.Series(problem.design, index=ids),
        problem.household_ids[problem.fixed],
    )
    health["limits"] = {"min_ess_share": 0.25, "max_ratio": 50.0, "enforced": True}
    gates.append(weights_healthy_gate(CalibrationRun(pd.Series(weights), "x", "x", health=health)))
    return {g.name: f"{g.status}: {g.summary}" for g in gates}
