"""What any healthy weighting can reach on a matrix: certified lower bounds, not a fit.

Issue 13 asks for train loss no worse than the eCPS method's *and* healthy weights (Kish
ESS of the free households at least a share of them, no final / design ratio above a
limit). The train loss (``loss.target_loss``) is a convex quadratic in the weights, the
ratio limit is a box 0 <= w <= limit * w0 and the ESS floor is a second-order cone,

    (sum w)^2 / sum w^2 >= share * n   <=>   ||w||_2 <= sum(w) / sqrt(share * n)   (w >= 0),

so the least train loss the ``weights_healthy`` gate allows is one convex programme. It is
solved by an interior-point solver (Clarabel) and then *certified* here, independently of
the solver: for any multiplier lam >= 0 of the cone and any point r of the box, the
Lagrangian L(r) = f(r) + lam (||w|| - k sum w) is convex on the box, so its minimum over
the box is at least L(r) minus the Frank-Wolfe gap max_v grad L(r).(r - v), a sum over
coordinates; weak duality makes that a lower bound on the constrained minimum. A certified
bound above a goal proves no weighting the gate accepts meets the goal on these records.

The same solver gives a *best found* share of targets within a relative band under the
same constraints (reweighted L1: a heuristic for the max-feasible-subsystem problem, so a
share reached, not a ceiling).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import clarabel
import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, minimize

from microplex_assets.calibration.loss import count_normalisation, kish_ess


@dataclass(frozen=True)
class TrainQuadratic:
    """f(r) = ||M r - y||^2, the train loss as a function of the free households' ratios
    r = w / w0 (the fixed records keep their weights; their contribution is in y)."""

    matrix: sp.csr_matrix  # train targets x free households, in ratio units
    offset: np.ndarray  # y
    design: np.ndarray  # w0 of the free households

    def loss(self, ratios: np.ndarray) -> float:
        residual = self.matrix @ ratios - self.offset
        return float(residual @ residual)

    def gradient(self, ratios: np.ndarray) -> np.ndarray:
        return 2.0 * (self.matrix.T @ (self.matrix @ ratios - self.offset))


def train_quadratic(
    matrix: sp.spmatrix,
    values: np.ndarray,
    is_national: np.ndarray,
    design: np.ndarray,
    fixed: np.ndarray,
) -> TrainQuadratic:
    """The train rows' loss, ``loss.target_loss`` exactly, as a quadratic in the free ratios.

    ``matrix`` holds the train targets only (rows) over every household (columns);
    ``fixed`` marks the households whose weight stays at ``design`` (the spine)."""
    matrix = sp.csr_matrix(matrix)
    values = np.asarray(values, dtype=float)
    fixed = np.asarray(fixed, dtype=bool)
    if not len(values):
        raise ValueError("no train targets: the train loss is undefined")
    norm = count_normalisation(is_national) / len(values)
    scale = np.sqrt(norm) / (values + 1.0)
    spine = matrix[:, fixed] @ design[fixed]
    free_design = np.asarray(design, dtype=float)[~fixed]
    scaled = (sp.diags(scale) @ matrix[:, ~fixed] @ sp.diags(free_design)).tocsr()
    return TrainQuadratic(scaled, scale * (values - 1.0 - spine), free_design)


def _box_gap(gradient: np.ndarray, ratios: np.ndarray, high: float) -> float:
    """max over v in [0, high]^n of gradient . (ratios - v): the Frank-Wolfe gap."""
    return float(gradient @ ratios - np.minimum(gradient * high, 0.0).sum())


def cone_slope(records: int, min_ess_share: float) -> float:
    """k in ||w|| <= k sum(w), the ESS floor's cone."""
    return 1.0 / np.sqrt(min_ess_share * records)


