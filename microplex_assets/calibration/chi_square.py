"""Chi-square calibration solved to its optimum: the national solver since the sixteenth
session (``SolverConfig.method = "chi_square"``).

For a pull strength alpha it minimises

    sum_i c_i phi_i ((est_i - t_i + 1) / (t_i + 1))^2  +  alpha sum_j s_j (w_j / a_j - 1)^2

over w_j in [w0_j / R, R w0_j]: the fitted train loss (``loss.target_loss``'s terms times
the family fit weights phi) plus the chi-square distance of the weights from the anchor a
(the raked design) with the anchor's shares s, the classic survey-calibration distance
(Deville and Saerndal's linear method) and KL's second-order term. The problem is strictly
convex on a box, so L-BFGS-B reaches its one optimum; a decreasing path of alphas is solved,
each warm-started from the last, and the validation targets choose the alpha (lowest
held-out loss among the points whose Kish ESS share reaches ``min_ess_share``), as they
choose the epoch of the Adam solver. Test targets never reach it.

Why not the Adam solver with a weaker KL pull: Adam's early steps (lr 0.2 on log-weights)
take the weights through low-ESS points, so its epoch selection had to keep KL 1.0 (README
"Calibration a user can trust"); solved to its optimum, a pull of 0.01 keeps the ESS at a
third of the records while the train loss falls by a third (measured on the build's matrix,
README).
"""

from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import Bounds, minimize

from microplex_assets.calibration.loss import count_normalisation, kish_ess, split_losses
from microplex_assets.calibration.result import CalibrationResult
from microplex_assets.calibration.solver_config import SolverConfig


def _check(config: SolverConfig) -> None:
    """Settings the chi-square method has no meaning for are an error, not ignored."""
    unsupported = {
        "l0_lambda": config.l0_lambda > 0,
        "fit_loss": config.fit_loss not in ("squared", "band"),
        "ess_penalty": config.ess_penalty > 0,
        "log_weight_penalty": config.log_weight_penalty > 0,
        "init_noise_sd": config.init_noise_sd > 0,
    }
    named = [name for name, set_ in unsupported.items() if set_]
    if named:
        raise ValueError(
            f"SolverConfig.method 'chi_square' does not support {', '.join(named)}: "
            "set them to 0 (fit_loss 'squared' or 'band') or use method 'adam'"
        )
    if not config.chi_square_alphas or min(config.chi_square_alphas) <= 0:
        raise ValueError(f"chi_square_alphas must be positive, got {config.chi_square_alphas}")


def choose_alpha(history: pd.DataFrame, min_ess_share: float) -> int:
    """The path step to return: lowest held-out loss among the steps whose ESS share reaches
    ``min_ess_share`` (all steps when none does); without held-out targets, the last such
    step (the closest fit)."""
    healthy = history[history["ess_share"] >= min_ess_share]
    pool = healthy if len(healthy) else history
    if pool["holdout_loss"].notna().any():
        return int(pool.loc[pool["holdout_loss"].idxmin(), "epoch"])
    return int(pool["epoch"].iloc[-1])


