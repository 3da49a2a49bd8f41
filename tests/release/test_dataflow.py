"""The nine-stage data-flow snapshot a bundle carries in RUN.json."""

from dagster import AssetExecutionContext, DagsterInstance, asset, materialize

from microplex_assets.release.dataflow import run_snapshot, stage_snapshot

GROUPS = {"seed_frame": "seed", "entity_bundle": "entities", "published_dataset": "publication",
          "national_state_fallback": "publication", "microsim_benchmarks": "validation",
          "national_aggregates_report": "validation"}  # fmt: skip


def test_stage_snapshot_statuses():
    rows = stage_snapshot({"seed_frame", "microsim_benchmarks"}, set(), GROUPS, "published_dataset")
    status = {row["group"]: row["status"] for row in rows}
    assert len(rows) == 9 and status["run_profile"] == "not selected"
    assert status["seed"] == "completed" and status["entities"] == "skipped"
    assert status["publication"] == "completed" and status["validation"] == "deferred"
    assert rows[8]["not_done"] == ["national_aggregates_report"]
    failed = stage_snapshot(set(), {"entity_bundle"}, GROUPS, "published_dataset")
    assert failed[5]["status"] == "failed"


@asset(group_name="seed")
def seed_frame() -> int:
    return 1


@asset(group_name="publication")
def published_dataset(context: AssetExecutionContext, seed_frame: int) -> list:
    return run_snapshot(context, "published_dataset")


def test_run_snapshot_reads_the_run_events():
    with DagsterInstance.ephemeral() as instance:
        result = materialize([seed_frame, published_dataset], instance=instance)
    rows = {row["group"]: row for row in result.output_for_node("published_dataset")}
    assert rows["seed"]["status"] == "completed" and rows["seed"]["done"] == ["seed_frame"]
    assert rows["publication"]["status"] == "completed"
    assert rows["sources"]["status"] == "not selected"
