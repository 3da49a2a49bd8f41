"""The calibration solver: household weights w >= 0 whose estimates M @ w hit the targets.

Minimises ``loss.target_loss`` over the train targets (the shared DESIGN.md loss) by
gradient steps on log-weights u (w = exp(u), so weights stay positive), optionally times
hard-concrete gates (``l0_lambda > 0``, see ``hard_concrete``), optionally plus a penalty
keeping u near the log design weights. The held-out targets are never fitted: their loss
is recorded every epoch from the same weights and, with ``select_by_holdout``, picks the
epoch whose weights are returned (and stops the run after ``patience`` epochs without a
new best).

The sparse matrix product is a custom autograd function: forward M x and backward M^T g
with a transposed CSR built once, both torch CSR matrix-vector products with int32
indices; autograd never sees a sparse tensor (going through it is about 50x slower,
DESIGN.md "Known facts"). Only the elementwise parts (exp, gates, the loss) use autograd.

History row e holds the weights after e optimiser steps (row 0: the starting weights),
losses computed with ``loss.target_loss`` in float64 from the float32 estimates; for a
gated run the losses are those of the deterministic gates (the weights that would be
returned), not of the sampled gates the step used.

``ecps_method_config`` reproduces the eCPS method (DESIGN.md "Baselines").
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from microplex_assets.calibration.chi_square import calibrate_chi_square
from microplex_assets.calibration.hard_concrete import HardConcreteGates
from microplex_assets.calibration.loss import (
    count_normalisation,
    fit_term,
    kish_ess,
    relative_errors,
    split_losses,
)
from microplex_assets.calibration.result import CalibrationResult
from microplex_assets.calibration.solver_config import SolverConfig
from microplex_assets.calibration.sparse_torch import (
    resolve_device,
    sparse_matvec,
    torch_csr,
    torch_threads,
)


def _validate(matrix, targets, is_national, train, initial_weights, config: SolverConfig):
    if not sp.issparse(matrix):
        raise TypeError("matrix must be a scipy.sparse matrix (targets x households)")
    n_targets, n_households = matrix.shape
    for name, array, length in (
        ("targets", targets, n_targets),
        ("is_national", is_national, n_targets),
        ("train", train, n_targets),
        ("initial_weights", initial_weights, n_households),
    ):
        if len(array) != length:
            raise ValueError(f"{name} has length {len(array)}, expected {length}")
    bad = np.flatnonzero(~np.isfinite(targets))
    if len(bad):
        raise ValueError(
            f"targets must be finite: {len(bad)} are not, e.g. rows {bad[:5].tolist()} = "
            f"{np.asarray(targets)[bad[:5]].tolist()}"
        )
    bad = np.flatnonzero(~np.isfinite(initial_weights) | (initial_weights <= 0))
    if len(bad):
        raise ValueError(
            f"initial_weights must be finite and positive: {len(bad)} are not, e.g. "
            f"columns {bad[:5].tolist()} = {np.asarray(initial_weights)[bad[:5]].tolist()}"
        )
    if config.dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {config.dtype!r}")
    if config.epochs < 0:
        raise ValueError("epochs must be >= 0")


def weight_health(weights: torch.Tensor, design: np.ndarray) -> dict[str, float]:
    """Kish ESS share and largest final / design ratio of one epoch's weights."""
    w = weights.detach().to("cpu", torch.float64).numpy()
    ess = kish_ess(w)
    return {"ess_share": ess / len(w) if len(w) else 0.0, "max_ratio": float(np.max(w / design))}


# --- the solver ----------------------------------------------------------------------------


