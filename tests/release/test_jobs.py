"""The promote / rollback jobs and the index and dashboard assets, through Dagster."""

from pathlib import Path

import pytest
from dagster import DagsterInstance, MultiPartitionKey, materialize

from definitions import defs
from microplex_assets.release.assets import readiness_dashboard, run_index
from microplex_assets.release.cli import main as cli
from microplex_assets.release.pointer import current_key, promote
from microplex_resources.artifact_store import ArtifactStore
from tests.release.bundles import gate, loss_record, make_bundle


def run_job(name, root, **config):
    op = "promote_bundle" if name == "promote_release" else "rollback_bundle"
    return defs.get_job_def(name).execute_in_process(
        run_config={
            "ops": {op: {"config": config}},
            "resources": {"artifact_store": {"config": {"root": str(root)}}},
        },
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def failure_message(result):
    return next(e.event_specific_data.error.message for e in result.all_events if e.is_step_failure)


def test_promote_and_rollback_jobs(tmp_path):
    root = tmp_path / "artifacts"
    cell = root / "national" / "US"
    make_bundle(cell, "r1")
    make_bundle(cell, "r2")
    bad = loss_record(gates=[gate("held_out_loss_below_baseline", passed=False)])
    make_bundle(cell, "r3", record=bad)
    assert run_job("promote_release", root, run_key="r1").success
    assert run_job("promote_release", root, run_key="r2").success
    refused = run_job("promote_release", root, run_key="r3")
    assert not refused.success
    assert "blocking gate 'held_out_loss_below_baseline'" in failure_message(refused)
    assert current_key(cell) == "r2"
    result = run_job("rollback_release", root)
    assert result.success and result.output_for_node("rollback_bundle")["current"] == "r1"
    assert (root / "_release" / "readiness.html").is_file()
    assert (cell / "policyengine_us_2024.h5").read_text() == "h5 of r1"


def test_cli_promote_and_rollback(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    cell = home / "artifacts" / "national" / "US"
    make_bundle(cell, "r1")
    make_bundle(cell, "r2", record=loss_record(benchmarks={"skipped": "suite off"}))
    assert cli(["promote", "--run", "r1"]) == 0
    assert capsys.readouterr().out.strip() == "national|US: current is r1"
    assert cli(["promote", "--run", "r2"]) == 1
    # the refusal alone: no Dagster stack trace, no exception class before the message
    err = capsys.readouterr().err.strip()
    assert err == (
        "national|US: run r2 not promoted: national|US needs a passing benchmark suite: suite off"
    )
    assert cli(["rollback"]) == 1
    assert capsys.readouterr().err.strip() == ("national|US: nothing to roll back to (current: r1)")


def test_index_and_dashboard_assets(tmp_path):
    root = tmp_path / "artifacts"
    cell = root / "national" / "US"
    make_bundle(cell, "r1")
    promote(cell, "r1", "national", "US")
    result = materialize(
        [run_index, readiness_dashboard],
        partition_key=MultiPartitionKey({"product": "national", "geography": "US"}),
        resources={"artifact_store": ArtifactStore(root=str(root))},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.output_for_node("run_index")["added"] == ["national|US|r1"]
    page = result.output_for_node("readiness_dashboard")
    assert "national|US" in Path(page).read_text()
    events = result.asset_materializations_for_node("readiness_dashboard")
    assert events[0].metadata["dashboard"].value.startswith("file://")


@pytest.mark.parametrize("argv", [["promote"]])
def test_cli_promote_needs_a_run(argv):
    with pytest.raises(SystemExit):
        cli(argv)
