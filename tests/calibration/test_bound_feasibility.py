"""Targets the weight bound puts out of reach are dropped into the ledger, by the floor rule."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from microplex_assets.calibration.feasibility import bound_overshoots, drop_bound_overshoots
from tests.calibration.problems import synthetic_matrix


def _with_value(matrix, row: int, value: float):
    targets = list(matrix.targets.targets)
    targets[row] = replace(targets[row], value=value)
    return replace(matrix, targets=type(matrix.targets)(tuple(targets)))


def test_a_target_below_its_records_floor_is_dropped_with_the_ratio():
    matrix, truth = synthetic_matrix(households=60)
    design = np.full(len(matrix.household_ids), 100.0)
    fixed = np.zeros(len(design), dtype=bool)
    row = int(np.flatnonzero(np.asarray((matrix.matrix.tocsr() < 0).sum(axis=1)).ravel() == 0)[0])
    floor = float((matrix.matrix.tocsr()[row] @ (design / 50))[0])
    assert floor > 0
    name = matrix.targets.targets[row].name
    # a value the floor overshoots 3x is out of reach; one it overshoots 1.5x is kept
    unreachable = _with_value(matrix, row, floor / 3)
    kept = drop_bound_overshoots(unreachable, design, fixed, 50.0)
    assert name not in {t.name for t in kept.targets}
    assert len(kept.targets) == len(matrix.targets) - 1
    reason = kept.ledger.set_index("name").loc[name, "reason"]
    assert reason == (
        "unreachable under the weight bound: its records at their lowest allowed weights "
        "(design / 50) give 3.00x"
    )
    reachable = _with_value(matrix, row, floor / 1.5)
    assert drop_bound_overshoots(reachable, design, fixed, 50.0) is reachable


def test_fixed_records_count_at_their_own_weight():
    matrix, _ = synthetic_matrix(households=60)
    m = matrix.matrix.tocsr()
    design = np.full(len(matrix.household_ids), 100.0)
    row = int(np.flatnonzero(np.asarray((m < 0).sum(axis=1)).ravel() == 0)[0])
    floor_free = float((m[row] @ (design / 50))[0])
    reachable = _with_value(matrix, row, floor_free)  # at the floor: reachable when all free
    none_fixed = np.zeros(len(design), dtype=bool)
    assert bound_overshoots(reachable, design, none_fixed, 50.0)[row] == 0
    # the same records fixed at their design weights give 50x the value: out of reach
    all_fixed = np.ones(len(design), dtype=bool)
    assert bound_overshoots(reachable, design, all_fixed, 50.0)[row] == pytest.approx(50.0)
