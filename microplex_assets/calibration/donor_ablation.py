"""Donor ablation: the same build without donor integration, scored the same way.

The claim "donors help" is tested, not assumed: the pre-donor seed goes through the same
stage 5-7 functions (backend, support, spine, entities, PolicyEngine target matrix, the
configured solver) and both populations are scored on train, held-out and all kept
targets — on each one's own kept set and on the targets both kept — plus the top-tail
aggregates (long-term capital gains, dividends, top 1% AGI share) under their
calibrated weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from microplex_assets.calibration.matrix import TargetMatrix
from microplex_assets.calibration.top_tail import top_tail_aggregates


def population_scores(matrix: TargetMatrix, weights: np.ndarray) -> dict[str, Any]:
    """Train / held-out / all-kept loss, target counts and top-tail aggregates."""
    scores: dict[str, Any] = {
        "train_loss": matrix.loss(weights, matrix.train),
        "held_out_loss": matrix.loss(weights, ~matrix.train) if (~matrix.train).any() else None,
        "all_kept_loss": matrix.loss(weights),
        "kept_targets": int(len(matrix.targets)),
        "held_out_targets": int((~matrix.train).sum()),
    }
    if matrix.top_tail is not None:
        scores.update(top_tail_aggregates(matrix.top_tail, weights))
    return scores


def common_target_losses(
    before: TargetMatrix, before_weights: np.ndarray, after: TargetMatrix, after_weights: np.ndarray
) -> dict[str, Any]:
    """Both populations' losses on the targets both kept (same names, same split)."""
    names_before = {t.name: i for i, t in enumerate(before.targets)}
    pairs = [
        (names_before[t.name], j) for j, t in enumerate(after.targets) if t.name in names_before
    ]
    if not pairs:
        return {"targets": 0}
    rows_before = np.zeros(len(before.targets), dtype=bool)
    rows_after = np.zeros(len(after.targets), dtype=bool)
    rows_before[[i for i, _ in pairs]] = True
    rows_after[[j for _, j in pairs]] = True
    out: dict[str, Any] = {"targets": len(pairs)}
    for label, matrix, weights, rows in (
        ("before", before, before_weights, rows_before),
        ("after", after, after_weights, rows_after),
    ):
        held_out = rows & ~matrix.train
        out[f"{label}_train_loss"] = matrix.loss(weights, rows & matrix.train)
        out[f"{label}_held_out_loss"] = matrix.loss(weights, held_out) if held_out.any() else None
    return out


def ablation_comparison(
    before: TargetMatrix, before_weights: np.ndarray, after: TargetMatrix, after_weights: np.ndarray
) -> dict[str, Any]:
    """Before/after scores and the common-target comparison, JSON-serialisable."""
    return {
        "before_donor_integration": population_scores(before, before_weights),
        "after_donor_integration": population_scores(after, after_weights),
        "common_targets": common_target_losses(before, before_weights, after, after_weights),
    }
