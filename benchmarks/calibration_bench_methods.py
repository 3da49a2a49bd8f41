"""The methods ``calibration.py`` times (ours, the eCPS method, microcalibrate), each run in
its own process by ``worker``, and what is measured of them (peak memory, losses, weights)."""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
from calibration_bench_problem import Problem, load_problem

from microplex_assets.calibration.loss import target_loss
from microplex_assets.calibration.solver import calibrate
from microplex_assets.calibration.solver_config import SolverConfig, ecps_method_config

# --- measuring ---------------------------------------------------------------------------


class RssSampler(threading.Thread):
    """Samples this process's resident memory every 10 ms until stopped."""

    def __init__(self, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = 0
        self._stop_event = threading.Event()
        self._process = psutil.Process()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return max(self.peak, self._process.memory_info().rss)


def losses(problem: Problem, weights: np.ndarray) -> tuple[float, float]:
    t = problem.targets
    value, national, train = (
        t["value"].to_numpy(float),
        t["is_national"].to_numpy(),
        t["train"].to_numpy(),
    )
    estimates = problem.matrix @ np.asarray(weights, dtype=np.float64)
    held = ~train
    return (
        target_loss(estimates[train], value[train], national[train]),
        target_loss(estimates[held], value[held], national[held]) if held.any() else math.nan,
    )


def weight_summary(weights: np.ndarray) -> dict[str, float]:
    weights = np.asarray(weights, dtype=float)
    squares = float(np.square(weights).sum())
    return {
        "nonzero_weights": int((weights > 0).sum()),
        "ess": float(weights.sum() ** 2 / squares) if squares > 0 else 0.0,
        "weight_total": float(weights.sum()),
    }


# --- the methods (each runs in its own process) ------------------------------------------

METHODS = ("microplex", "ecps_method", "microcalibrate")
LABELS = {
    "microplex": "microplex solver (SolverConfig())",
    "ecps_method": "eCPS method (ecps_method_config())",
    "microcalibrate": "microcalibrate 0.19.1 (dense, Adam lr {lr:g}, {epochs} epochs)",
}


def method_label(method: str, args: argparse.Namespace) -> str:
    return LABELS[method].format(lr=args.mc_learning_rate, epochs=args.mc_epochs)


def run_ours(problem: Problem, config: SolverConfig) -> dict[str, Any]:
    t = problem.targets
    result = calibrate(
        problem.matrix,
        t["value"].to_numpy(float),
        t["is_national"].to_numpy(),
        t["train"].to_numpy(),
        problem.weights,
        config,
    )
    history = result.history
    return {
        "weights": result.weights,
        "trace": list(zip(history["seconds"], history["train_loss"], strict=True)),
        "history": history,
        "epochs_run": int(history["epoch"].iloc[-1]),
        "best_epoch": result.best_epoch,
        "config": result.config,
    }


def run_microcalibrate(problem: Problem, epochs: int, learning_rate: float) -> dict[str, Any]:
    """microcalibrate's own dense path; a wrapped estimate function times every epoch."""
    import logging

    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.getLogger("microcalibrate").setLevel(logging.ERROR)
    import torch
    from microcalibrate import Calibration

    from microplex_assets.calibration.loss import count_normalisation

    started = time.perf_counter()
    t = problem.targets
    train = t["train"].to_numpy()
    dense = problem.matrix[np.flatnonzero(train)].T.toarray().astype(np.float32)
    estimate_matrix = pd.DataFrame(dense, columns=t["name"][train].to_numpy())
    del dense
    np.random.seed(1456)
    torch.manual_seed(1456)
    calibration = Calibration(
        weights=problem.weights.copy(),
        targets=t["value"][train].to_numpy(float),
        estimate_matrix=estimate_matrix,
        epochs=epochs,
        learning_rate=learning_rate,
        noise_level=10.0,
        dropout_rate=0.0,
        normalization_factor=torch.tensor(
            count_normalisation(t["is_national"][train].to_numpy()), dtype=torch.float32
        ),
        device="cpu",
        regularize_with_l0=False,
    )
    values = t["value"][train].to_numpy(float)
    national = t["is_national"][train].to_numpy()
    trace: list[tuple[float, float]] = []
    inner = calibration.estimate_function

    def timed(weights):
        estimate = inner(weights)
        if weights.requires_grad:  # the training calls, not the one-off assessment
            est = estimate.detach().to(torch.float64).numpy()
            trace.append((time.perf_counter() - started, target_loss(est, values, national)))
        return estimate

    calibration.estimate_function = timed
    calibration.calibrate()
    return {
        "weights": np.asarray(calibration.weights, dtype=np.float64),
        "trace": trace,
        "history": None,
        "epochs_run": epochs,
        "best_epoch": epochs,
        "config": {"epochs": epochs, "learning_rate": learning_rate, "noise_level": 10.0},
    }


def worker(method: str, folder: Path, out: Path, args: argparse.Namespace) -> None:
    """Run one method on the saved problem; write its measurements as JSON."""
    problem = load_problem(
        folder / "matrix.npz", folder / "targets.parquet", folder / "weights.npy"
    )
    gc.collect()
    sampler = RssSampler()
    before = psutil.Process().memory_info().rss
    sampler.start()
    started = time.perf_counter()
    if method == "microplex":
        run = run_ours(problem, SolverConfig())
    elif method == "ecps_method":
        run = run_ours(problem, ecps_method_config())
    else:
        run = run_microcalibrate(problem, args.mc_epochs, args.mc_learning_rate)
    seconds = time.perf_counter() - started
    peak = sampler.stop()
    train_loss, holdout_loss = losses(problem, run["weights"])
    history = run["history"]
    record = {
        "method": method,
        "label": method_label(method, args),
        "seconds": seconds,
        "peak_rss_delta_mb": (peak - before) / 2**20,
        "train_loss": train_loss,
        "holdout_loss": holdout_loss,
        **weight_summary(run["weights"]),
        "epochs_run": run["epochs_run"],
        "best_epoch": run["best_epoch"],
        "trace": run["trace"],
        "config": run["config"],
        # the lowest held-out loss anywhere on the run's path (not what it returns)
        "path_min_holdout": None if history is None else float(history["holdout_loss"].min()),
        "path_min_holdout_epoch": None
        if history is None
        else int(history["epoch"][history["holdout_loss"].idxmin()]),
        "history": None
        if history is None
        else history.iloc[::10].to_dict(orient="list") | {"last": history.iloc[-1].to_dict()},
    }
    out.write_text(json.dumps(record, default=float))
