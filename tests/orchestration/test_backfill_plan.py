"""What ``make backfill`` asks Dagster for, on the real graph (nothing is executed)."""

from __future__ import annotations

import pytest
from dagster import AssetKey, DagsterInstance, MultiPartitionKey

from definitions import defs
from microplex_assets.backfill import (
    BackfillPlan,
    missing_parents,
    plan_targets,
    require_national_release,
    run_succeeded,
)
from microplex_assets.lineage import NATIONAL_US_RELEASE
from microplex_assets.shard_table import shard_comparison, shard_losses

UNPARTITIONED = {"cps_source_frame", "tax_donor_frame", "asset_donor_frame",
                 "top_wealth_frame", "survey_source_frames", "calibration_targets"}  # fmt: skip


def cell(product: str, geography: str) -> str:
    return str(MultiPartitionKey({"product": product, "geography": geography}))


def test_two_shard_plan_targets_the_chain_the_derived_cells_and_missing_parents():
    graph = defs.resolve_asset_graph()
    plan = BackfillPlan.local(["DE", "VT"])
    with DagsterInstance.ephemeral() as instance:
        targets = plan_targets(graph, instance, plan)
    by_cell: dict[str | None, set[str]] = {}
    for target in targets:
        by_cell.setdefault(target.partition_key, set()).add(target.asset_key.to_user_string())
    assert set(by_cell) == {None, cell("local", "DE"), cell("local", "VT"),
                            cell("national", "DE"), cell("national", "VT"),
                            cell("local", "US")}  # fmt: skip
    assert by_cell[None] == UNPARTITIONED  # never materialized in this instance: built once
    chain = by_cell[cell("local", "DE")]
    assert {"run_profile", "calibrated_weights", "published_dataset", "current_release"} <= chain
    assert not chain & (UNPARTITIONED | {"national_state_fallback", "local_rich_fanin"})
    assert by_cell[cell("national", "VT")] == {"national_state_fallback"}
    assert by_cell[cell("local", "US")] == {"local_rich_fanin"}


def test_unknown_state_is_refused():
    with pytest.raises(ValueError, match="unknown state codes"):
        BackfillPlan.local(["DE", "XX"])


def test_shards_need_a_current_national_bundle(tmp_path):
    with DagsterInstance.ephemeral() as instance:
        with pytest.raises(SystemExit, match="make build"):
            require_national_release(instance, tmp_path)
        # A current pointer from before the asset existed is recorded once, then accepted.
        (tmp_path / "national" / "US" / "runs" / "r1").mkdir(parents=True)
        (tmp_path / "national" / "US" / "current").symlink_to("runs/r1")
        require_national_release(instance, tmp_path)
        assert instance.get_latest_materialization_event(NATIONAL_US_RELEASE) is not None
        assert AssetKey("national_us_release") == NATIONAL_US_RELEASE


def test_parents_outside_the_backfill_and_never_built_are_named_before_launch():
    graph = defs.resolve_asset_graph()
    with DagsterInstance.ephemeral() as instance:
        targets = plan_targets(graph, instance, BackfillPlan.local(["DE", "VT"]))
        missing = missing_parents(graph, instance, targets)
    fan_in = missing[f"local_rich_fanin[{cell('local', 'US')}]"]
    assert len(fan_in) == 49  # every shard but the two in the backfill
    assert f"published_dataset[{cell('local', 'WY')}]" in fan_in
    assert f"published_dataset[{cell('local', 'DE')}]" not in fan_in
    fallback = missing[f"national_state_fallback[{cell('national', 'DE')}]"]
    assert fallback == [f"published_dataset[{cell('national', 'US')}]"]
    # The shards' own chain is complete within the backfill (the unpartitioned parents too).
    assert not any(key.endswith(f"[{cell('local', 'DE')}]") for key in missing)