def calibrate(
    matrix: sp.spmatrix,
    targets: np.ndarray,
    is_national: np.ndarray,
    train: np.ndarray,
    initial_weights: np.ndarray,
    config: SolverConfig | None = None,
    fit_weight: np.ndarray | None = None,
    anchor_weights: np.ndarray | None = None,
) -> CalibrationResult:
    """Fit household weights to the train targets; see the module docstring.

    ``fit_weight`` (one per target, default 1) multiplies each target's term in the fitted
    objective only; every reported loss stays ``loss.target_loss``. ``anchor_weights``
    (default ``initial_weights``) are where the fit starts and what the KL penalty pulls
    towards; the ratio bound stays relative to ``initial_weights`` (``design_rake``)."""
    config = config or SolverConfig()
    if config.method == "chi_square":
        _validate(matrix, targets, is_national, train, initial_weights, config)
        return calibrate_chi_square(
            matrix, targets, is_national, train, initial_weights, config, fit_weight, anchor_weights
        )
    if config.method != "adam":
        raise ValueError(
            f"SolverConfig.method must be 'adam' or 'chi_square', got {config.method!r}"
        )
    if config.select_by_holdout and config.train_tolerance is not None and (~train).any():
        return _calibrate_within_train_tolerance(
            matrix, targets, is_national, train, initial_weights, config, fit_weight, anchor_weights
        )
    started = time.perf_counter()
    targets = np.asarray(targets, dtype=np.float64)
    is_national = np.asarray(is_national, dtype=bool)
    train = np.asarray(train, dtype=bool)
    initial_weights = np.asarray(initial_weights, dtype=np.float64)
    _validate(matrix, targets, is_national, train, initial_weights, config)
    if fit_weight is not None and len(fit_weight) != len(targets):
        raise ValueError(f"fit_weight has length {len(fit_weight)}, expected {len(targets)}")
    matrix = sp.csr_matrix(matrix)
    device = resolve_device(config.device)
    dtype = torch.float32 if config.dtype == "float32" else torch.float64

    holdout = ~train
    fitted = train & (np.abs(targets) >= config.min_abs_target)
    fitted_idx = np.flatnonzero(fitted)
    has_holdout = bool(holdout.any())

    rng = np.random.default_rng(config.seed)
    anchor = initial_weights if anchor_weights is None else np.asarray(anchor_weights, float)
    if anchor.shape != initial_weights.shape or not (anchor > 0).all():
        raise ValueError("anchor_weights must be positive, one per initial weight")
    start = anchor.copy()
    if config.init_noise_sd > 0:
        start *= np.clip(rng.normal(1.0, config.init_noise_sd, size=len(start)), 0.01, None)

    with torch_threads(config.threads, device) as threads:
        generator = torch.Generator(device=device)
        generator.manual_seed(config.seed)
        # One product with the whole matrix gives the fitted rows (for the gradient) and
        # the held-out and unfitted rows (for the record).
        m = torch_csr(matrix, device, dtype)
        m_t = torch_csr(matrix.T.tocsr(), device, dtype)
        fitted_t = torch.from_numpy(fitted_idx).to(device)
        t_fit = torch.tensor(targets[fitted_idx], device=device, dtype=dtype)
        scale = count_normalisation(is_national[fitted_idx]) / max(len(fitted_idx), 1)
        if fit_weight is not None:
            scale = scale * np.asarray(fit_weight, dtype=np.float64)[fitted_idx]
        fitted_term = fit_term(config.fit_loss, config.fit_loss_scale)
        squared = config.fit_loss == "squared"  # the default keeps its exact arithmetic
        inverse = torch.tensor(1.0 / (targets[fitted_idx] + 1.0), device=device, dtype=dtype)
        coef = torch.tensor(
            scale / (targets[fitted_idx] + 1.0) ** 2 if squared else scale,
            device=device,
            dtype=dtype,
        )

        log_w0 = torch.tensor(np.log(start), device=device, dtype=dtype)
        bounded = config.max_weight_ratio is not None
        if bounded:
            if config.max_weight_ratio <= 1:
                raise ValueError(f"max_weight_ratio must be > 1, got {config.max_weight_ratio}")
            limit = math.log(config.max_weight_ratio)
            design = torch.tensor(np.log(initial_weights), device=device, dtype=dtype)
            # v starts where b(v) = log(start / w0): the (noised) starting weights
            offset = np.clip(np.log(start / initial_weights), -0.99 * limit, 0.99 * limit)
            log_w = (
                torch.tensor(limit * np.arctanh(offset / limit), device=device, dtype=dtype)
                .clone()
                .requires_grad_(True)
            )
            design_share = torch.tensor(anchor / anchor.sum(), device=device, dtype=dtype)
            # log(w / anchor) = b(v) + log(initial / anchor): the KL pull's ratio
            anchor_offset = torch.tensor(
                np.log(initial_weights / anchor), device=device, dtype=dtype
            )
        else:
            log_w = log_w0.clone().requires_grad_(True)
        params = [log_w]
        gates = None
        if config.l0_lambda > 0:
            gates = HardConcreteGates(
                len(start),
                temperature=config.gate_temperature,
                init_mean=config.gate_init_mean,
                stretch=config.stretch,
                device=device,
                dtype=dtype,
            )
            params.append(gates.log_alpha)
        rho = config.log_weight_penalty / len(start)

        def log_ratio() -> torch.Tensor:
            """b(v) = log(w / w0) of the bounded parametrisation."""
            return limit * torch.tanh(log_w / limit)

        def effective(sampled: bool) -> torch.Tensor:
            w = torch.exp(design + log_ratio()) if bounded else torch.exp(log_w)
            if gates is None:
                return w
            return w * (gates.sample(generator) if sampled else gates.deterministic())

        def objective(estimates: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            residual = estimates.index_select(0, fitted_t) - t_fit + 1.0
            if squared:
                value = torch.sum(coef * residual * residual)
            else:
                value = torch.sum(coef * fitted_term(residual * inverse))
            if rho > 0:
                value = value + rho * torch.sum((log_w - log_w0) ** 2)
            if bounded and config.kl_penalty > 0:
                b = log_ratio() + anchor_offset
                r = torch.exp(b)
                value = value + config.kl_penalty * torch.sum(design_share * (r * b - r + 1.0))
            if config.ess_penalty > 0:
                value = value + config.ess_penalty * len(start) * torch.sum(w * w) / w.sum() ** 2
            if gates is not None:
                value = value + config.l0_lambda * gates.expected_open()
            return value

        records: list[dict[str, float]] = []
        best = {"epoch": -1, "holdout": math.inf, "weights": None}

        def record(epoch: int, weights: torch.Tensor, estimates: torch.Tensor, obj: float):
            est = estimates.detach().to("cpu", torch.float64).numpy()
            train_loss, holdout_loss = split_losses(est, targets, is_national, train)
            row = {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_worst": (
                    float(np.max(relative_errors(est[train], targets[train]) ** 2))
                    if train.any()
                    else math.nan
                ),
                "holdout_loss": holdout_loss,
                "objective": obj,
                "seconds": time.perf_counter() - started,
                **weight_health(weights, initial_weights),
            }
            if gates is not None:
                row["gates_open"] = int((weights > 0).sum().item())
            records.append(row)
            if config.select_by_holdout and has_holdout and row["holdout_loss"] < best["holdout"]:
                best.update(epoch=epoch, holdout=row["holdout_loss"], weights=weights.detach())
            return row

        def evaluate(epoch: int, obj: float | None = None) -> dict[str, float]:
            with torch.no_grad():
                weights = effective(sampled=False)
                estimates = torch.mv(m, weights)
                if obj is None:
                    obj = float(objective(estimates, weights))
                return record(epoch, weights.clone(), estimates, obj)

        stopped_early = False

        def patience_out(epoch: int) -> bool:
            return (
                config.select_by_holdout
                and has_holdout
                and config.patience is not None
                and epoch - best["epoch"] >= config.patience
            )

        groups: list[dict[str, Any]] = [{"params": [log_w]}]
        if gates is not None:
            gate_lr = config.gate_learning_rate or config.learning_rate
            groups.append({"params": [gates.log_alpha], "lr": gate_lr})
        optimizer = torch.optim.Adam(groups, lr=config.learning_rate)
        scheduler = None
        if config.final_learning_rate is not None and config.epochs > 0:
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=config.epochs, eta_min=config.final_learning_rate
            )
        for epoch in range(config.epochs + 1):
            optimizer.zero_grad(set_to_none=True)
            weights = effective(sampled=gates is not None)
            estimates = sparse_matvec(m, m_t, weights)
            loss = objective(estimates, weights)
            if gates is None:  # the step's own weights are the ones to record
                record(epoch, weights.detach().clone(), estimates, float(loss.detach()))
            else:  # record the deterministic gates' weights, not the sampled ones
                evaluate(epoch)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"calibration loss became {float(loss)} at epoch {epoch} (learning rate "
                    f"{config.learning_rate}, {len(fitted_idx)} fitted targets): the weights "
                    "overflowed; lower the learning rate or bound the weights "
                    "(max_weight_ratio)"
                )
            if epoch == config.epochs or patience_out(epoch):
                stopped_early = epoch < config.epochs
                break
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()

        history = pd.DataFrame.from_records(records)
        if best["weights"] is not None:
            best_epoch = int(best["epoch"])
            chosen = best["weights"]
        else:
            best_epoch = int(history["epoch"].iloc[-1])
            with torch.no_grad():
                chosen = effective(sampled=False)
        weights = chosen.to("cpu", torch.float64).numpy().copy()

    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        bad = np.flatnonzero(~np.isfinite(weights) | (weights < 0))
        raise FloatingPointError(
            f"solver returned {len(bad)} non-finite or negative weights (columns "
            f"{bad[:5].tolist()}, epoch {best_epoch}); expected finite weights >= 0"
        )
    estimates = matrix @ weights  # float64: scipy upcasts to the weights
    train_loss, holdout_loss = split_losses(estimates, targets, is_national, train)
    seconds = time.perf_counter() - started
    return CalibrationResult(
        weights=weights,
        history=history,
        best_epoch=best_epoch,
        seconds=seconds,
        config={**asdict(config), "device": str(device), "threads": threads},
        train_loss=train_loss,
        holdout_loss=holdout_loss,
        fitted_targets=len(fitted_idx),
        stopped_early=stopped_early,
    )


