"""Scheduled rebuilds: the national dataset weekly, the local state shards monthly.

Both run the whole graph for a cell through one partitioned asset job, so a scheduled
run is exactly what `make build` or the UI's "Materialize all" does for that cell.
The monthly local schedule is defined but stopped: local shards are issue 6's work and
refuse to build until then (``PartitionNotBuiltError``); switch it on in the UI once
they build.
"""

from __future__ import annotations

from collections.abc import Iterator

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from microplex_assets.partitions import STATE_FIPS, Cell, product_geography_partitions

build_cell_job = define_asset_job(
    "build_cell",
    selection=AssetSelection.all(),
    partitions_def=product_geography_partitions,
    description="Every asset and check of one product x geography cell.",
)
NATIONAL = Cell("national", "US")
WEEKLY_NATIONAL_CRON = "0 3 * * 0"  # Sundays 03:00 UTC
MONTHLY_LOCAL_CRON = "0 4 1 * *"  # the 1st of each month, 04:00 UTC


@schedule(
    job=build_cell_job,
    cron_schedule=WEEKLY_NATIONAL_CRON,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Weekly rebuild of national|US (mp-national).",
)
def weekly_national_rebuild(context: ScheduleEvaluationContext) -> RunRequest:
    return RunRequest(
        run_key=f"national|US@{context.scheduled_execution_time:%Y-%m-%d}",
        partition_key=NATIONAL.key,
        tags={"microplex/cell": "national|US", "microplex/schedule": "weekly"},
    )


@schedule(
    job=build_cell_job,
    cron_schedule=MONTHLY_LOCAL_CRON,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Monthly rebuild of the 51 local|<state> shards (stopped until they build).",
)
def monthly_local_rebuild(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
    for state in STATE_FIPS:
        cell = Cell("local", state)
        yield RunRequest(
            run_key=f"local|{state}@{context.scheduled_execution_time:%Y-%m}",
            partition_key=cell.key,
            tags={"microplex/cell": f"local|{state}", "microplex/schedule": "monthly"},
        )


SCHEDULES = (weekly_national_rebuild, monthly_local_rebuild)
