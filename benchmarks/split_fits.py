"""The fits ``calibration_split.py`` compares: the production solver on the train rows,
``fit_bounded`` (the bounded-ratio solver written here) with its post-hoc epoch selections,
and microcalibrate."""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from split_problem import ESS_FLOOR, MAX_RATIO, SplitProblem
from split_scoring import kish_ess

from microplex_assets.calibration.hard_concrete import HardConcreteGates
from microplex_assets.calibration.loss import count_normalisation, target_loss
from microplex_assets.calibration.matrix import MIN_ABS_TARGET
from microplex_assets.calibration.solver import calibrate
from microplex_assets.calibration.solver_config import SolverConfig
from microplex_assets.calibration.sparse_torch import sparse_matvec, torch_csr

# --- fitting with the production solver ----------------------------------------------------


def residual_rows(
    problem: SplitProblem, rows: np.ndarray
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """The free households' columns of ``rows`` whose target minus the spine's contribution
    keeps its sign and |.| >= MIN_ABS_TARGET (as ``fixed_records.residual_problem``)."""
    values = problem.values
    residual = values - problem.matrix @ problem.fixed_weights
    ok = rows & (np.abs(residual) >= MIN_ABS_TARGET) & (np.sign(residual) == np.sign(values))
    index = np.flatnonzero(ok)
    return problem.matrix[index][:, ~problem.fixed].tocsr(), residual[index], index


def fit_solver(
    problem: SplitProblem, config: SolverConfig, with_validation: bool
) -> tuple[np.ndarray, dict[str, Any]]:
    """``solver.calibrate`` on the train rows (plus the validation rows as its held-out set,
    which picks the epoch, when ``with_validation``); test rows are never passed."""
    rows = problem.mask("train") | (problem.mask("validation") if with_validation else False)
    matrix, residual, index = residual_rows(problem, rows)
    train = problem.mask("train")[index]
    result = calibrate(
        matrix,
        residual,
        problem.is_national[index],
        train,
        problem.design[~problem.fixed],
        config,
    )
    info = {
        "seconds": result.seconds,
        "chosen_epoch": int(result.best_epoch),
        "epochs_run": int(result.history["epoch"].iloc[-1]),
        "rows_fitted": int(train.sum()),
        "rows_selecting": int((~train).sum()),
        "config": {k: v for k, v in asdict(config).items() if k not in ("device", "threads")},
    }
    return problem.merge(result.weights), info


# --- the bounded-ratio solver --------------------------------------------------------------


@dataclass(frozen=True)
class BoundedConfig:
    """Log-ratio solver: w = w0 * exp(b(u)), b a smooth bound onto [-log(1/min_ratio),
    log(max_ratio)] (b(u) = L tanh(u / L) on each side, slope 1 at 0), fitted by Adam to the
    train targets' loss plus

    log_penalty * mean(b^2)  (the solver's log_weight_penalty),
    kl_penalty * sum w0 (r log r - r + 1) / sum w0  (KL of w to w0, r = w / w0),
    chi2_penalty * sum w0 (r - 1)^2 / sum w0  (the chi-square distance; ~ 1 / ESS),
    l0_lambda * expected open gates (hard-concrete gates as the solver's, when > 0).

    With ``huber_delta`` the fitted term is the pseudo-Huber 2 delta^2 (sqrt(1 + (e /
    delta)^2) - 1) of each relative error e instead of e^2 (the same near 0, linear far
    out): targets no weighting within the bounds can reach stop dominating the gradient.
    The reported losses stay ``loss.target_loss``.

    Every ``record_every`` epochs the weights and their train / validation losses, Kish
    ESS share and max ratio are kept; ``selections`` then choose epochs post hoc."""

    epochs: int = 4_000
    learning_rate: float = 0.1
    final_learning_rate: float | None = None
    max_ratio: float = MAX_RATIO
    min_ratio: float = 1.0 / MAX_RATIO
    log_penalty: float = 0.0
    kl_penalty: float = 0.0
    chi2_penalty: float = 0.0
    l0_lambda: float = 0.0
    huber_delta: float | None = None
    record_every: int = 10
    seed: int = 1456


def bound(u: torch.Tensor, high: float, low: float) -> torch.Tensor:
    """Smooth two-sided bound of the log-ratio: high tanh(u / high) above 0, low below."""
    return torch.where(u >= 0, high * torch.tanh(u / high), low * torch.tanh(u / low))


def fit_bounded(problem: SplitProblem, config: BoundedConfig) -> tuple[pd.DataFrame, list, float]:
    """Run the bounded solver on the train rows; validation rows are only recorded.

    Returns the history (epoch, train_loss, validation_loss, ess_share, max_ratio), the
    free weights recorded at each history row (float32) and the seconds taken."""
    started = time.perf_counter()
    train, validation = problem.mask("train"), problem.mask("validation")
    rows = np.flatnonzero(train | validation)
    is_train = train[rows]
    matrix = problem.matrix[rows][:, ~problem.fixed].tocsr()
    offset = (problem.matrix @ problem.fixed_weights)[rows]  # the spine's fixed part
    values, national = problem.values[rows], problem.is_national[rows]
    w0 = problem.design[~problem.fixed]
    dtype, device = torch.float32, torch.device("cpu")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        m = torch_csr(matrix, device, dtype)
        m_t = torch_csr(matrix.T.tocsr(), device, dtype)
        fit_idx = torch.from_numpy(np.flatnonzero(is_train))
        t_fit = torch.tensor(values[is_train] - offset[is_train], dtype=dtype)
        scale = count_normalisation(national[is_train]) / is_train.sum()
        coef = torch.tensor(scale / (values[is_train] + 1.0) ** 2, dtype=dtype)
        scale_t = torch.tensor(scale, dtype=dtype)
        w0_t = torch.tensor(w0, dtype=dtype)
        w0_share = w0_t / w0_t.sum()
        u = torch.zeros(len(w0), dtype=dtype, requires_grad=True)
        params = [u]
        gates = None
        generator = torch.Generator().manual_seed(config.seed)
        if config.l0_lambda > 0:
            gates = HardConcreteGates(len(w0), device=device, dtype=dtype)
            params.append(gates.log_alpha)
        high, low = math.log(config.max_ratio), -math.log(config.min_ratio)

        def weights(sampled: bool) -> tuple[torch.Tensor, torch.Tensor]:
            b = bound(u, high, low)
            w = w0_t * torch.exp(b)
            if gates is not None:
                w = w * (gates.sample(generator) if sampled else gates.deterministic())
            return w, b

        optimizer = torch.optim.Adam(params, lr=config.learning_rate)
        scheduler = None
        if config.final_learning_rate is not None:
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=config.epochs, eta_min=config.final_learning_rate
            )
        records: list[dict[str, float]] = []
        snapshots: list[np.ndarray] = []

        def record(epoch: int, w: torch.Tensor, estimates: torch.Tensor) -> None:
            est = estimates.detach().double().numpy() + offset
            free = w.detach().double().numpy()
            ess = kish_ess(free)
            records.append(
                {
                    "epoch": epoch,
                    "train_loss": target_loss(est[is_train], values[is_train], national[is_train]),
                    "validation_loss": target_loss(
                        est[~is_train], values[~is_train], national[~is_train]
                    ),
                    "ess_share": ess / len(free),
                    "max_ratio": float(np.max(free / w0)),
                }
            )
            snapshots.append(w.detach().numpy().copy())

        for epoch in range(config.epochs + 1):
            optimizer.zero_grad(set_to_none=True)
            w, b = weights(sampled=gates is not None)
            estimates = sparse_matvec(m, m_t, w)
            keep = epoch % config.record_every == 0 or epoch == config.epochs
            if keep and gates is None:
                record(epoch, w, estimates)
            elif keep:
                with torch.no_grad():
                    wd, _ = weights(sampled=False)
                    record(epoch, wd.clone(), torch.mv(m, wd))
            if epoch == config.epochs:
                break
            residual = estimates.index_select(0, fit_idx) - t_fit + 1.0
            if config.huber_delta is None:
                objective = torch.sum(coef * residual * residual)
            else:
                delta = config.huber_delta
                relative = residual * torch.sqrt(coef / scale_t)
                huber = 2 * delta**2 * (torch.sqrt(1 + (relative / delta) ** 2) - 1)
                objective = torch.sum(scale_t * huber)
            if config.log_penalty > 0:
                objective = objective + config.log_penalty * torch.mean(b * b)
            if config.kl_penalty > 0 or config.chi2_penalty > 0:
                r = torch.exp(b)
                if config.kl_penalty > 0:
                    kl = torch.sum(w0_share * (r * b - r + 1.0))
                    objective = objective + config.kl_penalty * kl
                if config.chi2_penalty > 0:
                    chi2 = torch.sum(w0_share * (r - 1.0) ** 2)
                    objective = objective + config.chi2_penalty * chi2
            if gates is not None:
                objective = objective + config.l0_lambda * gates.expected_open()
            objective.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
    finally:
        torch.set_num_threads(before)
    return pd.DataFrame.from_records(records), snapshots, time.perf_counter() - started