def choose_epoch_within_train_tolerance(
    history: pd.DataFrame,
    tolerance: float,
    floor: float = 0.0,
    target_cap: float = math.inf,
    min_ess_share: float = 0.0,
) -> int:
    """The epoch with the lowest held-out loss among those whose train loss is within
    (1 + tolerance) of the best train loss in ``history``, or at most ``floor`` with no
    train target's squared relative error above ``target_cap``; with ``min_ess_share``,
    only among epochs whose ESS share reaches it (when any does)."""
    if min_ess_share > 0 and "ess_share" in history:
        healthy = history[history["ess_share"] >= min_ess_share]
        if len(healthy):
            history = healthy
    train_loss = history["train_loss"]
    near_best = train_loss <= train_loss.min() * (1 + tolerance)
    within_floor = train_loss <= floor
    if np.isfinite(target_cap) and "train_worst" in history:
        within_floor &= history["train_worst"] <= target_cap
    eligible = history[near_best | within_floor]
    return int(eligible.loc[eligible["holdout_loss"].idxmin(), "epoch"])


def _calibrate_within_train_tolerance(
    matrix: sp.spmatrix,
    targets: np.ndarray,
    is_national: np.ndarray,
    train: np.ndarray,
    initial_weights: np.ndarray,
    config: SolverConfig,
    fit_weight: np.ndarray | None = None,
    anchor_weights: np.ndarray | None = None,
) -> CalibrationResult:
    """Full run for the path, then a deterministic replay to the chosen epoch."""
    path_config = replace(config, select_by_holdout=False, train_tolerance=None, patience=None)
    path = calibrate(
        matrix, targets, is_national, train, initial_weights, path_config, fit_weight,
        anchor_weights,
    )  # fmt: skip
    chosen = choose_epoch_within_train_tolerance(
        path.history,
        config.train_tolerance,
        config.train_loss_floor,
        config.train_target_cap,
        config.min_ess_share,
    )
    replay = calibrate(
        matrix,
        targets,
        is_national,
        train,
        initial_weights,
        replace(path_config, epochs=chosen),
        fit_weight,
        anchor_weights,
    )
    return CalibrationResult(
        weights=replay.weights,
        history=path.history,
        best_epoch=chosen,
        seconds=path.seconds + replay.seconds,
        config={**path.config, **asdict(config), "patience": None},  # the path runs to the end
        train_loss=replay.train_loss,
        holdout_loss=replay.holdout_loss,
        fitted_targets=replay.fitted_targets,
        stopped_early=False,
    )