def calibrate_chi_square(
    matrix: sp.spmatrix,
    targets: np.ndarray,
    is_national: np.ndarray,
    train: np.ndarray,
    initial_weights: np.ndarray,
    config: SolverConfig,
    fit_weight: np.ndarray | None = None,
    anchor_weights: np.ndarray | None = None,
) -> CalibrationResult:
    """``solver.calibrate``'s contract with the chi-square method (see the module
    docstring); history row e is the optimum for the e-th alpha of the path."""
    _check(config)
    started = time.perf_counter()
    matrix = sp.csr_matrix(matrix)
    targets = np.asarray(targets, dtype=float)
    is_national = np.asarray(is_national, dtype=bool)
    train = np.asarray(train, dtype=bool)
    initial = np.asarray(initial_weights, dtype=float)
    anchor = initial if anchor_weights is None else np.asarray(anchor_weights, dtype=float)
    holdout = ~train
    fitted = np.flatnonzero(train & (np.abs(targets) >= config.min_abs_target))
    scale = count_normalisation(is_national[fitted]) / max(len(fitted), 1)
    if fit_weight is not None:
        scale = scale * np.asarray(fit_weight, dtype=float)[fitted]
    row_scale = np.sqrt(scale) / (targets[fitted] + 1.0)
    # in ratios r = w / w0: residual e = M r - y
    scaled = (sp.diags(row_scale) @ matrix[fitted] @ sp.diags(initial)).tocsr()
    scaled_t = scaled.T.tocsr()
    offset = row_scale * (targets[fitted] - 1.0)
    # "band": no pull while |e| <= fit_loss_scale, i.e. |residual| <= sqrt(scale) * band
    dead_zone = np.sqrt(scale) * config.fit_loss_scale if config.fit_loss == "band" else None
    anchor_ratio = anchor / initial
    share = anchor / anchor.sum()
    ratio = config.max_weight_ratio
    bounds = Bounds(1.0 / ratio if ratio else 0.0, ratio if ratio else np.inf)
    ratios = np.clip(anchor_ratio, bounds.lb, bounds.ub)

    records: list[dict[str, float]] = []
    solutions: list[np.ndarray] = []
    rising = 0
    for step, alpha in enumerate(config.chi_square_alphas):

        def objective(r: np.ndarray, alpha: float = alpha) -> tuple[float, np.ndarray]:
            residual = scaled @ r - offset
            if dead_zone is not None:
                residual = np.sign(residual) * np.maximum(np.abs(residual) - dead_zone, 0.0)
            distance = r / anchor_ratio - 1.0
            value = float(residual @ residual + alpha * share @ (distance * distance))
            gradient = 2.0 * (scaled_t @ residual) + 2.0 * alpha * share * distance / anchor_ratio
            return value, gradient

        solution = minimize(
            objective,
            ratios,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={
                "maxiter": config.lbfgs_iterations,
                "maxfun": 2 * config.lbfgs_iterations,
                "ftol": 1e-14,
                "gtol": 1e-11,
            },
        )
        ratios = solution.x
        weights = initial * ratios
        if not np.all(np.isfinite(weights)):
            raise FloatingPointError(
                f"chi-square calibration gave non-finite weights at alpha {alpha} "
                f"({len(fitted)} fitted targets)"
            )
        train_loss, holdout_loss = split_losses(matrix @ weights, targets, is_national, train)
        ess = kish_ess(weights)
        records.append(
            {
                "epoch": step,
                "alpha": alpha,
                "iterations": int(solution.nit),
                "train_loss": train_loss,
                "holdout_loss": holdout_loss,
                "objective": float(solution.fun),
                "seconds": time.perf_counter() - started,
                "ess_share": ess / len(weights) if len(weights) else 0.0,
                "max_ratio": float(np.max(ratios)),
            }
        )
        solutions.append(weights)
        # a weaker pull only lowers the ESS further, and a held-out loss that rose twice
        # in a row has passed its minimum: stop the path there
        if records[-1]["ess_share"] < config.min_ess_share:
            break
        if holdout.any() and step and records[-1]["holdout_loss"] > records[-2]["holdout_loss"]:
            rising += 1
            if rising >= 2:
                break
        else:
            rising = 0

    history = pd.DataFrame.from_records(records)
    chosen = choose_alpha(history, config.min_ess_share)
    return CalibrationResult(
        weights=solutions[chosen],
        history=history,
        best_epoch=chosen,
        seconds=time.perf_counter() - started,
        config={**asdict(config), "device": "cpu", "threads": 1},
        train_loss=records[chosen]["train_loss"],
        holdout_loss=records[chosen]["holdout_loss"],
        fitted_targets=len(fitted),
        stopped_early=len(records) < len(config.chi_square_alphas),
    )
