"""``make backfill``'s machinery on a stand-in graph: a real asset backfill through a real
``dagster-daemon`` (backfill daemon + run queue) on a temporary instance. Two shards, the
unpartitioned parent built once before them, the fan-in after both."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, Definitions, asset

from microplex_assets.backfill import (
    Target,
    follow_backfill,
    launch_backfill,
    stale_unpartitioned,
)
from microplex_assets.daemon import running_daemon
from tests.orchestration import standin_defs

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\nrun_queue:\n  max_concurrent_runs: 2\n"
    )
    workspace = home / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_file:\n"
        f"      relative_path: {HERE / 'standin_defs.py'}\n"
        f"      working_directory: {REPO}\n"
    )
    log_path = home / "materializations.log"
    mp = pytest.MonkeyPatch()
    mp.setenv("STANDIN_LOG", str(log_path))
    mp.setenv("DAGSTER_HOME", str(home))
    graph = standin_defs.defs.resolve_asset_graph()
    shards = [f"{state}|local" for state in standin_defs.STATES]
    lines = []
    with DagsterInstance.get() as instance:
        missing = stale_unpartitioned(graph, instance)
        targets = {Target(AssetKey("chain"), key) for key in shards}
        targets |= {Target(AssetKey("fan_in"), "US|local")}
        targets |= {Target(key, None) for key in missing}
        with running_daemon(instance, workspace, log=lines.append):
            backfill_id = launch_backfill(instance, graph, targets, title="stand-in")
            summary = follow_backfill(instance, backfill_id, log=lines.append, timeout_s=480)
        fresh = stale_unpartitioned(graph, instance)
        yield {
            "summary": summary,
            "missing": missing,
            "fresh": fresh,
            "lines": lines,
            "log": log_path.read_text().splitlines(),
            "instance": instance,
            "graph": graph,
        }
    mp.undo()


def test_backfill_runs_every_cell_through_the_daemon(backfilled):
    summary = backfilled["summary"]
    assert summary["success"], (summary["failed"], summary["runs"], backfilled["lines"])
    assert summary["status"] == "COMPLETED_SUCCESS"
    cells = sorted(row["cell"] for row in summary["runs"])
    assert cells == ["local|DE", "local|US", "local|VT", "unpartitioned"]
    assert any("started dagster-daemon" in line for line in backfilled["lines"])
    assert any("SUCCESS" in line and "local|US" in line for line in backfilled["lines"])


def test_unpartitioned_parent_built_once_before_the_shards_and_fan_in_last(backfilled):
    log = backfilled["log"]
    assert log.count("frames") == 1
    assert log[0] == "frames" and log[-1] == "fan_in US|local"
    assert sorted(log[1:3]) == ["chain DE|local", "chain VT|local"]
    # Missing before, fresh after: the next backfill reuses it from storage.
    assert backfilled["missing"] == [AssetKey("frames")]
    assert backfilled["fresh"] == []


def test_blocking_checks_run_inside_the_backfill_runs(backfilled):
    instance = backfilled["instance"]
    evaluations = [
        entry
        for row in backfilled["summary"]["runs"]
        for entry in instance.all_logs(
            row["run_id"], of_type=DagsterEventType.ASSET_CHECK_EVALUATION
        )
    ]
    assert len(evaluations) == 2
    assert all(e.dagster_event.event_specific_data.passed for e in evaluations)


def test_a_new_code_version_makes_the_stored_parent_stale(backfilled):
    @asset(name="frames", code_version="2")
    def frames_v2() -> int:
        return 11

    graph = Definitions(assets=[frames_v2, standin_defs.chain]).resolve_asset_graph()
    assert stale_unpartitioned(graph, backfilled["instance"]) == [AssetKey("frames")]