def certified_lower_bound(
    problem: TrainQuadratic,
    ratios: np.ndarray,
    max_ratio: float,
    multiplier: float = 0.0,
    min_ess_share: float | None = None,
) -> float:
    """A lower bound on min f over the box [0, max_ratio] (and the ESS cone when
    ``min_ess_share`` is given, with the cone's Lagrange ``multiplier``), from any point."""
    r = np.clip(np.asarray(ratios, dtype=float), 0.0, max_ratio)
    value = problem.loss(r)
    gradient = problem.gradient(r)
    if min_ess_share is not None and multiplier > 0:
        w = problem.design * r
        norm = float(np.linalg.norm(w))
        slope = cone_slope(len(w), min_ess_share)
        value += multiplier * (norm - slope * w.sum())
        if norm > 0:
            gradient = gradient + multiplier * problem.design * (w / norm - slope)
    return value - _box_gap(gradient, r, max_ratio)


def _lagrangian(problem: TrainQuadratic, multiplier: float, slope: float):
    """L(r) = f(r) + multiplier (||w|| - slope sum w) and its gradient, w = w0 r."""

    def value_and_gradient(ratios: np.ndarray) -> tuple[float, np.ndarray]:
        residual = problem.matrix @ ratios - problem.offset
        value = float(residual @ residual)
        gradient = 2.0 * (problem.matrix.T @ residual)
        w = problem.design * ratios
        norm = float(np.linalg.norm(w))
        value += multiplier * (norm - slope * w.sum())
        if norm > 0:
            gradient = gradient + multiplier * problem.design * (w / norm - slope)
        return value, gradient

    return value_and_gradient


def _lagrangian_minimum(
    problem: TrainQuadratic,
    multiplier: float,
    start: np.ndarray,
    max_ratio: float,
    min_ess_share: float,
    iterations: int,
) -> tuple[np.ndarray, dict[str, float]]:
    """L-BFGS-B on the Lagrangian from ``start``: the point, its plain loss, ESS and the
    bound certified from it."""
    started = time.perf_counter()
    solution = minimize(
        _lagrangian(problem, multiplier, cone_slope(len(problem.design), min_ess_share)),
        np.clip(start, 0.0, max_ratio),
        jac=True,
        method="L-BFGS-B",
        bounds=Bounds(0.0, max_ratio),
        options={"maxiter": iterations, "maxfun": 2 * iterations, "ftol": 1e-15, "gtol": 1e-12},
    )
    ratios = solution.x
    return ratios, {
        "multiplier": multiplier,
        "loss": problem.loss(ratios),
        "ess_share": kish_ess(problem.design * ratios) / len(ratios),
        "max_ratio": float(ratios.max()),
        "lower_bound": certified_lower_bound(problem, ratios, max_ratio, multiplier, min_ess_share),
        "iterations": int(solution.nit),
        "seconds": time.perf_counter() - started,
    }


def refined_lower_bound(
    problem: TrainQuadratic,
    ratios: np.ndarray,
    multiplier: float,
    max_ratio: float,
    min_ess_share: float,
    iterations: int = 2_000,
) -> float:
    """``certified_lower_bound`` after L-BFGS-B has minimised the Lagrangian over the box
    from ``ratios``: the Frank-Wolfe gap shrinks as the point nears the box minimum."""
    _, point = _lagrangian_minimum(
        problem, multiplier, ratios, max_ratio, min_ess_share, iterations
    )
    return point["lower_bound"]


def _clarabel_solve(
    quadratic: sp.spmatrix,
    linear: np.ndarray,
    constraints: sp.spmatrix,
    bounds: np.ndarray,
    cones: list,
    time_limit: float,
    verbose: bool,
):
    settings = clarabel.DefaultSettings()
    settings.verbose = verbose
    settings.time_limit = time_limit
    settings.max_iter = 300
    solver = clarabel.DefaultSolver(
        sp.triu(quadratic).tocsc(), linear, sp.csc_matrix(constraints), bounds, cones, settings
    )
    return solver.solve()


def _health_rows(n: int, design: np.ndarray, max_ratio: float, min_ess_share: float | None):
    """Constraint rows (on the ratios, padded by the caller) and cones for the box and the
    ESS cone, in Clarabel's form A x + s = b, s in the cone."""
    identity = sp.identity(n, format="csc")
    rows = [-identity, identity]
    bounds = [np.zeros(n), np.full(n, max_ratio)]
    cones = [clarabel.NonnegativeConeT(2 * n)]
    if min_ess_share is not None:
        slope = cone_slope(n, min_ess_share)
        rows.append(sp.vstack([-slope * sp.csr_matrix(design), -sp.diags(design)]))
        bounds.append(np.zeros(n + 1))
        cones.append(clarabel.SecondOrderConeT(n + 1))
    return sp.vstack(rows).tocsc(), np.concatenate(bounds), cones


