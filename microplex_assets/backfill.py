"""Backfill the local product through Dagster's own asset backfill.

    python -m microplex_assets.backfill [--states CA,TX] [--households N] [--no-fan-in]

This adds one asset backfill to the instance (DAGSTER_HOME), exactly what the UI's
"Materialize" over the same partitions adds: the backfill daemon submits a run per cell
as soon as the cell's parents are materialized (the lineage in the graph: shards, then
each ``national|<state>`` fallback and the ``local|US`` fan-in), the run queue holds them
to ``run_queue.max_concurrent_runs`` (dagster.yaml) and every run is a real run of the
code location, listed under the backfill in the UI, where failed cells can be
re-executed. The unpartitioned parents (source frames, target registry) join the
backfill only when Dagster finds them missing or stale (their code version changed), so
they are built once and every shard run reads them from storage.

With no daemon running (``make ui`` runs one) this starts ``dagster-daemon`` for the
backfill's duration; it follows the backfill to the end, printing each run as it
finishes, and exits non-zero when a cell failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
)
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.storage.tags import BACKFILL_ID_TAG, PARTITION_NAME_TAG
from dagster._core.utils import make_new_backfill_id
from dagster._time import get_current_datetime

from microplex_assets.files import write_json_atomic
from microplex_assets.geography.states import STATE_FIPS
from microplex_assets.lineage import NATIONAL_US_RELEASE
from microplex_assets.partitions import Cell, product_geography_partitions
from microplex_assets.shard_table import shard_losses

Target = AssetKeyPartitionKey
DONE = {
    BulkActionStatus.COMPLETED,
    BulkActionStatus.COMPLETED_SUCCESS,
    BulkActionStatus.COMPLETED_FAILED,
    BulkActionStatus.FAILED,
    BulkActionStatus.CANCELED,
}
SUCCEEDED = {BulkActionStatus.COMPLETED, BulkActionStatus.COMPLETED_SUCCESS}
WORKSPACE = Path(__file__).resolve().parents[1] / "workspace.yaml"


@dataclass
class BackfillPlan:
    """The cells of one local backfill: the shards and the derived cells made from them."""

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


def derived_asset(cell: Cell) -> AssetKey:
    return AssetKey("national_state_fallback" if cell.product == "national" else "local_rich_fanin")


def stale_unpartitioned(graph: Any, instance: DagsterInstance) -> list[AssetKey]:
    """The unpartitioned executable assets Dagster finds missing or stale (code version or
    an upstream changed since their last materialization): the ones a backfill rebuilds."""
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=graph,
    )
    resolver = CachingStaleStatusResolver(instance, graph, loading_context=view)
    return sorted(
        (
            key
            for key in graph.get_all_asset_keys()
            if graph.get(key).is_executable
            and graph.get(key).partitions_def is None
            and resolver.get_status(key) != StaleStatus.FRESH
        ),
        key=lambda k: k.to_user_string(),
    )


def plan_targets(graph: Any, instance: DagsterInstance, plan: BackfillPlan) -> set[Target]:
    """Every (asset, cell) of the plan: each shard's record chain (the executable assets on
    the full grid), each derived cell's asset, and the stale unpartitioned parents."""
    chain = [
        key
        for key in graph.get_all_asset_keys()
        if graph.get(key).is_executable
        and graph.get(key).partitions_def == product_geography_partitions
    ]
    targets = {Target(key, str(cell.key)) for cell in plan.shards for key in chain}
    targets |= {Target(derived_asset(cell), str(cell.key)) for cell in plan.derived}
    targets |= {Target(key, None) for key in stale_unpartitioned(graph, instance)}
    return targets


# national|US's publication: what the national|<state> fallbacks read, as its current bundle
NATIONAL_PUBLICATION = (AssetKey("published_dataset"), str(Cell("national", "US").key))


def missing_parents(
    graph: Any, instance: DagsterInstance, targets: set[Target]
) -> dict[str, list[str]]:
    """For each target, the parent partitions (by the graph's partition mappings) that are
    neither materialized in the instance nor in the backfill: what would make it fail."""
    materialized: dict[AssetKey, set[str]] = {}

    def done(parent: Target) -> bool:
        # the fallbacks read the current national|US bundle, which national_us_release
        # records even when that bundle was built in another instance (make build)
        if (parent.asset_key, str(parent.partition_key)) == NATIONAL_PUBLICATION and (
            instance.get_latest_materialization_event(NATIONAL_US_RELEASE) is not None
        ):
            return True
        if parent.partition_key is None:
            return instance.get_latest_materialization_event(parent.asset_key) is not None
        if parent.asset_key not in materialized:
            materialized[parent.asset_key] = set(
                instance.get_materialized_partitions(parent.asset_key)
            )
        return str(parent.partition_key) in materialized[parent.asset_key]

    missing: dict[str, list[str]] = {}
    for target in sorted(targets, key=str):
        parents = graph.get_parents_partitions(target.asset_key, target.partition_key)
        gone = sorted(
            f"{p.asset_key.to_user_string()}[{p.partition_key or ''}]"
            for p in parents.parent_partitions
            if graph.get(p.asset_key).is_executable and p not in targets and not done(p)
        )
        if gone:
            missing[f"{target.asset_key.to_user_string()}[{target.partition_key or ''}]"] = gone
    return missing


