"""Scheduled rebuilds: the national dataset weekly, the local state shards monthly.

Record cells run the whole graph through one partitioned asset job, so a scheduled run
is exactly what `make build` or the UI's "Materialize all" does for that cell. The
derived cells (each ``national|<state>`` fallback and the ``local|US`` fan-in) read the
shards' published bundles, so they have their own small job and run six hours after the
shards are queued (51 shards take about half an hour two at a time).
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

from microplex_assets.geography.states import STATE_FIPS
from microplex_assets.partitions import Cell, product_geography_partitions

build_cell_job = define_asset_job(
    "build_cell",
    selection=AssetSelection.all(),
    partitions_def=product_geography_partitions,
    description="Every asset and check of one product x geography cell.",
)
derived_cell_job = define_asset_job(
    "build_derived_cell",
    selection=AssetSelection.assets(
        "run_profile",
        "calibration_targets",
        "national_state_fallback",
        "local_rich_fanin",
    ),
    partitions_def=product_geography_partitions,
    description="A derived cell (national|<state> fallback or the local|US fan-in) from the "
    "published bundles it reads.",
)
NATIONAL = Cell("national", "US")
WEEKLY_NATIONAL_CRON = "0 3 * * 0"  # Sundays 03:00 UTC
MONTHLY_LOCAL_CRON = "0 4 1 * *"  # the 1st of each month, 04:00 UTC
MONTHLY_DERIVED_CRON = "0 10 1 * *"  # the same day, 10:00 UTC, after the shards


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
    default_status=DefaultScheduleStatus.RUNNING,
    description="Monthly rebuild of the 51 local|<state> shards.",
)
def monthly_local_rebuild(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
    for state in STATE_FIPS:
        cell = Cell("local", state)
        yield RunRequest(
            run_key=f"local|{state}@{context.scheduled_execution_time:%Y-%m}",
            partition_key=cell.key,
            tags={"microplex/cell": f"local|{state}", "microplex/schedule": "monthly"},
        )


@schedule(
    job=derived_cell_job,
    cron_schedule=MONTHLY_DERIVED_CRON,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Monthly rebuild of the 51 national|<state> fallbacks and the local|US fan-in, "
    "after the shards.",
)
def monthly_local_fan_in(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
    month = f"{context.scheduled_execution_time:%Y-%m}"
    for cell in [*(Cell("national", state) for state in STATE_FIPS), Cell("local", "US")]:
        yield RunRequest(
            run_key=f"{cell.label}@{month}",
            partition_key=cell.key,
            tags={"microplex/cell": cell.label, "microplex/schedule": "monthly"},
        )


SCHEDULES = (weekly_national_rebuild, monthly_local_rebuild, monthly_local_fan_in)
JOBS = (build_cell_job, derived_cell_job)