TRAIN_TOLERANCE = 0.01  # as SolverConfig.train_tolerance
SELECTIONS: dict[str, str] = {
    "final": "the last epoch",
    "val": "lowest validation loss",
    "val_tol": "lowest validation loss among epochs within 1% of the best train loss (as "
    "SolverConfig's train_tolerance)",
    "val_ess": f"val_tol among the epochs with ESS share >= {ESS_FLOOR:.0%} (an ESS floor "
    "in epoch selection)",
}


def select_epoch(history: pd.DataFrame, rule: str) -> int:
    """History row chosen by ``rule`` (see SELECTIONS); val_ess falls back to the highest
    ESS share when no epoch reaches the floor."""
    if rule == "final":
        return len(history) - 1
    if rule not in SELECTIONS:
        raise ValueError(f"unknown selection {rule!r}; known: {sorted(SELECTIONS)}")
    eligible = history
    if rule == "val_ess":
        eligible = history[history["ess_share"] >= ESS_FLOOR]
        if eligible.empty:
            return int(history["ess_share"].idxmax())
    if rule in ("val_tol", "val_ess"):
        best = eligible["train_loss"].min()
        eligible = eligible[eligible["train_loss"] <= best * (1 + TRAIN_TOLERANCE)]
    return int(eligible["validation_loss"].idxmin())


