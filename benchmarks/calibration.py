"""Benchmark the calibration solvers on one problem: ours, the eCPS method, microcalibrate.

    python benchmarks/calibration.py [--from-build [WORK_DIR]]
    python benchmarks/calibration.py [--matrix M.npz --targets T.parquet --weights W.npy]
                                     [--label NAME] [--skip-microcalibrate]

``--from-build`` takes the real problem a build saved (the national build's kept targets,
its policyengine-us household contributions and design weights). With no inputs it builds
a synthetic national-scale problem (see ``synthetic_problem``):
40,000 households x about 3,000 targets, about 12.9M nonzeros, fixed seed. With inputs:
``--matrix`` a ``scipy.sparse.save_npz`` file of shape (targets, households), ``--targets``
a parquet with columns name, value, is_national, train (bool) in the matrix's row order,
``--weights`` the design weights (.npy, one per household).

Every method gets the same matrix, targets and design weights, and every reported loss is
``loss.target_loss`` over the full train / held-out sets (a method that trains on fewer
targets, like the eCPS method dropping |t| < 0.1, is still scored on all of them).
Each method runs in its own process. Reports per method: seconds to reach two train-loss
thresholds (2x the best final train loss among the methods, and the worst final one, which
every method reaches), total seconds (everything the method does, setup and for
microcalibrate the dense matrix included), final train and held-out loss, the lowest
held-out loss anywhere on the method's path, peak memory (the process RSS sampled every
10 ms with psutil, peak minus the RSS just before the method started), nonzero weights
and Kish ESS; plus the design (and, synthetic, the truth) weights as references. Prints a
markdown table and writes JSON to ``benchmarks/results/calibration_<date>_<label>.json``
(git keeps only labels ending in ``national_40k``; the synthetic default is one).

microcalibrate (``pip install -e '.[benchmark]'``) runs its own dense path, configured as
policyengine-us-data's geography calibration calls it (Adam lr 0.2, 600 epochs, noise
level 10, no dropout, no L0), with the loss normalisation of ``loss.py`` passed as its
normalization_factor so it minimises the same loss; its train loss per epoch is timed
through a wrapped estimate function. Without the package it is reported as skipped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from microplex_assets.calibration.loss import target_loss  # noqa: E402
from microplex_assets.calibration.solver import calibrate  # noqa: E402
from microplex_assets.calibration.solver_config import SolverConfig, ecps_method_config  # noqa: E402


@dataclass
class Problem:
    matrix: sp.csr_matrix  # (targets, households)
    targets: pd.DataFrame  # name, value, is_national, train
    weights: np.ndarray  # design weights
    description: str
    truth: np.ndarray | None = None  # the weights the synthetic targets came from


def synthetic_problem(
    n_households: int = 40_000,
    n_states: int = 51,
    n_national: int = 600,
    targets_per_state: int = 47,
    holdout_share: float = 0.15,
    seed: int = 20_240_101,
) -> Problem:
    """A national-scale problem shaped like a PolicyEngine loss matrix, with a known truth.

    Households carry 6 latent features (income level, age, size, ...). Each target is a
    variable (a lognormal amount driven by the features, or a person count) summed over a
    filter (a random half-space of the features, so rows overlap and correlate like income
    bands and age groups do); state targets only see that state's households. National
    filters cover 5-95% of households, state filters 10-100% of the state. Together about
    12.8M nonzeros.

    The truth weights differ from the design weights (lognormal, sd 0.45 in logs) by
    exp(0.35 tanh(features . b) + state effect (sd 0.05) + household noise (sd 0.15)): a
    smooth part the targets can reveal, a state part only that state's targets reveal (so a
    held-out state's is unknowable) and noise. Targets are the truth
    estimates times (1 + N(0, 0.02)), and 5% of them times (1 + N(0, 0.15)): sources that
    disagree, so not every target is attainable. Held out: whole blocks, about 14% of
    targets: all targets of 7 states plus every national target of 15% of the variables.
    """
    rng = np.random.default_rng(seed)
    n = n_households
    shares = rng.dirichlet(np.full(n_states, 2.0))
    state = rng.choice(n_states, size=n, p=shares)
    features = rng.normal(size=(n, 6)).astype(np.float32)
    persons = 1 + rng.poisson(1.5 * np.exp(0.2 * features[:, 2]))
    design = np.exp(rng.normal(np.log(3_300.0), 0.45, size=n))

    n_variables = 40
    mean_log = rng.uniform(5.0, 11.0, size=n_variables)
    loadings = rng.normal(0.0, 0.5, size=(n_variables, 6))
    is_count = rng.random(n_variables) < 0.3

    def contribution(v: int, idx: np.ndarray) -> np.ndarray:
        if is_count[v]:
            return persons[idx].astype(np.float32)
        noise = rng.normal(0.0, 0.8, size=len(idx))
        return np.exp(mean_log[v] + features[idx] @ loadings[v] + noise).astype(np.float32)

    def half_space(idx: np.ndarray, density: float) -> np.ndarray:
        direction = rng.normal(size=6)
        score = features[idx] @ direction
        cut = np.quantile(score, 1.0 - density)
        return idx[score >= cut]

    rows, cols, vals, names, national, variable, geo = [], [], [], [], [], [], []
    everyone = np.arange(n)
    for i in range(n_national):
        v = int(rng.integers(n_variables))
        idx = half_space(everyone, rng.uniform(0.05, 0.95))
        rows.append(np.full(len(idx), len(names)))
        cols.append(idx)
        vals.append(contribution(v, idx))
        names.append(f"nation/var{v:02d}/filter{i}")
        national.append(True)
        variable.append(v)
        geo.append(-1)
    for s in range(n_states):
        members = np.flatnonzero(state == s)
        for k in range(targets_per_state):
            v = int(rng.integers(n_variables))
            idx = half_space(members, rng.uniform(0.1, 1.0)) if len(members) else members
            rows.append(np.full(len(idx), len(names)))
            cols.append(idx)
            vals.append(contribution(v, idx))
            names.append(f"state/{s:02d}/var{v:02d}/filter{k}")
            national.append(False)
            variable.append(v)
            geo.append(s)
    matrix = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(names), n),
        dtype=np.float32,
    )

    smooth = 0.35 * np.tanh(features @ rng.normal(0.0, 0.6, size=6))
    state_effect = rng.normal(0.0, 0.05, size=n_states)[state]
    truth = design * np.exp(smooth + state_effect + rng.normal(0.0, 0.15, size=n))
    exact = matrix.astype(np.float64) @ truth
    noise_sd = np.where(rng.random(len(names)) < 0.05, 0.15, 0.02)
    values = exact * (1.0 + rng.normal(0.0, 1.0, size=len(names)) * noise_sd)

    national = np.array(national)
    variable = np.array(variable)
    geo = np.array(geo)
    held_states = rng.choice(
        n_states, size=max(1, round(n_states * holdout_share * 0.9)), replace=False
    )
    held_variables = rng.choice(n_variables, size=max(1, round(n_variables * 0.15)), replace=False)
    held = np.isin(geo, held_states) | (national & np.isin(variable, held_variables))
    targets = pd.DataFrame(
        {"name": names, "value": values, "is_national": national, "train": ~held}
    )
    description = (
        f"synthetic national problem, seed {seed}: {n:,} households, {len(names):,} targets "
        f"({int(national.sum())} national, {int((~national).sum())} state in {n_states} "
        f"states), {matrix.nnz:,} nonzeros, {int(held.sum())} held out "
        f"({held.mean():.1%}: states {sorted(held_states.tolist())}, national variables "
        f"{sorted(held_variables.tolist())})"
    )
    return Problem(
        matrix=matrix, targets=targets, weights=design, description=description, truth=truth
    )


# --- problem files ---------------------------------------------------------------------


def save_problem(problem: Problem, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    sp.save_npz(folder / "matrix.npz", problem.matrix)
    problem.targets.to_parquet(folder / "targets.parquet")
    np.save(folder / "weights.npy", problem.weights)
    if problem.truth is not None:
        np.save(folder / "truth.npy", problem.truth)
    (folder / "description.txt").write_text(problem.description)


def load_problem(matrix: Path, targets: Path, weights: Path, truth: Path | None = None) -> Problem:
    table = pd.read_parquet(targets)
    missing = {"name", "value", "is_national", "train"} - set(table.columns)
    if missing:
        raise SystemExit(f"{targets}: missing columns {sorted(missing)}")
    table["is_national"] = table["is_national"].astype(bool)
    table["train"] = table["train"].astype(bool)
    loaded = sp.load_npz(matrix).tocsr()
    design = np.load(weights)
    if loaded.shape != (len(table), len(design)):
        raise SystemExit(
            f"matrix shape {loaded.shape} does not match {len(table)} targets x "
            f"{len(design)} weights"
        )
    description_file = matrix.parent / "description.txt"
    description = (
        description_file.read_text()
        if description_file.exists()
        else f"{matrix.name}: {loaded.shape[1]:,} households, {loaded.shape[0]:,} targets, "
        f"{loaded.nnz:,} nonzeros, {int((~table['train']).sum())} held out"
    )
    return Problem(
        matrix=loaded,
        targets=table,
        weights=design,
        description=description,
        truth=np.load(truth) if truth is not None and truth.exists() else None,
    )


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


def seconds_to(trace: list[list[float]], threshold: float) -> float | None:
    for seconds, loss in trace:
        if loss <= threshold:
            return float(seconds)
    return None


def markdown(rows: list[dict[str, Any]], thresholds: dict[str, float]) -> str:
    (name_a, a), (name_b, b) = thresholds.items()
    lines = [
        f"| method | s to train loss <= {a:.3g} ({name_a}) | s to train loss <= {b:.3g} "
        f"({name_b}) | total s | epochs | train loss | held-out loss | lowest held-out on "
        "the path (epoch) | peak RSS delta MB | nonzero weights | ESS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def fmt(value: float | None) -> str:
        return "never" if value is None else f"{value:.1f}"

    for row in rows:
        if row.get("skipped"):
            lines.append(f"| {row['label']} | skipped: {row['skipped']} ||||||||||")
            continue
        if "trace" not in row:  # a reference weight vector, not a method
            lines.append(
                f"| {row['label']} | | | | | {row['train_loss']:.3e} | {row['holdout_loss']:.3e}"
                f" | | | {row['nonzero_weights']:,} | {row['ess']:,.0f} |"
            )
            continue
        path = (
            "n/a (no per-epoch held-out)"
            if row.get("path_min_holdout") is None
            else f"{row['path_min_holdout']:.3e} ({row['path_min_holdout_epoch']})"
        )
        lines.append(
            f"| {row['label']} | {fmt(row.get('seconds_to_a'))} | {fmt(row.get('seconds_to_b'))}"
            f" | {fmt(row.get('seconds'))} | {row.get('epochs', '')} | {row['train_loss']:.3e}"
            f" | {row['holdout_loss']:.3e} | {path} | {fmt(row.get('peak_rss_delta_mb'))}"
            f" | {row['nonzero_weights']:,} | {row['ess']:,.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matrix", type=Path)
    parser.add_argument("--targets", type=Path)
    parser.add_argument("--weights", type=Path)
    parser.add_argument(
        "--from-build",
        type=Path,
        nargs="?",
        const=ROOT / "dagster_home" / "artifacts" / "_work" / "national" / "US" / "latest",
        help="a build's work folder (default: the national|US build of `make build`): its "
        "target_matrix.npz, target_matrix_targets.parquet, target_matrix_design_weights.npy",
    )
    parser.add_argument("--label", default=None)
    parser.add_argument("--seed", type=int, default=20_240_101, help="synthetic problem seed")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--skip-microcalibrate", action="store_true")
    parser.add_argument("--mc-epochs", type=int, default=600)
    parser.add_argument("--mc-learning-rate", type=float, default=0.2)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--problem-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.problem_dir, args.result, args)
        return

    if args.from_build:
        args.matrix = args.from_build / "target_matrix.npz"
        args.targets = args.from_build / "target_matrix_targets.parquet"
        args.weights = args.from_build / "target_matrix_design_weights.npy"
        for path in (args.matrix, args.targets, args.weights):
            if not path.is_file():
                raise SystemExit(f"--from-build: {path} is missing; run `make build` first")
        args.label = args.label or "real_national_40k"
    given = [args.matrix, args.targets, args.weights]
    if any(given) and not all(given):
        raise SystemExit("--matrix, --targets and --weights go together")
    methods = [m for m in args.methods.split(",") if m]
    if args.skip_microcalibrate and "microcalibrate" in methods:
        methods.remove("microcalibrate")
    skipped: dict[str, str] = {}
    if "microcalibrate" in methods:
        try:
            import microcalibrate  # noqa: F401
        except ImportError as error:
            skipped["microcalibrate"] = (
                f"not installed ({error}); pip install -e '.[benchmark]' to include it"
            )
            methods.remove("microcalibrate")

    with tempfile.TemporaryDirectory(prefix="calibration-bench-") as tmp:
        folder = Path(tmp)
        if all(given):
            problem = load_problem(args.matrix, args.targets, args.weights)
            label = args.label or args.matrix.stem
        else:
            problem = synthetic_problem(seed=args.seed)
            label = args.label or "synthetic_national_40k"
        save_problem(problem, folder)
        print(problem.description, flush=True)

        rows: list[dict[str, Any]] = []
        for reference, weights in (("design weights", problem.weights), ("truth", problem.truth)):
            if weights is None:
                continue
            train_loss, holdout_loss = losses(problem, weights)
            rows.append(
                {
                    "method": reference,
                    "label": f"(reference) {reference}",
                    "train_loss": train_loss,
                    "holdout_loss": holdout_loss,
                    **weight_summary(weights),
                }
            )
        load_before = os.getloadavg()
        for method in methods:
            result = folder / f"{method}.json"
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                method,
                "--problem-dir",
                str(folder),
                "--result",
                str(result),
                "--mc-epochs",
                str(args.mc_epochs),
                "--mc-learning-rate",
                str(args.mc_learning_rate),
            ]
            print(f"running {method} ...", flush=True)
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
                skipped[method] = "failed: " + " / ".join(tail)
                print(f"  {method} failed:\n" + "\n".join(tail), flush=True)
                continue
            record = json.loads(result.read_text())
            record["epochs"] = record["epochs_run"]
            rows.append(record)
            print(
                f"  {record['seconds']:.1f} s, train {record['train_loss']:.3e}, "
                f"held-out {record['holdout_loss']:.3e}",
                flush=True,
            )
    for method, why in skipped.items():
        rows.append({"method": method, "label": method_label(method, args), "skipped": why})

    measured = [r for r in rows if "trace" in r]
    finals = [r["train_loss"] for r in measured]
    thresholds = {
        "2x the best final": 2.0 * min(finals) if finals else math.nan,
        "the worst final": max(finals) if finals else math.nan,
    }
    for row in measured:
        row["seconds_to_a"], row["seconds_to_b"] = (
            seconds_to(row["trace"], threshold) for threshold in thresholds.values()
        )
    table = markdown(rows, thresholds)
    print()
    print(table)
    for reason in skipped.values():
        print(f"skipped: {reason}")

    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"calibration_{dt.date.today().isoformat()}_{label}.json"
    for row in measured:
        trace = row.pop("trace")
        row["trace_every_10th"] = trace[::10] + ([trace[-1]] if trace else [])
    out.write_text(
        json.dumps(
            {
                "problem": problem.description,
                "label": label,
                "thresholds": thresholds,
                "memory": "peak RSS (psutil, sampled every 10 ms) minus RSS before the method, "
                "each method in its own process after loading the problem",
                "machine": {
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "load_average_before": load_before,
                    "python": platform.python_version(),
                    "torch": _version("torch"),
                    "microcalibrate": _version("microcalibrate"),
                },
                "methods": rows,
                "table": table,
            },
            indent=2,
            default=float,
        )
    )
    print(f"\nwrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
