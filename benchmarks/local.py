"""Benchmark the local product: the 51-shard backfill on this machine.

Runs exactly what ``make backfill`` runs (``microplex_assets.backfill``: one Dagster asset
backfill of the 51 ``local|<state>`` shards, the 51 ``national|<state>`` fallbacks and the
``local|US`` fan-in, through the daemon and the run queue, ``max_concurrent_runs`` at a
time) while a sampler records the machine's used memory. Reports per-shard wall time
(its run's start to end), the whole backfill's wall time, and each shard's state-target
loss next to its fallback's (national|US weights on the same state's records, same
targets, same split). Prints tables and writes JSON. (Per-run peak RSS is not measured:
runs are the daemon's subprocesses; the machine-wide peak is.)

    python benchmarks/local.py [--states CA,TX] [--out PATH]

Needs national|US published (``make build``): it is every shard's fallback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DAGSTER_HOME", str(ROOT / "dagster_home"))

from microplex_assets.backfill import BackfillPlan, run_backfill  # noqa: E402
from microplex_assets.files import write_json_atomic  # noqa: E402
from microplex_assets.geography.states import STATE_FIPS  # noqa: E402
from microplex_assets.shard_table import shard_comparison  # noqa: E402


class MachineMemory(threading.Thread):
    """Peak used memory of the whole machine (all backfill processes together)."""

    def __init__(self, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.interval, self.peak = interval, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, psutil.virtual_memory().used)
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def summarise(table: pd.DataFrame) -> dict[str, object]:
    """Median and worst shard (by held-in loss) next to their fallbacks, and the counts."""
    built = table[table["success"]]
    median_row = built.iloc[(built["train_loss"] - built["train_loss"].median()).abs().argmin()]
    worst_row = built.loc[built["train_loss"].idxmax()]

    def row(r: pd.Series) -> dict[str, object]:
        return {k: r[k] for k in ("state", "train_loss", "fallback_train_loss",
                                  "held_out_loss", "fallback_held_out_loss")}  # fmt: skip

    return {
        "shards_built": int(len(built)),
        "shards_beating_fallback_held_in": int(built["beats_fallback_held_in"].sum()),
        "median_train_loss": float(built["train_loss"].median()),
        "median_fallback_train_loss": float(built["fallback_train_loss"].median()),
        "median_held_out_loss": float(built["held_out_loss"].median()),
        "median_fallback_held_out_loss": float(built["fallback_held_out_loss"].median()),
        "median_shard": row(median_row),
        "worst_shard": row(worst_row),
        "worst_fallback_train_loss": float(built["fallback_train_loss"].max()),
        "shard_wall_s": {
            "median": float(built["wall_s"].median()),
            "max": float(built["wall_s"].max()),
        },  # fmt: skip
    }


def executor_setting() -> dict[str, str]:
    """Which executor the backfill's runs used (``microplex_assets.executor`` reads these)."""
    return {
        "MICROPLEX_EXECUTOR": os.environ.get("MICROPLEX_EXECUTOR", "in_process"),
        "MICROPLEX_DASK_SCHEDULER": os.environ.get("MICROPLEX_DASK_SCHEDULER", "(loopback)"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--states", default=None)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / f"local_{date.today()}.json"
    )
    args = parser.parse_args(argv)
    states = args.states.split(",") if args.states else list(STATE_FIPS)
    memory = MachineMemory()
    memory.start()
    cells, backfill = run_backfill(BackfillPlan.local(states))
    memory.stop()
    table = shard_comparison(cells)
    summary = {**backfill, **summarise(table), "machine_peak_used_gb": memory.peak / 1024**3,
               "cpu_count": os.cpu_count(), "executor": executor_setting()}  # fmt: skip
    fan_in = Path(os.environ["DAGSTER_HOME"]) / "artifacts" / "local" / "US" / "scores.json"
    if fan_in.exists():
        summary["fan_in_scores"] = json.loads(fan_in.read_text())["scores"]
    print(table.to_markdown(index=False, floatfmt=".4g"))
    print(json.dumps(summary, indent=2, default=str))
    write_json_atomic(args.out, {"summary": summary, "shards": table.to_dict("records"),
                                 "cells": cells.to_dict("records")})  # fmt: skip
    print(f"wrote {args.out}")
    return 0 if backfill["success"] else 1


if __name__ == "__main__":
    sys.exit(main())