def least_train_loss(
    problem: TrainQuadratic,
    max_ratio: float,
    min_ess_share: float | None = None,
    time_limit: float = 1_800.0,
    verbose: bool = False,
    refine: int = 2_000,
) -> dict[str, Any]:
    """The least train loss any ratios in [0, max_ratio] (and with Kish ESS at least
    ``min_ess_share`` of the free households) reach: Clarabel's point and value, and the
    bound certified from that point (``certified_lower_bound``; with the ESS floor also
    after ``refine`` L-BFGS-B steps on the Lagrangian at the solver's multiplier and
    neighbours, ``refined_lower_bound``), the best of them."""
    started = time.perf_counter()
    targets, n = problem.matrix.shape
    # x = (r, e): minimise e.e subject to M r - e = y
    quadratic = sp.block_diag([sp.csc_matrix((n, n)), 2.0 * sp.identity(targets)]).tocsc()
    equality = sp.hstack([problem.matrix, -sp.identity(targets)])
    health, health_bounds, cones = _health_rows(n, problem.design, max_ratio, min_ess_share)
    constraints = sp.vstack(
        [equality, sp.hstack([health, sp.csc_matrix((health.shape[0], targets))])]
    )
    solution = _clarabel_solve(
        quadratic,
        np.zeros(n + targets),
        constraints,
        np.concatenate([problem.offset, health_bounds]),
        [clarabel.ZeroConeT(targets), *cones],
        time_limit,
        verbose,
    )
    ratios = np.clip(np.asarray(solution.x[:n]), 0.0, max_ratio)
    multiplier = max(float(solution.z[-(n + 1)]), 0.0) if min_ess_share is not None else 0.0
    weights = problem.design * ratios
    bound = certified_lower_bound(problem, ratios, max_ratio, multiplier, min_ess_share)
    if min_ess_share is not None and multiplier > 0:
        # the multiplier of an inexact solve: try it and its neighbours, each from the point
        for factor in (1.0, 0.8, 1.25):
            bound = max(
                bound,
                refined_lower_bound(
                    problem, ratios, factor * multiplier, max_ratio, min_ess_share, refine
                ),
            )
    return {
        "status": str(solution.status),
        "solver_value": float(solution.obj_val),
        "loss_at_point": problem.loss(ratios),
        "lower_bound": bound,
        "cone_multiplier": multiplier,
        "ess_share": kish_ess(weights) / n,
        "max_ratio": float(ratios.max()),
        "iterations": int(solution.iterations),
        "seconds": time.perf_counter() - started,
        "ratios": ratios,
    }


