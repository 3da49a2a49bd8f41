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
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from calibration_bench_methods import (  # noqa: E402
    LABELS,
    METHODS,
    RssSampler,
    losses,
    method_label,
    run_microcalibrate,
    run_ours,
    weight_summary,
    worker,
)
from calibration_bench_problem import (  # noqa: E402
    Problem,
    load_problem,
    save_problem,
    synthetic_problem,
)

__all__ = [  # re-exported: the names this script defined before it was split
    "LABELS",
    "METHODS",
    "Problem",
    "RssSampler",
    "load_problem",
    "losses",
    "method_label",
    "run_microcalibrate",
    "run_ours",
    "save_problem",
    "synthetic_problem",
    "weight_summary",
    "worker",
]


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
