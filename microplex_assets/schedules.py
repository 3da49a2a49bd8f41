"""Scheduled rebuilds (shipped STOPPED): national|US weekly, the 51 local shards monthly;
the derived cells by automation condition once their upstream cells are done.

Record cells run the whole record chain through one partitioned asset job, so a scheduled
run is what `make build` or the UI's "Materialize" does for that cell. The derived cells
(each ``national|<state>`` fallback and the ``local|US`` fan-in) are not on a clock: their
automation condition (``publication.derived_assets.when_upstream_cells_done``) requests
them when the ``published_dataset`` cells they map to have been updated and none is
missing or still queued or running, and the ``derived_cells_when_ready`` sensor evaluates
it. Everything ships stopped, so `make ui` on a laptop launches nothing unasked: start
them in the UI (Automation) or with ``dagster schedule start`` / ``dagster sensor start``.
"""

from __future__ import annotations

from collections.abc import Iterator

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from microplex_assets.geography.states import STATE_FIPS
from microplex_assets.partitions import Cell, product_geography_partitions

DERIVED_ASSETS = ("national_state_fallback", "local_rich_fanin")

build_cell_job = define_asset_job(
    "build_cell",
    # The record chain and everything on the full grid; the derived assets have sub-grids.
    selection=AssetSelection.all() - AssetSelection.assets(*DERIVED_ASSETS),
    partitions_def=product_geography_partitions,
    description="Every asset and check of one record cell (national|US or local|<state>).",
)
NATIONAL = Cell("national", "US")
WEEKLY_NATIONAL_CRON = "0 3 * * 0"  # Sundays 03:00 UTC
MONTHLY_LOCAL_CRON = "0 4 1 * *"  # the 1st of each month, 04:00 UTC


@schedule(
    job=build_cell_job,
    cron_schedule=WEEKLY_NATIONAL_CRON,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
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
    description="Monthly rebuild of the 51 local|<state> shards (the fan-in follows them "
    "through derived_cells_when_ready).",
)
def monthly_local_rebuild(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
    for state in STATE_FIPS:
        cell = Cell("local", state)
        yield RunRequest(
            run_key=f"local|{state}@{context.scheduled_execution_time:%Y-%m}",
            partition_key=cell.key,
            tags={"microplex/cell": f"local|{state}", "microplex/schedule": "monthly"},
        )


derived_cells_when_ready = AutomationConditionSensorDefinition(
    "derived_cells_when_ready",
    target=AssetSelection.assets(*DERIVED_ASSETS),
    default_status=DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=60,
    description="Requests each national|<state> fallback after national|US is republished "
    "and the local|US fan-in after its shards are done (their automation conditions).",
)

SCHEDULES = (weekly_national_rebuild, monthly_local_rebuild)
SENSORS = (derived_cells_when_ready,)
JOBS = (build_cell_job,)
