"""Targets no weighting can meet, found before any solver runs.

Two kinds, each named with its value: a target whose sign no non-negative weights can
reach (a negative total over contributions that are all >= 0, or the reverse), which is
dropped into the ledger like the spine's overshoots; and two targets with identical
household contributions (the same quantity) whose values disagree beyond a tolerance,
which is an error: the registry contradicts itself and a solver would only split the
difference silently.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from microplex_assets.calibration.matrix import TargetMatrix
from microplex_assets.targets.model import TargetSet

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
    ledger = matrix.ledger.copy()
    for target, value in zip(
        np.array(matrix.targets.targets, dtype=object)[bad], matrix.values[bad], strict=True
    ):
        sign = "positive" if value > 0 else "negative"
        row = ledger["name"] == target.name
        ledger.loc[row, "status"] = "dropped"
        ledger.loc[row, "reason"] = (
            f"infeasible: value {value:.6g} is {sign} but no household contribution is; "
            "no non-negative weights reach it"
        )
    keep = ~bad
    return replace(
        matrix,
        matrix=matrix.matrix[keep].tocsr(),
        targets=TargetSet(tuple(t for t, k in zip(matrix.targets, keep, strict=True) if k)),
        ledger=ledger,
        train=matrix.train[keep],
        test=matrix.test[keep],
    )


def contradictions(
    matrix: TargetMatrix, tolerance: float = CONTRADICTION_TOLERANCE
) -> list[tuple[str, str, float, float]]:
    """Pairs of kept targets with identical contribution rows whose values differ by more
    than ``tolerance`` of the larger: (first name, second name, first value, second)."""
    m = matrix.matrix.tocsr()
    m.sort_indices()
    first_by_row: dict[tuple[bytes, bytes], int] = {}
    found = []
    values = matrix.values
    for i in range(m.shape[0]):
        start, end = m.indptr[i], m.indptr[i + 1]
        if start == end:
            continue
        key = (m.indices[start:end].tobytes(), m.data[start:end].tobytes())
        j = first_by_row.setdefault(key, i)
        if j == i:
            continue
        scale = max(abs(values[i]), abs(values[j]))
        if scale > 0 and abs(values[i] - values[j]) > tolerance * scale:
            names = (matrix.targets.targets[j].name, matrix.targets.targets[i].name)
            found.append((*names, float(values[j]), float(values[i])))
    return found


def require_consistent(matrix: TargetMatrix, tolerance: float = CONTRADICTION_TOLERANCE) -> None:
    """Raise naming every contradictory pair (see ``contradictions``)."""
    pairs = contradictions(matrix, tolerance)
    if pairs:
        shown = "; ".join(f"{a} = {va:.6g} vs {b} = {vb:.6g}" for a, b, va, vb in pairs[:5])
        raise ContradictoryTargetsError(
            f"{len(pairs)} pairs of targets measure the same households identically but "
            f"differ by more than {tolerance:.0%}: {shown}; expected one value per quantity "
            "(drop or correct one in the registry)"
        )
