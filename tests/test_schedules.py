"""The scheduled rebuilds: which cells they request, when, and whether they start on."""

from __future__ import annotations

from datetime import UTC, datetime

from dagster import DefaultScheduleStatus, MultiPartitionKey, build_schedule_context

from definitions import defs
from microplex_assets.geography.states import STATE_FIPS
from microplex_assets.schedules import (
    monthly_local_fan_in,
    monthly_local_rebuild,
    weekly_national_rebuild,
)


def test_schedules_are_in_the_code_location():
    names = {s.name for s in defs.schedules}
    assert names == {"weekly_national_rebuild", "monthly_local_rebuild", "monthly_local_fan_in"}
    job = defs.resolve_job_def("build_cell")
    assert job.partitions_def is not None
    assert weekly_national_rebuild.cron_schedule == "0 3 * * 0"
    assert monthly_local_rebuild.cron_schedule == "0 4 1 * *"
    assert monthly_local_fan_in.cron_schedule == "0 10 1 * *"  # after the shards' 04:00
    for schedule in (weekly_national_rebuild, monthly_local_rebuild, monthly_local_fan_in):
        assert schedule.default_status == DefaultScheduleStatus.RUNNING


def test_weekly_schedule_requests_national_us():
    when = datetime(2026, 11, 29, 3, tzinfo=UTC)
    request = weekly_national_rebuild(build_schedule_context(scheduled_execution_time=when))
    assert request.partition_key == MultiPartitionKey({"product": "national", "geography": "US"})
    assert request.run_key == "national|US@2026-11-29"


def test_monthly_schedule_requests_every_state_shard_once():
    when = datetime(2026, 12, 1, 4, tzinfo=UTC)
    requests = list(monthly_local_rebuild(build_schedule_context(scheduled_execution_time=when)))
    keys = {r.partition_key for r in requests}
    assert len(requests) == len(keys) == len(STATE_FIPS) == 51
    assert MultiPartitionKey({"product": "local", "geography": "TX"}) in keys
    assert all(r.run_key.endswith("@2026-12") for r in requests)


def test_monthly_fan_in_requests_every_derived_cell_through_the_small_job():
    when = datetime(2026, 12, 1, 10, tzinfo=UTC)
    requests = list(monthly_local_fan_in(build_schedule_context(scheduled_execution_time=when)))
    keys = [r.partition_key for r in requests]
    assert len(keys) == len(set(keys)) == 52
    assert keys[-1] == MultiPartitionKey({"product": "local", "geography": "US"})
    assert MultiPartitionKey({"product": "national", "geography": "CA"}) in keys
    job = defs.resolve_job_def("build_derived_cell")
    selected = {key.to_user_string() for key in job.asset_layer.executable_asset_keys}
    assert {"national_state_fallback", "local_rich_fanin"} <= selected
    assert "target_matrix" not in selected
