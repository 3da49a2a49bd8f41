"""Backfill the local product from one command: 51 shards, their fallbacks, the fan-in.

    python -m microplex_assets.backfill [--states CA,TX] [--workers 2] [--households N]

Each cell is one Dagster run in the instance (tagged ``microplex/backfill=<id>``, so the
UI's Runs page filters a backfill), exactly what the UI's backfill of the same
partitions runs. Scheduling suits the 2-core machine: at most ``workers`` (default 2)
runs at once, each in a process forked from a parent that has already imported
policyengine-us and built the source frames, target registry and donor forest, so a
shard pays its own simulation and calibration, nothing shared. Order: shards first (in
parallel), then each ``national|<state>`` fallback and the ``local|US``
fan-in, which read the shards' and national|US's published bundles. The UI backfill
gets the same two-run limit from ``run_queue.max_concurrent_runs`` in dagster.yaml.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import DagsterInstance

from microplex_assets.files import write_json_atomic
from microplex_assets.geography.states import STATE_FIPS
from microplex_assets.partitions import Cell

BACKFILL_TAG = "microplex/backfill"


@dataclass
class BackfillPlan:
    """The cells of one backfill, in the order they can run."""

    shards: list[Cell]
    derived: list[Cell] = field(default_factory=list)

    @classmethod
    def local(cls, states: Iterable[str] = STATE_FIPS, fan_in: bool = True) -> BackfillPlan:
        states = list(states)
        unknown = sorted(set(states) - set(STATE_FIPS))
        if unknown:
            raise ValueError(f"unknown state codes {unknown}; expected postal codes like CA")
        derived = [Cell("national", s) for s in states]
        if fan_in:
            derived.append(Cell("local", "US"))
        return cls([Cell("local", s) for s in states], derived)


def peak_rss_gb() -> float:
    """This process's peak resident set (VmHWM), in GB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def run_cell(task: tuple[Cell, int | None, dict[str, Any] | None, str, bool]) -> dict[str, Any]:
    """Build one cell (in a worker process) and return its row of the backfill report."""
    from microplex_assets.runner import build_cell

    cell, households, settings, backfill_id, reuse = task
    started = time.perf_counter()
    try:
        summary = build_cell(
            cell.product,
            cell.geography,
            households,
            settings=settings,
            tags={BACKFILL_TAG: backfill_id, "microplex/cell": cell.label},
            reuse_unpartitioned=reuse,
        )
    except Exception as error:  # one bad cell must not lose the others' results
        return {"cell": cell.label, "success": False, "failures": [repr(error)]}
    losses = summary.losses.set_index("method") if summary.losses is not None else None

    def loss(method: str, split: str) -> float | None:
        if losses is None or method not in losses.index:
            return None
        value = losses.loc[method, split]
        return None if pd.isna(value) else float(value)

    if summary.derived_scores is not None:  # a derived cell: its own method's state scores
        scores = summary.derived_scores
        state = scores[(scores["level"] == "state") & (scores["method"] != "national|US")]
        losses = state.set_index("method").rename(index={"local|US": "candidate"})
    return {
        "cell": cell.label,
        "success": summary.success,
        "run_id": summary.run_id,
        "wall_s": round(time.perf_counter() - started, 1),
        "peak_rss_gb": round(peak_rss_gb(), 2),
        "households": summary.record_counts.get("household"),
        "train_loss": loss("candidate", "train"),
        "held_out_loss": loss("candidate", "held_out"),
        "fallback_train_loss": loss("national_fallback", "train"),
        "fallback_held_out_loss": loss("national_fallback", "held_out"),
        "failures": summary.failures[:3],
    }


def run_backfill(
    plan: BackfillPlan,
    workers: int = 2,
    households: int | None = None,
    settings: dict[str, Any] | None = None,
    log=print,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run the plan with ``workers`` concurrent runs; one row per cell and a summary."""
    from definitions import defs  # noqa: F401  (import once, before forking)
    from microplex_resources.policyengine_runtime import policyengine_system

    backfill_id = uuid.uuid4().hex[:8]
    started = time.perf_counter()
    # Create the instance's storage once here: forked runs creating it together race.
    with DagsterInstance.get() as instance:
        instance.get_runs(limit=1)
    policyengine_system()
    parent_rss = peak_rss_gb()
    log(
        f"backfill {backfill_id}: {len(plan.shards)} shards, then {len(plan.derived)} derived "
        f"cells; {workers} at a time (policyengine-us imported once: {parent_rss:.2f} GB)"
    )
    rows: list[dict[str, Any]] = []
    context = multiprocessing.get_context("fork")
    for stage, cells in (("shards", plan.shards), ("derived", plan.derived)):
        tasks = [(cell, households, settings, backfill_id, True) for cell in cells]
        if stage == "shards" and tasks:
            # The first shard runs here with the whole graph: it builds the source frames
            # and the target registry the others read from storage, and every forked shard
            # inherits its fitted donor forest (the same for all shards).
            row = run_cell((*tasks.pop(0)[:4], False))
            rows.append({"stage": stage, **row})
            log(
                f"[{time.perf_counter() - started:7.0f}s] {row['cell']:<12} "
                f"{'ok' if row['success'] else 'FAILED'} {row.get('wall_s', '?')}s (in parent)"
            )
        with context.Pool(workers, maxtasksperchild=1) as pool:
            for row in pool.imap_unordered(run_cell, tasks):
                rows.append({"stage": stage, **row})
                done = sum(r["stage"] == stage for r in rows)
                log(
                    f"[{time.perf_counter() - started:7.0f}s] {row['cell']:<12} "
                    f"{'ok' if row['success'] else 'FAILED'} {row.get('wall_s', '?')}s "
                    f"({done}/{len(cells)} {stage})"
                    + (f" {row['failures'][:1]}" if not row["success"] else "")
                )
    table = pd.DataFrame(rows)
    summary = {
        "backfill_id": backfill_id,
        "wall_s": round(time.perf_counter() - started, 1),
        "workers": workers,
        "cells": len(rows),
        "failed": table.loc[~table["success"], "cell"].tolist(),
        "parent_rss_gb": round(parent_rss, 2),
    }
    return table, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--states", default=None, help="comma-separated; default all 51")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--households", type=int, default=None, help="per shard")
    parser.add_argument("--settings", default=None, help="other BuildSettings fields, JSON")
    parser.add_argument("--no-fan-in", action="store_true")
    parser.add_argument("--report", type=Path, default=None, help="write the rows as JSON")
    args = parser.parse_args(argv)
    states = args.states.split(",") if args.states else list(STATE_FIPS)
    plan = BackfillPlan.local(states, fan_in=not args.no_fan_in)
    settings = json.loads(args.settings) if args.settings else None
    table, summary = run_backfill(plan, args.workers, args.households, settings)
    print(table.drop(columns=["failures"]).to_markdown(index=False, floatfmt=".4g"))
    print(json.dumps(summary, indent=2))
    if args.report:
        write_json_atomic(args.report, {"summary": summary, "cells": table.to_dict("records")})
    return 0 if not summary["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
