"""Per-target diagnosis for ``calibration_diagnosis.py``: what each target can reach alone
with every weight in a ratio box (``box_range``), the lowest train loss any weighting in the
box reaches (``l2_floor``), how many targets can be within 10% at once (``within_ceiling``,
an LP) and the per-family table."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import Bounds, linprog, minimize
from split_fits import residual_rows
from split_problem import SplitProblem

from microplex_assets.calibration.loss import count_normalisation, target_loss

RATIO = 50.0
WITHIN = 0.10


# --- per-target diagnosis ------------------------------------------------------------------


def box_range(problem: SplitProblem, w0: np.ndarray, ratio: float) -> tuple[np.ndarray, ...]:
    """Each target's smallest and largest estimate with every free weight in
    [w0 / ratio, ratio * w0] (spine fixed): the exact range a target alone can reach."""
    free = problem.matrix[:, ~problem.fixed].tocsr()
    spine = problem.matrix @ problem.fixed_weights
    positive, negative = free.maximum(0), free.minimum(0)
    high = spine + positive @ (ratio * w0) + negative @ (w0 / ratio)
    low = spine + positive @ (w0 / ratio) + negative @ (ratio * w0)
    return low, high


def per_target(problem: SplitProblem, weights: np.ndarray, w0: np.ndarray) -> pd.DataFrame:
    """One row per kept target: error under ``weights``, train-loss contribution, support,
    and the box's reach."""
    t = problem.targets[["name", "family", "group", "split", "value", "is_national"]].copy()
    estimates = problem.matrix @ weights
    values = problem.values
    t["estimate"] = estimates
    t["rel_error"] = (estimates - values) / np.abs(values)
    t["within_10pct"] = np.abs(estimates - values) <= WITHIN * np.abs(values)
    train = problem.mask("train")
    norm = np.zeros(len(t))
    norm[train] = count_normalisation(problem.is_national[train]) / train.sum()
    t["train_loss_contribution"] = norm * ((estimates - values + 1) / (values + 1)) ** 2
    free = problem.matrix[:, ~problem.fixed].tocsr()
    t["support"] = np.diff(free.indptr)
    low, high = box_range(problem, w0, RATIO)
    gap = np.maximum(low - values, values - high).clip(min=0)
    t["alone_best_rel_error"] = gap / np.abs(values)
    t["alone_unreachable"] = t["alone_best_rel_error"] > WITHIN
    return t


def l2_floor(problem: SplitProblem, w0: np.ndarray, ratio: float | None) -> dict[str, Any]:
    """The lowest train loss (``loss.target_loss``, no fit weights) any free weights in
    [w0 / ratio, ratio * w0] (w >= 0 when ratio is None) reach: the box-constrained least
    squares in r = w / w0 (convex), solved by L-BFGS-B."""
    started = time.perf_counter()
    train = problem.mask("train")
    matrix, residual, index = residual_rows(problem, train)
    norm = count_normalisation(problem.is_national[train]) / train.sum()
    norm = norm[np.isin(np.flatnonzero(train), index)]
    row_scale = np.sqrt(norm) / (problem.values[index] + 1.0)
    a = (sp.diags(row_scale) @ matrix @ sp.diags(w0)).tocsr()
    a_t = a.T.tocsr()
    b = row_scale * (residual - 1.0)

    def objective(r: np.ndarray) -> tuple[float, np.ndarray]:
        e = a @ r - b
        return float(e @ e), 2.0 * (a_t @ e)

    bounds = Bounds(1.0 / ratio if ratio else 0.0, ratio if ratio else np.inf)
    solution = minimize(
        objective,
        np.ones(len(w0)),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 3_000, "maxfun": 6_000, "ftol": 1e-12, "gtol": 1e-10},
    )
    weights = problem.merge(w0 * solution.x)
    return {
        "ratio": ratio,
        "weights": weights,
        "train_loss": target_loss(
            (problem.matrix @ weights)[train], problem.values[train], problem.is_national[train]
        ),
        "iterations": int(solution.nit),
        "status": str(solution.message),
        "seconds": time.perf_counter() - started,
    }


def within_ceiling(
    problem: SplitProblem, w0: np.ndarray, ratio: float | None, rows: np.ndarray
) -> dict[str, Any]:
    """LP: min sum_i s_i  s.t. |est_i - t_i| <= (0.1 + s_i) |t_i|, r in the box, s >= 0,
    over ``rows`` (the spine fixed). Targets with s_i ~ 0 are within 10% together (a lower
    bound on how many can be: L1 relaxation)."""
    started = time.perf_counter()
    index = np.flatnonzero(rows)
    values = problem.values[index]
    spine = (problem.matrix @ problem.fixed_weights)[index]
    free = problem.matrix[index][:, ~problem.fixed].tocsr()
    scale = 1.0 / np.abs(values)
    a = sp.diags(scale) @ free @ sp.diags(w0)
    b = (values - spine) * scale
    n, k = a.shape[1], a.shape[0]
    eye = sp.identity(k, format="csr")
    a_ub = sp.vstack([sp.hstack([a, -eye]), sp.hstack([-a, -eye])]).tocsr()
    b_ub = np.concatenate([b + WITHIN, -b + WITHIN])
    c = np.concatenate([np.zeros(n), np.ones(k)])
    low = 1.0 / ratio if ratio else 0.0
    bounds = [(low, ratio)] * n + [(0, None)] * k
    result = linprog(c, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs-ipm")
    if result.x is None:
        return {"ratio": ratio, "status": result.message, "seconds": time.perf_counter() - started}
    weights = problem.merge(w0 * result.x[:n])
    estimates = problem.matrix @ weights
    hit = np.abs(estimates - problem.values) <= (WITHIN + 1e-4) * np.abs(problem.values)
    return {
        "ratio": ratio,
        "weights": weights,
        "hit": hit,
        "within_10pct_ceiling": float(hit[index].mean()),
        "status": result.message,
        "seconds": time.perf_counter() - started,
    }


def family_table(frame: pd.DataFrame, reference: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per family: targets, train-loss share, within 10%, support median, alone-unreachable,
    and the share missed (beyond 10%) in each reference weighting."""
    train_total = frame["train_loss_contribution"].sum()
    g = frame.groupby("family")
    table = pd.DataFrame(
        {
            "targets": g.size(),
            "train_loss": g["train_loss_contribution"].sum(),
            "train_loss_share": g["train_loss_contribution"].sum() / train_total,
            "within_10pct": g["within_10pct"].mean(),
            "median_support": g["support"].median(),
            "alone_unreachable": g["alone_unreachable"].sum(),
        }
    )
    for name, hit in reference.items():
        table[f"missed_in_{name}"] = (
            (~pd.Series(hit, index=frame.index)).groupby(frame["family"]).sum()
        )
    return table.sort_values("train_loss", ascending=False)
