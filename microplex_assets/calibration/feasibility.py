"""Targets no weighting can meet, found before any solver runs.

Two kinds, each named with its value: a target whose sign no non-negative weights can
reach (a negative total over contributions that are all >= 0, or the reverse), which is
dropped into the ledger like the spine's overshoots; and two registry targets with the
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
