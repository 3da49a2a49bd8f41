"""Materialize the whole asset graph for one partition cell and summarise the run.

Used by ``make build``, the build benchmark and the end-to-end test, so all three run
exactly what the Dagster UI would run (same definitions, same instance, same events).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from dagster import AssetKey, DagsterEventType, DagsterInstance, MultiPartitionKey

from microplex_assets.calibration.loss import METHOD_LOSS_KEYS
from microplex_assets.partitions import Cell, product_geography_partitions
from microplex_assets.release.disk import require_free_space
from microplex_assets.release.pointer import artifacts_root as artifacts_root_path
from microplex_assets.stages import STAGES

STEP_EVENTS = {
    DagsterEventType.STEP_START: "start",
    DagsterEventType.STEP_SUCCESS: "end",
    DagsterEventType.STEP_FAILURE: "end",
}


@dataclass
class BuildSummary:
    """What a user wants to see after a build: where, how big, how long, which gates passed."""

    run_id: str
    success: bool
    partition: str
    bundle_dir: str | None
    record_counts: dict[str, int]
    stage_seconds: pd.DataFrame
    stage_status: pd.DataFrame
    gates: pd.DataFrame
    aggregates: pd.DataFrame | None
    losses: pd.DataFrame | None = None
    target_counts: dict[str, int] = field(default_factory=dict)
    donor_integration: pd.DataFrame | None = None
    derived_scores: pd.DataFrame | None = None  # derived cells: losses by method and level
    benchmarks: dict[str, Any] | None = None  # the reform suite's report (national|US)
    failures: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [
            f"run {self.run_id}: {'SUCCESS' if self.success else 'FAILED'} ({self.partition})",
            f"bundle: {self.bundle_dir or '(not published)'}",
            f"records: {json.dumps(self.record_counts)}",
            "",
            "data flow:",
            self.stage_status.to_markdown(index=False),
            "",
            "stage timings:",
            self.stage_seconds.to_markdown(index=False, floatfmt=".1f"),
            "",
            "gates:",
            self.gates.to_markdown(index=False) if len(self.gates) else "(no checks ran)",
        ]
        if self.losses is not None:
            lines += ["", f"target loss on the same kept targets {json.dumps(self.target_counts)}:"]
            lines.append(self.losses.to_markdown(index=False, floatfmt=".4g"))
        if self.donor_integration is not None:
            lines += ["", "before and after donor integration (each calibrated):"]
            lines.append(self.donor_integration.to_markdown(index=False, floatfmt=".4g"))
        if self.derived_scores is not None:
            lines += ["", "derived cell scores (target loss by method and level):"]
            lines.append(self.derived_scores.to_markdown(index=False, floatfmt=".4g"))
        if self.benchmarks and "markdown" in self.benchmarks:
            lines += [
                "",
                "microsimulation benchmark suite (candidate vs eCPS method, same records):",
            ]
            lines.append(self.benchmarks["markdown"])
            lines.append(
                "suite gates: " + "; ".join(g.summary for g in self.benchmarks["gates"].values())
            )
        if self.aggregates is not None:
            lines += ["", "national aggregates (policyengine-us):"]
            lines.append(self.aggregates.to_markdown(index=False, floatfmt=",.1f"))
        if self.failures:
            lines += ["", "failures:", *self.failures]
        return "\n".join(lines)


def run_config(
    households: int | None = None,
    year: int | None = None,
    seed: int | None = None,
    artifacts_root: str | None = None,
    settings: dict[str, Any] | None = None,
    product: str = "national",
) -> dict[str, Any]:
    """Resource config that overrides the resources' defaults (only what was given);
    ``households`` sizes the cell's product (national sample or local shard), ``settings``
    sets any other BuildSettings field."""
    settings = dict(settings or {})
    if households is not None:
        key = "local_households" if product == "local" else "national_households"
        settings[key] = int(households)
    if year is not None:
        settings["year"] = int(year)
    if seed is not None:
        settings["seed"] = int(seed)
    resources: dict[str, Any] = {"build_settings": {"config": settings}}
    if artifacts_root is not None:
        resources["artifact_store"] = {"config": {"root": str(artifacts_root)}}
    # INFO shows each stage's progress lines; Dagster's DEBUG events would bury them.
    return {"resources": resources, "loggers": {"console": {"config": {"log_level": "INFO"}}}}


def step_windows(instance: DagsterInstance, run_id: str) -> list[dict[str, Any]]:
    """Start and end timestamps of each finished step (asset or check), in start order."""
    windows: dict[str, dict[str, Any]] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.event_type not in STEP_EVENTS or not event.step_key:
            continue
        step = windows.setdefault(event.step_key, {"step": event.step_key})
        step[STEP_EVENTS[event.event_type]] = entry.timestamp
    done = [w for w in windows.values() if "start" in w and "end" in w]
    return sorted(done, key=lambda w: w["start"])


def step_timings(instance: DagsterInstance, run_id: str) -> pd.DataFrame:
    """Wall seconds per step from the run's event log."""
    rows = [
        {"step": w["step"], "seconds": w["end"] - w["start"]}
        for w in step_windows(instance, run_id)
    ]
    return pd.DataFrame(rows, columns=["step", "seconds"])