def test_a_national_bundle_recorded_as_released_satisfies_the_fallbacks(tmp_path):
    """national|US built by ``make build`` outside this instance: once its current bundle is
    recorded as ``national_us_release``, the fallbacks' parent is not reported missing."""
    graph = defs.resolve_asset_graph()
    fallback = f"national_state_fallback[{cell('national', 'DE')}]"
    with DagsterInstance.ephemeral() as instance:
        targets = plan_targets(graph, instance, BackfillPlan.local(["DE", "VT"]))
        assert fallback in missing_parents(graph, instance, targets)
        (tmp_path / "national" / "US" / "runs" / "r1").mkdir(parents=True)
        (tmp_path / "national" / "US" / "current").symlink_to("runs/r1")
        require_national_release(instance, tmp_path)
        missing = missing_parents(graph, instance, targets)
    assert fallback not in missing
    assert len(missing[f"local_rich_fanin[{cell('local', 'US')}]"]) == 49  # still true


def test_a_run_that_succeeded_without_a_step_is_not_a_success():
    """dagster#21418: concurrent Dask runs "succeeded" having run nothing."""
    assert run_succeeded({"status": "SUCCESS", "assets": 19, "steps": 33})
    assert not run_succeeded({"status": "SUCCESS", "assets": 19, "steps": 0})
    assert not run_succeeded({"status": "FAILURE", "assets": 19, "steps": 3})
    assert run_succeeded({"status": "SUCCESS", "assets": 0, "steps": 0})  # checks-only run


def test_shard_losses_come_only_from_the_runs_own_bundle(tmp_path):
    bundle = tmp_path / "local" / "DE" / "runs" / "20261204T050000Z-abcd1234"
    bundle.mkdir(parents=True)
    (bundle / "loss_record.json").write_text(
        '{"losses": {"candidate": {"train": 0.01}, "national_fallback": {"train": 0.04}}}'
    )
    (bundle / "manifest.json").write_text('{"record_counts": {"household": 900}}')
    for name in ("loss_record.json", "manifest.json"):
        (tmp_path / "local" / "DE" / name).symlink_to(bundle / name)
    mine = shard_losses(tmp_path, "DE", "abcd1234-0000")
    assert mine["train_loss"] == 0.01 and mine["fallback_train_loss"] == 0.04
    assert mine["households"] == 900
    assert shard_losses(tmp_path, "DE", "ffff0000-0000") == {}  # an earlier run's bundle
    assert shard_losses(tmp_path, "VT", "abcd1234-0000") == {}  # none at all


def test_a_shard_split_over_runs_is_one_comparison_row():
    """A fresh instance splits a shard's chain (run_profile alone first): one row per shard,
    successful only when every run was, wall times summed, losses from the publishing run."""
    import pandas as pd

    nan = float("nan")
    runs = pd.DataFrame(
        [
            {"stage": "shards", "cell": "local|DE", "success": True, "wall_s": 10.0,
             "households": nan, "train_loss": nan, "fallback_train_loss": nan,
             "held_out_loss": nan, "fallback_held_out_loss": nan},
            {"stage": "shards", "cell": "local|DE", "success": True, "wall_s": 90.0,
             "households": 200.0, "train_loss": 0.001, "fallback_train_loss": 0.05,
             "held_out_loss": 0.1, "fallback_held_out_loss": 0.2},
            {"stage": "shards", "cell": "local|VT", "success": False, "wall_s": 5.0,
             "households": nan, "train_loss": nan, "fallback_train_loss": nan,
             "held_out_loss": nan, "fallback_held_out_loss": nan},
            {"stage": "derived", "cell": "national|DE", "success": True, "wall_s": 30.0},
        ]
    )  # fmt: skip
    table = shard_comparison(runs).set_index("state")
    assert list(table.index) == ["DE", "VT"]
    assert table.loc["DE", "wall_s"] == 100.0 and table.loc["DE", "households"] == 200.0
    assert bool(table.loc["DE", "success"]) and bool(table.loc["DE", "beats_fallback_held_in"])
    assert not table.loc["VT", "success"] and not table.loc["VT", "beats_fallback_held_in"]
