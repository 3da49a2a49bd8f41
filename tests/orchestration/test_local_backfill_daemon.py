"""Two real local shards through ``make backfill``'s path: one Dagster asset backfill on a
fresh temporary instance, carried out by a real ``dagster-daemon`` (backfill daemon + run
queue), against the session's small national|US build.

The instance is fresh, so the unpartitioned parents (source frames, target registry) join
the backfill, and Dagster then runs each shard's ``run_profile`` (the one chain asset that
needs none of them) in a run of its own before the rest of the chain: the split that once
failed every shard at publication (its ``run_profile.json`` was looked for in the wrong
run's work folder). The derived cells are left out: they add runs, not paths.
"""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import DagsterInstance, DagsterRunStatus

from microplex_assets.backfill import BackfillPlan, run_backfill
from microplex_assets.partitions import Cell, product_geography_partitions
from microplex_assets.runner import gate_table
from microplex_assets.shard_table import shard_comparison

pytestmark = pytest.mark.slow
STATES = ("DE", "VT")
SETTINGS = {"synthetic_donor_records": 5_000}


@pytest.fixture(scope="module")
def shard_backfill(national_build, tmp_path_factory):
    _, national_artifacts = national_build
    # Its own artifacts root, reading the session's national|US through a link, so these
    # shards never replace the current bundles other tests build for the same states.
    artifacts = tmp_path_factory.mktemp("backfill_artifacts")
    (artifacts / "national").mkdir()
    (artifacts / "national" / "US").symlink_to(national_artifacts / "national" / "US")
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\nrun_queue:\n  max_concurrent_runs: 2\n"
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("DAGSTER_HOME", str(home))
    lines: list[str] = []
    try:
        table, summary = run_backfill(
            BackfillPlan([Cell("local", state) for state in STATES]),
            households=150,
            settings=SETTINGS,
            log=lines.append,
            artifacts_root=str(artifacts),
            timeout_s=1_800,
        )
        with DagsterInstance.get() as instance:
            yield {"table": table, "summary": summary, "lines": lines, "instance": instance,
                   "artifacts": artifacts}  # fmt: skip
    finally:
        mp.undo()


def test_every_run_of_both_shards_succeeds(shard_backfill):
    table, summary = shard_backfill["table"], shard_backfill["summary"]
    assert summary["success"], (summary, table.to_dict("records"), shard_backfill["lines"])
    assert summary["status"] == "COMPLETED_SUCCESS"
    assert (table["status"] == DagsterRunStatus.SUCCESS.value).all()
    assert set(table["cell"]) == {"unpartitioned", *(f"local|{s}" for s in STATES)}
    assert any("started dagster-daemon" in line for line in shard_backfill["lines"])


def test_the_chain_is_materialized_for_both_partitions(shard_backfill):
    from definitions import defs

    graph = defs.resolve_asset_graph()
    instance = shard_backfill["instance"]
    chain = [
        key
        for key in graph.get_all_asset_keys()
        if graph.get(key).is_executable
        and graph.get(key).partitions_def == product_geography_partitions
    ]
    assert len(chain) > 10
    for key in chain:
        materialized = set(instance.get_materialized_partitions(key))
        for state in STATES:
            assert str(Cell("local", state).key) in materialized, (key, state)
    for state in STATES:
        assert (shard_backfill["artifacts"] / "local" / state / "current").is_symlink()


def test_the_gate_checks_ran_in_the_shard_runs(shard_backfill):
    instance, table = shard_backfill["instance"], shard_backfill["table"]
    for state in STATES:
        runs = table[table["cell"] == f"local|{state}"]["run_id"]
        gates = pd.concat([gate_table(instance, run_id) for run_id in runs], ignore_index=True)
        assert len(gates) >= 10, state
        assert not (gates["severity"] == "did not run").any(), gates.to_dict("records")
        judged = gates[gates["passed"].notna()]
        assert judged[judged["severity"] == "ERROR"]["passed"].all(), state
        beats = gates.set_index("check").loc["beats_national_fallback"]
        assert beats["passed"] and beats["severity"] == "ERROR", state


def test_the_publishing_run_carries_each_shards_households_and_losses(shard_backfill):
    """Each shard's chain is split over runs here (``run_profile`` alone first); only the
    run whose bundle is current carries the losses, and the comparison has one row each."""
    table = shard_backfill["table"]
    shards = table[table["stage"] == "shards"]
    published = shards[shards["households"].notna()]
    assert sorted(published["cell"]) == [f"local|{s}" for s in STATES], shards.to_dict("records")
    assert (published["households"] > 0).all()
    assert (published["train_loss"] < published["fallback_train_loss"]).all()
    comparison = shard_comparison(table)
    assert list(comparison["state"]) == list(STATES)
    assert comparison["beats_fallback_held_in"].all()
    own_run = published.set_index(published["cell"].str.split("|").str[1])["wall_s"]
    assert (comparison.set_index("state")["wall_s"] >= own_run.reindex(list(STATES))).all()