def stage_status_table(
    result: Any, asset_groups: dict[str, str], selected: set[str] | None = None
) -> pd.DataFrame:
    """The nine stages with completed / failed / skipped / not selected, from the run's
    own events. Only the run's ``selected`` assets (None: all) are judged: a derived cell
    runs three assets and a backfill's shard reads the unpartitioned ones from storage, so
    a stage with none of its assets in the run is "not selected", not "skipped".

    A stage is completed when every one of its assets materialized or its step
    succeeded without output (a derived-cell asset has nothing to do in a record
    cell), failed when one of its steps failed, and skipped when upstream failure or
    a blocking check kept it from running.
    """
    materialized = {
        event.asset_key.to_user_string()
        for event in result.all_events
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION
    }
    failed_steps = {
        event.step_key
        for event in result.all_events
        if event.event_type == DagsterEventType.STEP_FAILURE
    }
    done = materialized | {
        event.step_key
        for event in result.all_events
        if event.event_type == DagsterEventType.STEP_SUCCESS
    }
    rows = []
    for contract in STAGES:
        assets = sorted(
            a
            for a, group in asset_groups.items()
            if group == contract.group and (selected is None or a in selected)
        )
        if not assets:
            status = "not selected"
        elif any(a in failed_steps for a in assets):
            status = "failed"
        elif assets and all(a in done for a in assets) and any(a in materialized for a in assets):
            status = "completed"
        else:
            status = "skipped"
        rows.append(
            {"stage": contract.number, "group": contract.group, "status": status,
             "assets": ", ".join(assets)}
        )  # fmt: skip
    return pd.DataFrame(rows)


def gate_table(instance: DagsterInstance, run_id: str) -> pd.DataFrame:
    """One row per asset check evaluation: asset, check, passed, severity, key numbers; a
    check planned but given no result (a gate with nothing to judge in this cell: the UI's
    "Skipped") is listed as not applicable, never as passed."""
    rows, evaluated = [], set()
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data
        summary = evaluation.metadata.get("summary")
        shown = summary.value if summary is not None else ""
        evaluated.add((evaluation.asset_key, evaluation.check_name))
        rows.append(
            {
                "asset": evaluation.asset_key.to_user_string(),
                "check": evaluation.check_name,
                "passed": evaluation.passed,
                "severity": evaluation.severity.value,
                "summary": shown,
            }
        )
    succeeded = {
        entry.dagster_event.step_key
        for entry in instance.all_logs(run_id, of_type=DagsterEventType.STEP_SUCCESS)
    }
    planned = DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
    for entry in instance.all_logs(run_id, of_type=planned):
        plan = entry.dagster_event.event_specific_data
        if (plan.asset_key, plan.check_name) in evaluated:
            continue
        # gate_checks names a gate's step <asset>__<check>: it ran and found nothing to judge
        ran = f"{plan.asset_key.path[-1]}__{plan.check_name}" in succeeded
        rows.append(
            {
                "asset": plan.asset_key.to_user_string(),
                "check": plan.check_name,
                "passed": None,
                "severity": "not applicable" if ran else "did not run",
                "summary": "not applicable to this cell: no result emitted (UI: Skipped)"
                if ran
                else "check did not run (an upstream step failed or was skipped)",
            }
        )
    return pd.DataFrame(rows, columns=["asset", "check", "passed", "severity", "summary"])


def build_cell(
    product: str = "national",
    geography: str = "US",
    households: int | None = None,
    year: int | None = None,
    seed: int | None = None,
    instance: DagsterInstance | None = None,
    artifacts_root: str | None = None,
    settings: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    reuse_unpartitioned: bool = False,
) -> BuildSummary:
    """Materialize every asset (and check) for one product x geography cell.

    ``reuse_unpartitioned`` loads the unpartitioned assets (source frames, target
    registry) from the instance's storage instead of rebuilding them: a backfill builds
    them once and every shard reads them."""
    from definitions import defs

    if artifacts_root or os.environ.get("DAGSTER_HOME"):
        root = artifacts_root_path(artifacts_root)
        require_free_space(root, root / product / geography)
    instance = instance or DagsterInstance.get()
    graph = defs.resolve_asset_graph()
    asset_groups = {
        key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()
    }
    job = defs.resolve_implicit_global_asset_job_def()
    partition = MultiPartitionKey({"product": product, "geography": geography})
    cell = Cell(product, geography)
    selection = cell_selection(graph, cell, reuse_unpartitioned)
    if reuse_unpartitioned:
        require_stored_unpartitioned(instance, graph)
    result = job.execute_in_process(
        partition_key=partition,
        asset_selection=selection,
        instance=instance,
        run_config=run_config(households, year, seed, artifacts_root, settings, product),
        raise_on_error=False,
        tags=tags,
    )
    failures = [
        f"{event.step_key}: {error_text(event.event_specific_data.error)}"
        for event in result.all_events
        if event.event_type == DagsterEventType.STEP_FAILURE
    ]
    published = _output(result, "published_dataset")
    aggregates = _output(result, "national_aggregates_report")
    derived = _output(result, "national_state_fallback") or _output(result, "local_rich_fanin")
    bundle = published or derived
    return BuildSummary(
        run_id=result.run_id,
        success=result.success,
        partition=f"{product}|{geography}",
        bundle_dir=bundle["bundle_dir"] if bundle else None,
        record_counts=bundle["manifest"]["record_counts"] if bundle else {},
        stage_seconds=step_timings(instance, result.run_id),
        stage_status=stage_status_table(
            result, asset_groups, {key.to_user_string() for key in selection}
        ),
        gates=gate_table(instance, result.run_id),
        aggregates=aggregates,
        losses=loss_table(published["loss_record"]) if published else None,
        target_counts=published["loss_record"]["target_counts"] if published else {},
        donor_integration=donor_table(published["loss_record"]) if published else None,
        derived_scores=derived["scores"] if derived else None,
        benchmarks=_output(result, "microsim_benchmarks"),
        failures=failures,
    )