def launch_backfill(
    instance: DagsterInstance,
    graph: Any,
    targets: set[Target],
    run_config: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    title: str | None = None,
) -> str:
    """Add an asset backfill of ``targets`` to the instance (what the UI's launch does);
    the daemon carries it out. Returns its id."""
    backfill_id = make_new_backfill_id()
    subset = AssetGraphSubset.from_asset_partition_set(targets, graph)
    instance.add_backfill(
        PartitionBackfill.from_asset_graph_subset(
            backfill_id=backfill_id,
            backfill_timestamp=time.time(),
            tags=tags or {},
            dynamic_partitions_store=instance,
            asset_graph_subset=subset,
            title=title,
            description=None,
            run_config=run_config,
        )
    )
    return backfill_id


def run_label(tags: dict[str, str]) -> str:
    """``product|geography`` of a run from its partition tags; "unpartitioned" without."""
    product = tags.get(f"{PARTITION_NAME_TAG}/product")
    geography = tags.get(f"{PARTITION_NAME_TAG}/geography")
    return f"{product}|{geography}" if product and geography else "unpartitioned"


def backfill_runs(instance: DagsterInstance, backfill_id: str) -> list[dict[str, Any]]:
    """One row per run of the backfill: cell, run id, status and wall seconds."""
    rows = []
    for run in instance.get_runs(RunsFilter(tags={BACKFILL_ID_TAG: backfill_id})):
        stats = instance.get_run_stats(run.run_id)
        wall = (
            round(stats.end_time - stats.start_time, 1)
            if stats.start_time and stats.end_time
            else None
        )
        rows.append(
            {"cell": run_label(dict(run.tags)), "run_id": run.run_id,
             "status": run.status.value, "wall_s": wall,
             "assets": len(run.asset_selection or ()), "steps": stats.steps_succeeded,
             "error": first_failure(instance, run.run_id)
             if run.status == DagsterRunStatus.FAILURE else None}
        )  # fmt: skip
    return sorted(rows, key=lambda r: r["run_id"])


def run_succeeded(row: dict[str, Any]) -> bool:
    """SUCCESS, and a step run when it targeted assets: a run that "succeeded" without a
    step did no work (what dagster#21418 did to half the 2026-12-03 backfill)."""
    return row["status"] == DagsterRunStatus.SUCCESS.value and bool(
        row["steps"] or not row["assets"]
    )


def first_failure(instance: DagsterInstance, run_id: str) -> str | None:
    """The first failed step's (or else the run's) error message of a run."""
    for kind in (DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE):
        for entry in instance.all_logs(run_id, of_type=kind):
            data = entry.dagster_event.event_specific_data
            error = getattr(data, "error", None)
            return f"{entry.step_key or 'run'}: {error.message.strip() if error else entry.message}"
    return None


