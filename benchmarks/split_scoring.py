"""Scoring for ``calibration_split.py``: losses per split, weight health and the done-criteria
a weight vector meets."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from split_problem import ESS_FLOOR, MAX_RATIO, SPLITS, SUPPORT_FLOOR, WITHIN, SplitProblem

from microplex_assets.calibration.loss import target_loss

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