def cell_selection(graph: Any, cell: Cell, reuse_unpartitioned: bool) -> list[AssetKey]:
    """The assets a cell's run materializes. A derived cell runs its derived asset (on its
    own sub-grid; a run holds one partitioning) and, for the fan-in, the registry it scores
    on; a record cell runs every executable asset on the full grid and the unpartitioned
    ones, which ``reuse_unpartitioned`` reads from storage instead of rebuilding."""
    if cell.derived:
        keys = (
            [AssetKey("national_state_fallback")]
            if cell.product == "national"
            else [AssetKey("calibration_targets"), AssetKey("local_rich_fanin")]
        )
    else:
        keys = [
            key
            for key in graph.get_all_asset_keys()
            if graph.get(key).is_executable
            and graph.get(key).partitions_def in (None, product_geography_partitions)
        ]
    if reuse_unpartitioned:
        keys = [key for key in keys if graph.get(key).partitions_def is not None]
    return keys


def require_stored_unpartitioned(instance: DagsterInstance, graph: Any) -> None:
    """A run that reuses the unpartitioned assets needs each one stored in the instance;
    refuse up front, naming the missing ones (their year and seed are checked against the
    run profile where the run first reads them: source_plan/reuse.py)."""
    missing = sorted(
        key.to_user_string()
        for key in graph.get_all_asset_keys()
        if graph.get(key).partitions_def is None
        and graph.get(key).is_executable
        and instance.get_latest_materialization_event(key) is None
    )
    if missing:
        raise ValueError(
            f"reuse_unpartitioned: {missing} never materialized in this Dagster instance "
            f"({instance.root_directory if instance.is_persistent else 'ephemeral'}); "
            "expected a first build without reuse to store them"
        )


def loss_table(record: dict[str, Any]) -> pd.DataFrame:
    """Train, validation, test, held-out and overall loss per method, from a loss record."""
    return pd.DataFrame(
        [{"method": method, **losses} for method, losses in record["losses"].items()],
        columns=["method", *METHOD_LOSS_KEYS],
    )


def donor_table(record: dict[str, Any]) -> pd.DataFrame | None:
    """Losses and top-tail aggregates before/after donor integration, from a loss record."""
    comparison = record.get("donor_integration")
    if not comparison:
        return None
    columns = ["train_loss", "held_out_loss", "all_kept_loss", "long_term_capital_gains_bn",
               "dividends_bn", "top_1pct_agi_share"]  # fmt: skip
    rows = []
    for label in ("before_donor_integration", "after_donor_integration"):
        scores = comparison[label]
        rows.append({"population": label, **{c: scores.get(c) for c in columns}})
    return pd.DataFrame(rows)


def error_text(error: Any) -> str:
    """The error and its causes, innermost last: Dagster wraps the user's exception."""
    parts = []
    while error is not None:
        parts.append(error.message.strip())
        error = error.cause
    return " <- caused by: ".join(parts)


def _output(result: Any, asset_name: str) -> Any:
    try:
        return result.output_for_node(asset_name)
    except Exception:  # the step failed or was skipped by a blocking check
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--product", default=os.environ.get("PRODUCT") or "national")
    parser.add_argument("--geography", default=os.environ.get("GEOGRAPHY") or "US")
    parser.add_argument("--households", type=int, default=os.environ.get("HOUSEHOLDS") or None)
    parser.add_argument("--year", type=int, default=os.environ.get("YEAR") or None)
    parser.add_argument(
        "--settings",
        default=os.environ.get("SETTINGS") or None,
        help='other BuildSettings fields as JSON, e.g. \'{"puf_path": "puf_2015.csv"}\'',
    )
    args = parser.parse_args(argv)
    settings = json.loads(args.settings) if args.settings else None
    summary = build_cell(
        args.product, args.geography, args.households, args.year, settings=settings
    )
    print(summary.render())
    return 0 if summary.success else 1


if __name__ == "__main__":
    sys.exit(main())
