"""The certified bounds on what healthy weights can reach (calibration/reach.py)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import Bounds, minimize

from microplex_assets.calibration.loss import kish_ess, target_loss
from microplex_assets.calibration.reach import (
    certified_lower_bound,
    healthy_frontier,
    least_train_loss,
    train_quadratic,
    within_band_reached,
)


def _problem(seed: int = 3, households: int = 60, targets: int = 12):
    rng = np.random.default_rng(seed)
    dense = rng.gamma(1.0, 1.0, (targets, households)) * (rng.random((targets, households)) < 0.4)
    dense[0] = 1.0  # a household count
    design = rng.uniform(50, 150, households)
    fixed = np.zeros(households, dtype=bool)
    fixed[-2:] = True
    design[-2:] = 1.0
    values = dense @ design * rng.uniform(0.6, 1.6, targets)
    is_national = np.arange(targets) < 5
    return sp.csr_matrix(dense), values, is_national, design, fixed


def _box_minimum(problem, high: float) -> float:
    """The box-only minimum by L-BFGS-B, run to convergence on this small problem."""
    solution = minimize(
        lambda r: (problem.loss(r), problem.gradient(r)),
        np.ones(problem.matrix.shape[1]),
        jac=True,
        method="L-BFGS-B",
        bounds=Bounds(0.0, high),
        options={"maxiter": 20_000, "ftol": 1e-15, "gtol": 1e-12},
    )
    return float(solution.fun)


def test_train_quadratic_is_the_target_loss():
    matrix, values, national, design, fixed = _problem()
    problem = train_quadratic(matrix, values, national, design, fixed)
    rng = np.random.default_rng(0)
    for ratios in (np.ones((~fixed).sum()), rng.uniform(0.2, 3.0, (~fixed).sum())):
        weights = design.copy()
        weights[~fixed] = design[~fixed] * ratios
        assert problem.loss(ratios) == pytest.approx(
            target_loss(matrix @ weights, values, national), rel=1e-10
        )


def test_box_bound_is_tight_and_below_every_box_point():
    matrix, values, national, design, fixed = _problem()
    problem = train_quadratic(matrix, values, national, design, fixed)
    result = least_train_loss(problem, max_ratio=3.0)
    reference = _box_minimum(problem, 3.0)
    assert result["lower_bound"] <= reference + 1e-9
    assert result["loss_at_point"] == pytest.approx(reference, rel=1e-4, abs=1e-9)
    assert result["lower_bound"] == pytest.approx(reference, rel=1e-3, abs=1e-8)
    # from any point of the box the bound stays below the minimum (weak duality)
    rng = np.random.default_rng(1)
    for _ in range(5):
        point = rng.uniform(0, 3.0, len(problem.design))
        assert certified_lower_bound(problem, point, 3.0) <= reference + 1e-12


def test_ess_floor_binds_and_the_bound_respects_it():
    matrix, values, national, design, fixed = _problem(seed=5)
    problem = train_quadratic(matrix, values, national, design, fixed)
    free = problem.design
    loose = least_train_loss(problem, max_ratio=40.0)
    loose_ess = kish_ess(free * loose["ratios"]) / len(free)
    floor = min(0.95, loose_ess + 0.2)
    tight = least_train_loss(problem, max_ratio=40.0, min_ess_share=floor)
    assert tight["ess_share"] >= floor - 1e-4
    assert tight["cone_multiplier"] > 0
    assert tight["lower_bound"] <= tight["loss_at_point"] + 1e-9
    assert tight["lower_bound"] == pytest.approx(tight["loss_at_point"], rel=1e-3, abs=1e-8)
    # the floor costs fit: the certified bound with it is above the loose optimum
    assert tight["lower_bound"] > loose["loss_at_point"]


def test_the_frontier_reaches_the_interior_point_optimum_and_stays_healthy():
    """The Lagrangian sweep finds the same constrained minimum as Clarabel, from above, at a
    point whose ESS reaches the floor; each point's certified bound stays below the optimum."""
    matrix, values, national, design, fixed = _problem(seed=5)
    problem = train_quadratic(matrix, values, national, design, fixed)
    loose = least_train_loss(problem, max_ratio=40.0)
    floor = min(0.95, kish_ess(problem.design * loose["ratios"]) / len(problem.design) + 0.2)
    exact = least_train_loss(problem, max_ratio=40.0, min_ess_share=floor)
    frontier = healthy_frontier(
        problem, 40.0, floor, bisections=12, iterations=5_000, log=lambda _: None
    )
    best = frontier["least_healthy_loss"]
    assert kish_ess(problem.design * frontier["ratios"]) / len(problem.design) >= floor
    assert problem.loss(frontier["ratios"]) == pytest.approx(best)
    assert exact["lower_bound"] - 1e-9 <= best <= exact["loss_at_point"] * 1.01
    assert all(p["lower_bound"] <= exact["loss_at_point"] + 1e-9 for p in frontier["points"])
    # the sweep crossed the floor: points on both sides, and a looser ESS fits closer
    healthy = [p for p in frontier["points"] if p["ess_share"] >= floor]
    unhealthy = [p for p in frontier["points"] if p["ess_share"] < floor]
    assert healthy and unhealthy
    assert min(p["loss"] for p in unhealthy) < best


def test_within_band_share_is_what_the_weights_give():
    matrix, values, national, design, fixed = _problem(seed=7)
    result = within_band_reached(matrix, values, design, fixed, max_ratio=5.0, rounds=2)
    weights = design.copy()
    weights[~fixed] = design[~fixed] * result["ratios"]
    estimates = matrix @ weights
    within = np.abs(estimates - values) <= 0.1 * np.abs(values) * (1 + 1e-6)
    assert result["within_share"] == pytest.approx(within.mean(), abs=1 / len(values))
    assert result["max_ratio"] <= 5.0
    # with the box wide enough every target of this consistent problem is reachable together
    exact_values = matrix @ design
    exact = within_band_reached(matrix, exact_values, design, fixed, max_ratio=5.0, rounds=1)
    assert exact["within_share"] == 1.0