def within_band_reached(
    matrix: sp.spmatrix,
    values: np.ndarray,
    design: np.ndarray,
    fixed: np.ndarray,
    max_ratio: float,
    min_ess_share: float | None = None,
    band: float = 0.10,
    rounds: int = 3,
    time_limit: float = 1_800.0,
    verbose: bool = False,
) -> dict[str, Any]:
    """The largest share of targets within ``band`` relative error found by reweighted L1
    (min sum c_i s_i with |est_i - t_i| <= (band + s_i) |t_i|, c_i = 1 / (s_i + 0.01) from
    the previous round) with ratios in the box and the ESS cone: a share reached, not a
    ceiling. Targets with value 0 have no relative band: left out of the search and counted
    as misses in the share."""
    started = time.perf_counter()
    matrix = sp.csr_matrix(matrix)
    values = np.asarray(values, dtype=float)
    fixed = np.asarray(fixed, dtype=bool)
    keep = values != 0
    size = np.abs(values[keep])
    spine = (matrix[keep][:, fixed] @ design[fixed]) / size
    free_design = np.asarray(design, dtype=float)[~fixed]
    relative = (sp.diags(1.0 / size) @ matrix[keep][:, ~fixed] @ sp.diags(free_design)).tocsc()
    target = values[keep] / size
    count, n = relative.shape
    health, health_bounds, cones = _health_rows(n, free_design, max_ratio, min_ess_share)
    slack = -sp.identity(count)
    constraints = sp.vstack(
        [
            sp.hstack([relative, slack]),
            sp.hstack([-relative, slack]),
            sp.hstack([sp.csc_matrix((count, n)), slack]),
            sp.hstack([health, sp.csc_matrix((health.shape[0], count))]),
        ]
    )
    bounds = np.concatenate(
        [target - spine + band, spine - target + band, np.zeros(count), health_bounds]
    )
    cost = np.ones(count)
    history = []
    best: dict[str, Any] | None = None
    for round_ in range(rounds):
        solution = _clarabel_solve(
            sp.csc_matrix((n + count, n + count)),
            np.concatenate([np.zeros(n), cost]),
            constraints,
            bounds,
            [clarabel.NonnegativeConeT(3 * count), *cones],
            time_limit,
            verbose,
        )
        ratios = np.clip(np.asarray(solution.x[:n]), 0.0, max_ratio)
        errors = np.abs(relative @ ratios + spine - target)
        within = errors <= band * (1 + 1e-9)
        weights = free_design * ratios
        entry = {
            "round": round_,
            "status": str(solution.status),
            "within_share": float(within.sum() / len(values)),
            "ess_share": kish_ess(weights) / n,
            "max_ratio": float(ratios.max()),
        }
        history.append(entry)
        if best is None or entry["within_share"] > best["within_share"]:
            best = {**entry, "within": within, "ratios": ratios}
        cost = 1.0 / (np.clip(errors - band, 0.0, None) + 0.01)
    assert best is not None
    return {**best, "rounds": history, "seconds": time.perf_counter() - started}


def healthy_frontier(
    problem: TrainQuadratic,
    max_ratio: float,
    min_ess_share: float,
    bisections: int = 4,
    iterations: int = 1_500,
    log: Any = print,
) -> dict[str, Any]:
    """Points on the least-train-loss / ESS frontier inside the ratio box, without an
    interior-point solver: for a cone multiplier mu, minimising f + mu (||w|| - k sum w)
    over the box gives the least f at that point's own ESS; mu is bracketed (x4 steps)
    and bisected (geometrically) towards the ESS floor, each solve warm-started from the
    nearest point. Each point is *reached* (an upper bound on the least loss at its ESS);
    its certified bound is reported too, loose unless L-BFGS-B has converged far. Returns
    the points and the healthy one (ESS >= floor) with the least loss, with its ratios."""
    ratios = np.ones(len(problem.design))
    multiplier = 1e-3 * problem.loss(ratios) / float(np.linalg.norm(problem.design))
    points: list[dict[str, float]] = []
    below: float | None = None  # the largest multiplier whose ESS misses the floor
    above: float | None = None  # the smallest whose ESS reaches it
    best: tuple[float, np.ndarray] | None = None
    bisected = 0
    while len(points) < 20 + bisections:
        ratios, point = _lagrangian_minimum(
            problem, multiplier, ratios, max_ratio, min_ess_share, iterations
        )
        points.append(point)
        log(
            f"  mu {multiplier:.3g}: loss {point['loss']:.5f}, ESS {point['ess_share']:.1%}, "
            f"certified >= {point['lower_bound']:.5f} ({point['seconds']:.0f} s)"
        )
        if point["ess_share"] >= min_ess_share:
            above = multiplier
            if best is None or point["loss"] < best[0]:
                best = (point["loss"], ratios)
        else:
            below = multiplier
        if below is None or above is None:
            multiplier *= 4.0 if above is None else 0.25
        elif bisected < bisections:
            multiplier, bisected = float(np.sqrt(below * above)), bisected + 1
        else:
            break
    return {
        "points": points,
        "least_healthy_loss": best[0] if best else None,
        "ratios": best[1] if best else None,
    }