def follow_backfill(
    instance: DagsterInstance,
    backfill_id: str,
    log: Callable[[str], Any] = print,
    poll_s: float = 5.0,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Poll the backfill until it and all its runs are done, logging each run as it ends.
    Returns the summary (``success`` false on any failed run or a failed backfill)."""
    started = time.time()
    seen: dict[str, str] = {}
    terminal = {s.value for s in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE,
                                  DagsterRunStatus.CANCELED)}  # fmt: skip
    while True:
        backfill = instance.get_backfill(backfill_id)
        rows = backfill_runs(instance, backfill_id)
        for row in rows:
            if seen.get(row["run_id"]) != row["status"]:
                seen[row["run_id"]] = row["status"]
                done = sum(r["status"] in terminal for r in rows)
                log(
                    f"[{time.time() - started:7.0f}s] {row['cell']:<14} {row['status']:<9} "
                    f"run {row['run_id'][:8]} ({row['assets']} assets"
                    + (f", {row['wall_s']}s" if row["wall_s"] else "")
                    + f"); {done}/{len(rows)} runs done, backfill {backfill.status.value}"
                    + (f"\n    {row['error'][:400]}" if row["error"] else "")
                )
        if backfill.status in DONE and all(r["status"] in terminal for r in rows):
            break
        if timeout_s is not None and time.time() - started > timeout_s:
            raise TimeoutError(f"backfill {backfill_id} still {backfill.status.value}")
        time.sleep(poll_s)
    failed = [r["cell"] for r in rows if not run_succeeded(r)]
    return {
        "backfill_id": backfill_id,
        "status": backfill.status.value,
        "success": backfill.status in SUCCEEDED and not failed,
        "wall_s": round(time.time() - started, 1),
        "runs": rows,
        "failed": failed,
        "error": backfill.error.to_string() if backfill.error else None,
    }


def require_national_release(instance: DagsterInstance, artifacts: Path) -> None:
    """Shards score their fallback against the current national|US bundle: refuse before
    any run starts when there is none. A bundle made current before the asset existed is
    recorded once as a materialization of ``national_us_release``."""
    if instance.get_latest_materialization_event(NATIONAL_US_RELEASE) is not None:
        return
    current = artifacts / "national" / "US" / "current"
    if not current.exists():
        raise SystemExit(
            f"national|US has no current bundle ({current}): the shards score against it. "
            "Build it first: make build"
        )
    instance.report_runless_asset_event(
        AssetMaterialization(
            NATIONAL_US_RELEASE,
            description="recorded by make backfill from the existing current pointer",
            metadata={"bundle_dir": str(current.resolve())},
        )
    )


def run_backfill(
    plan: BackfillPlan,
    households: int | None = None,
    settings: dict[str, Any] | None = None,
    log: Callable[[str], Any] = print,
    artifacts_root: str | None = None,
    timeout_s: float | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Launch the plan as one asset backfill on the instance (DAGSTER_HOME), with a daemon,
    and follow it to the end (TimeoutError after ``timeout_s``): one row per run (shards
    with their losses) and a summary."""
    from definitions import defs
    from microplex_assets.daemon import running_daemon
    from microplex_assets.release.pointer import artifacts_root as resolve_root
    from microplex_assets.runner import run_config

    graph = defs.resolve_asset_graph()
    artifacts = resolve_root(artifacts_root)
    with DagsterInstance.get() as instance:
        if plan.shards:
            require_national_release(instance, artifacts)
        targets = plan_targets(graph, instance, plan)
        rebuilt = sorted(t.asset_key.to_user_string() for t in targets if t.partition_key is None)
        for target, parents in missing_parents(graph, instance, targets).items():
            shown = ", ".join(parents[:5]) + (
                f" and {len(parents) - 5} more" if len(parents) > 5 else ""
            )
            log(
                f"warning: {target} has {len(parents)} parents neither built nor in this "
                f"backfill ({shown}): it will fail"
            )
        with running_daemon(instance, WORKSPACE, log=log):
            backfill_id = launch_backfill(
                instance,
                graph,
                targets,
                run_config(
                    households, artifacts_root=artifacts_root, settings=settings, product="local"
                ),
                title=f"local backfill: {len(plan.shards)} shards",
            )
            log(
                f"backfill {backfill_id}: {len(plan.shards)} shards, {len(plan.derived)} derived "
                f"cells; unpartitioned rebuilt: {rebuilt or 'none (fresh in storage)'}; "
                f"UI: Overview > Backfills > {backfill_id}"
            )
            summary = follow_backfill(instance, backfill_id, log=log, timeout_s=timeout_s)
    shards = {cell.label for cell in plan.shards}
    rows = []
    for run in summary.pop("runs"):
        stage = "shards" if run["cell"] in shards else (
            "unpartitioned" if run["cell"] == "unpartitioned" else "derived")  # fmt: skip
        row = {"stage": stage, **run, "success": run_succeeded(run)}
        if stage == "shards":
            row.update(shard_losses(artifacts, run["cell"].split("|")[1], run["run_id"]))
        rows.append(row)
    summary["cells"] = len(rows)
    return pd.DataFrame(rows), summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--states", default=None, help="comma-separated; default all 51")
    parser.add_argument("--households", type=int, default=None, help="per shard")
    parser.add_argument("--settings", default=None, help="other BuildSettings fields, JSON")
    parser.add_argument("--no-fan-in", action="store_true")
    parser.add_argument("--report", type=Path, default=None, help="write the rows as JSON")
    args = parser.parse_args(argv)
    states = args.states.split(",") if args.states else list(STATE_FIPS)
    plan = BackfillPlan.local(states, fan_in=not args.no_fan_in)
    settings = json.loads(args.settings) if args.settings else None
    table, summary = run_backfill(plan, args.households, settings)
    shown = table.drop(columns=["run_id", "error"], errors="ignore")
    print(shown.to_markdown(index=False, floatfmt=".4g"))
    print(json.dumps(summary, indent=2))
    if args.report:
        write_json_atomic(args.report, {"summary": summary, "cells": table.to_dict("records")})
    return 0 if summary["success"] else 1


if __name__ == "__main__":
    sys.exit(main())
