"""The scheduled rebuilds: which cells they request, that everything ships stopped, and
that the derived cells follow their upstream cells (automation condition), not a clock."""

from __future__ import annotations

from datetime import UTC, datetime

from dagster import (
    AssetKey,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    MultiPartitionKey,
    build_schedule_context,
)

from definitions import defs
from microplex_assets.geography.states import STATE_FIPS
from microplex_assets.schedules import (
    derived_cells_when_ready,
    monthly_local_rebuild,
    weekly_national_rebuild,
)


def test_schedules_and_sensor_are_in_the_code_location_and_ship_stopped():
    assert {s.name for s in defs.schedules} == {"weekly_national_rebuild", "monthly_local_rebuild"}
    assert {s.name for s in defs.sensors} == {"derived_cells_when_ready"}
    job = defs.resolve_job_def("build_cell")
    assert job.partitions_def is not None
    assert weekly_national_rebuild.cron_schedule == "0 3 * * 0"
    assert monthly_local_rebuild.cron_schedule == "0 4 1 * *"
    for schedule in (weekly_national_rebuild, monthly_local_rebuild):
        assert schedule.default_status == DefaultScheduleStatus.STOPPED
    assert derived_cells_when_ready.default_status == DefaultSensorStatus.STOPPED


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


def test_record_job_leaves_out_the_derived_assets():
    selected = {
        key.to_user_string()
        for key in defs.resolve_job_def("build_cell").asset_layer.executable_asset_keys
    }
    assert "target_matrix" in selected and "published_dataset" in selected
    assert not {"national_state_fallback", "local_rich_fanin"} & selected


def test_derived_cells_follow_their_upstream_cells_not_a_clock():
    graph = defs.resolve_asset_graph()
    for name in ("national_state_fallback", "local_rich_fanin"):
        condition = graph.get(AssetKey(name)).automation_condition
        assert condition is not None and condition.label == "when its upstream cells are done"
        text = str(condition)
        assert "any_deps_in_progress" in text and "any_deps_missing" in text
        assert "cron" not in text.lower()
    assert derived_cells_when_ready.asset_selection.resolve(graph) == {
        AssetKey("national_state_fallback"),
        AssetKey("local_rich_fanin"),
    }
