"""Benchmark the national build: wall time and peak memory per stage and in total.

Runs the same in-process materialization as ``make build`` while a sampler thread
records the process RSS every 0.1 s; each step's peak is the largest sample inside the
step's start/end timestamps from the Dagster event log. Every 2 s it also sums the
proportional set size (PSS) of the build and every process it forked (the benchmark
suite's reform slices): the build's real claim on the machine's memory, which the
build process's own RSS (and ``/usr/bin/time``'s maximum RSS, the largest single
process) leaves out. Then loads the published H5
in a separate Python process, as a user would. Prints a table and writes JSON.

    python benchmarks/build.py [--households N] [--out benchmarks/results/build.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DAGSTER_HOME", str(ROOT / "dagster_home"))

LOAD_CHECK = """
import sys, time
started = time.perf_counter()
from policyengine_us import Microsimulation
sim = Microsimulation(dataset=sys.argv[1])
year = int(sys.argv[2])
print({"households": int(len(sim.calculate("household_id", year))),
       "income_tax_bn": round(float(sim.calculate("income_tax", year).sum()) / 1e9, 1),
       "seconds": round(time.perf_counter() - started, 1)})
"""


def tree_pss_bytes(process: psutil.Process) -> int:
    """PSS of ``process`` and every live descendant, summed (psutil reads each one's
    ``smaps_rollup``): forked children share the parent's pages, so summing their RSS
    would count those pages once per child. A process gone mid-sample counts 0."""
    try:
        family = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for member in family:
        with contextlib.suppress(psutil.Error):
            total += member.memory_full_info().pss
    return total


class RssSampler(threading.Thread):
    """Samples this process's resident memory (every ``interval``) and the PSS of its
    process tree (every ``tree_interval``) until stopped."""

    def __init__(self, interval: float = 0.1, tree_interval: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.interval, self.tree_interval = interval, tree_interval
        self.samples: list[tuple[float, int]] = []
        self.tree_samples: list[tuple[float, int]] = []
        self._stop_event = threading.Event()
        self._process = psutil.Process()

    def run(self) -> None:
        next_tree = 0.0
        while not self._stop_event.is_set():
            now = time.time()
            self.samples.append((now, self._process.memory_info().rss))
            if now >= next_tree:
                self.tree_samples.append((now, tree_pss_bytes(self._process)))
                next_tree = now + self.tree_interval
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def peak_between(self, start: float, end: float, tree: bool = False) -> int:
        samples = self.tree_samples if tree else self.samples
        inside = [value for t, value in samples if start <= t <= end]
        if inside:
            return max(inside)
        before = [value for t, value in samples if t <= end]  # step shorter than a tick
        return before[-1] if before else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=None)
    parser.add_argument("--product", default="national")
    parser.add_argument("--geography", default="US")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "build.json"))
    args = parser.parse_args()

    from dagster import DagsterInstance

    from microplex_assets.runner import build_cell, step_windows

    sampler = RssSampler()
    sampler.start()
    started = time.time()
    instance = DagsterInstance.get()
    summary = build_cell(args.product, args.geography, args.households, instance=instance)
    wall = time.time() - started
    sampler.stop()

    rows = []
    for entry in step_windows(instance, summary.run_id):
        rows.append(
            {
                "step": entry["step"],
                "seconds": round(entry["end"] - entry["start"], 1),
                "peak_rss_gb": round(sampler.peak_between(entry["start"], entry["end"]) / 2**30, 2),
                "peak_tree_pss_gb": round(
                    sampler.peak_between(entry["start"], entry["end"], tree=True) / 2**30, 2
                ),
            }
        )
    peak = max(rss for _, rss in sampler.samples) / 2**30
    tree_peak = max((pss for _, pss in sampler.tree_samples), default=0) / 2**30
    suite_seconds = sum(r["seconds"] for r in rows if r["step"].startswith("microsim_benchmarks"))
    result = {
        "success": summary.success,
        "partition": summary.partition,
        "households": summary.record_counts.get("household"),
        "record_counts": summary.record_counts,
        "wall_seconds": round(wall, 1),
        "peak_rss_gb": round(peak, 2),
        "peak_tree_pss_gb": round(tree_peak, 2),
        "steps": rows,
        # The reform suite's share: its step (the reform simulations; the baseline is the
        # schema gate's sliced simulation, reused) and its gates, over the whole build's wall.
        "microsim_suite_seconds": round(suite_seconds, 1),
        "microsim_suite_share": round(suite_seconds / wall, 3) if wall else None,
        "microsim_simulation_seconds": (summary.benchmarks or {}).get("simulation_seconds"),
        "cpu_count": os.cpu_count(),
    }
    if summary.bundle_dir:
        h5 = next(Path(summary.bundle_dir).glob("policyengine_us_*.h5"))
        year = h5.stem.rsplit("_", 1)[-1]
        check = subprocess.run(
            [sys.executable, "-c", LOAD_CHECK, str(h5), year],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        result["separate_process_load"] = check.stdout.strip() or check.stderr[-2000:]
        result["h5_size_mb"] = round(h5.stat().st_size / 2**20, 1)

    import pandas as pd

    print(pd.DataFrame(rows).to_markdown(index=False))
    print(
        f"\nwhole build: {wall:.1f} s wall, peak RSS {peak:.2f} GB (build process), "
        f"peak PSS {tree_peak:.2f} GB (build and its forked slices), success={summary.success}"
    )
    print(f"records: {summary.record_counts}")
    print(
        f"benchmark suite: {suite_seconds:.1f} s ({suite_seconds / wall:.1%} of the build); "
        f"per reform: {result['microsim_simulation_seconds']}"
    )
    print(f"separate-process load: {result.get('separate_process_load')}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0 if summary.success else 1


if __name__ == "__main__":
    sys.exit(main())