def fit_microcalibrate(problem: SplitProblem) -> tuple[np.ndarray, dict[str, Any]]:
    """microcalibrate (``pip install -e '.[benchmark]'``) on the free households' train rows,
    configured as policyengine-us-data's geography calibration calls it (Adam lr 0.2, 600
    epochs, noise level 10, no dropout, no L0) with this loss's normalisation; final
    weights (it has no validation selection)."""
    import logging

    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.getLogger("microcalibrate").setLevel(logging.ERROR)
    from microcalibrate import Calibration

    started = time.perf_counter()
    matrix, residual, index = residual_rows(problem, problem.mask("train"))
    names = problem.targets["name"].to_numpy()[index]
    estimate_matrix = pd.DataFrame(matrix.T.toarray().astype(np.float32), columns=names)
    np.random.seed(1456)
    torch.manual_seed(1456)
    calibration = Calibration(
        weights=problem.design[~problem.fixed].copy(),
        targets=residual,
        estimate_matrix=estimate_matrix,
        epochs=600,
        learning_rate=0.2,
        noise_level=10.0,
        dropout_rate=0.0,
        normalization_factor=torch.tensor(
            count_normalisation(problem.is_national[index]), dtype=torch.float32
        ),
        device="cpu",
        regularize_with_l0=False,
    )
    calibration.calibrate()
    weights = np.asarray(calibration.weights, dtype=np.float64)
    return problem.merge(weights), {"seconds": time.perf_counter() - started, "epochs_run": 600}
