"""Targets no weighting can meet, found before any solver runs.

Three kinds, each named with its value: a target whose sign no non-negative weights can
reach (a negative total over contributions that are all >= 0, or the reverse), which is
dropped into the ledger like the spine's overshoots; a target the weight bound puts out of
reach (its supporting records at their lowest allowed weights still overshoot it), dropped
the same way; and two registry targets with the
same definition (the same quantity) whose values disagree beyond a tolerance, which is an
error where the registry is resolved: it contradicts itself and a solver would only split
the difference silently. (The 2024 registry has no two targets with one definition.)
"""

from __future__ import annotations

import numpy as np

from microplex_assets.calibration.matrix import TargetMatrix
from microplex_assets.targets.model import Target, TargetSet

CONTRADICTION_TOLERANCE = 0.25  # two agencies' estimates of one quantity may differ this much


class ContradictoryTargetsError(ValueError):
    """Two targets measure the same households the same way but disagree on the value."""


def sign_infeasible(matrix: TargetMatrix) -> np.ndarray:
    """Per kept target: True when no non-negative weights can give its sign."""
    m = matrix.matrix.tocsr()
    has_positive = np.asarray((m > 0).sum(axis=1)).ravel() > 0
    has_negative = np.asarray((m < 0).sum(axis=1)).ravel() > 0
    values = matrix.values
    return ((values > 0) & ~has_positive) | ((values < 0) & ~has_negative)


def drop_sign_infeasible(matrix: TargetMatrix) -> TargetMatrix:
    """Drop (into the ledger, with the value) targets whose sign no weights reach."""
    bad = sign_infeasible(matrix)
    if not bad.any():
        return matrix
    reasons = {}
    for target, value in zip(
        np.array(matrix.targets.targets, dtype=object)[bad], matrix.values[bad], strict=True
    ):
        sign = "positive" if value > 0 else "negative"
        reasons[target.name] = (
            f"infeasible: value {value:.6g} is {sign} but no household contribution is; "
            "no non-negative weights reach it"
        )
    return matrix.drop_targets(reasons)


# A target whose lowest reachable estimate under the weight bound is this many times its
# value is dropped: its relative error can never fall below (factor - 1).
BOUND_OVERSHOOT_FACTOR = 2.0


def bound_overshoots(
    matrix: TargetMatrix,
    design: np.ndarray,
    fixed: np.ndarray,
    max_weight_ratio: float,
    factor: float = BOUND_OVERSHOOT_FACTOR,
) -> np.ndarray:
    """Per kept target: the lowest estimate bounded weights reach over its value, where that
    is more than ``factor`` (else 0). Only positive targets over non-negative contributions:
    each free household at its lowest allowed weight (design / ratio), the fixed (spine)
    records at their own weights."""
    m = matrix.matrix.tocsr()
    nonnegative = np.asarray((m < 0).sum(axis=1)).ravel() == 0
    lowest = m @ np.where(fixed, design, design / max_weight_ratio)
    values = matrix.values
    ratio = np.divide(lowest, values, out=np.zeros_like(lowest), where=values > 0)
    return np.where(nonnegative & (values > 0) & (ratio > factor), ratio, 0.0)


def drop_bound_overshoots(
    matrix: TargetMatrix,
    design: np.ndarray,
    fixed: np.ndarray,
    max_weight_ratio: float,
    factor: float = BOUND_OVERSHOOT_FACTOR,
) -> TargetMatrix:
    """Drop (into the ledger, with the ratio) targets the weight bound puts out of reach.

    Why: with every weight within [w0 / r, r * w0], a target whose supporting records give
    more than ``factor`` times its value even at w0 / r keeps a squared relative error of at
    least (factor - 1)^2 under any weights; one such target (the count of 47 returns with
    medical-expense deductions at $5-10m AGI, 30 records giving 1,461 at their floor) held
    three quarters of the national train loss and pulled every solver toward it. Targets
    the bound leaves short (errors at most 1) stay: they measure a real shortfall."""
    ratio = bound_overshoots(matrix, design, fixed, max_weight_ratio, factor)
    if not ratio.any():
        return matrix
    names = np.array([t.name for t in matrix.targets], dtype=object)
    return matrix.drop_targets(
        {
            name: (
                f"unreachable under the weight bound: its records at their lowest allowed "
                f"weights (design / {max_weight_ratio:g}) give {share:.2f}x"
            )
            for name, share in zip(names[ratio > 0], ratio[ratio > 0], strict=True)
        }
    )


def definition_key(target: Target) -> tuple:
    """What a target measures, without its name, value or source."""
    return (target.period, target.variable, target.aggregation, target.entity, target.scope,
            target.geography, tuple(sorted(map(repr, target.filters))))  # fmt: skip


def contradictions(
    targets: TargetSet, tolerance: float = CONTRADICTION_TOLERANCE
) -> list[tuple[Target, Target]]:
    """Pairs of targets with the same definition (variable, aggregation, entity, scope,
    geography, filters, period) whose values differ by more than ``tolerance`` of the
    larger. (Identical matrix rows are not enough: on a small candidate a filter can
    select the same records as a broader target without the two meaning the same.)"""
    first: dict[tuple, Target] = {}
    found = []
    for target in targets:
        other = first.setdefault(definition_key(target), target)
        if other is target:
            continue
        scale = max(abs(target.value), abs(other.value))
        if scale > 0 and abs(target.value - other.value) > tolerance * scale:
            found.append((other, target))
    return found


def require_consistent(targets: TargetSet, tolerance: float = CONTRADICTION_TOLERANCE) -> None:
    """Raise naming every contradictory pair (see ``contradictions``)."""
    pairs = contradictions(targets, tolerance)
    if pairs:
        shown = "; ".join(
            f"{a.name} ({a.source.get('agency')}) = {a.value:.6g} vs {b.name} "
            f"({b.source.get('agency')}) = {b.value:.6g}"
            for a, b in pairs[:5]
        )
        raise ContradictoryTargetsError(
            f"{len(pairs)} pairs of targets define the same quantity but differ by more than "
            f"{tolerance:.0%}: {shown}; expected one value per quantity (correct or drop one "
            "in the registry)"
        )
