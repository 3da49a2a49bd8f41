"""The runner's data-flow table, from a run's events (no Dagster run needed)."""

from __future__ import annotations

from types import SimpleNamespace

from dagster import AssetKey, DagsterEventType

from microplex_assets.runner import stage_status_table
from microplex_assets.stages import STAGES

GROUPS = {
    "run_profile": "run_profile",
    "cps_source_frame": "sources",
    "calibration_targets": "calibration",
    "target_matrix": "calibration",
    "published_dataset": "publication",
    "local_rich_fanin": "publication",
}


def event(kind: DagsterEventType, asset: str) -> SimpleNamespace:
    return SimpleNamespace(event_type=kind, asset_key=AssetKey(asset), step_key=asset)


def materialized(asset: str) -> list[SimpleNamespace]:
    return [
        event(DagsterEventType.ASSET_MATERIALIZATION, asset),
        event(DagsterEventType.STEP_SUCCESS, asset),
    ]


def statuses(events: list[SimpleNamespace], selected: set[str] | None) -> dict[str, str]:
    table = stage_status_table(SimpleNamespace(all_events=events), GROUPS, selected)
    assert table["stage"].tolist() == [s.number for s in STAGES]
    return dict(zip(table["group"], table["status"], strict=True))


def test_a_derived_cell_judges_only_its_selected_assets():
    selected = {"run_profile", "calibration_targets", "local_rich_fanin"}
    events = [*materialized("run_profile"), *materialized("calibration_targets"),
              *materialized("local_rich_fanin")]  # fmt: skip
    status = statuses(events, selected)
    assert status["run_profile"] == status["calibration"] == "completed"
    assert status["publication"] == "completed"
    assert status["sources"] == "not selected"
    assert status["entities"] == "not selected"


def test_a_record_cell_whose_derived_asset_yields_nothing_still_completes():
    events = [*materialized("published_dataset"),
              event(DagsterEventType.STEP_SUCCESS, "local_rich_fanin")]  # fmt: skip
    assert statuses(events, None)["publication"] == "completed"


def test_failure_and_skip_are_told_apart():
    events = [*materialized("calibration_targets"),
              event(DagsterEventType.STEP_FAILURE, "target_matrix")]  # fmt: skip
    status = statuses(events, None)
    assert status["calibration"] == "failed"
    assert status["publication"] == "skipped"  # never ran: upstream failed
