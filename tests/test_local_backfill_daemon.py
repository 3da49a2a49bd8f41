"""Two real local shards and their fallbacks through ``make backfill``'s path: one Dagster
asset backfill on a temporary instance, carried out by a real ``dagster-daemon`` (backfill
daemon + run queue, two runs at a time), against the session's small national|US build."""

from __future__ import annotations

import pytest

from microplex_assets.backfill import BackfillPlan, run_backfill

pytestmark = pytest.mark.slow
STATES = ("DE", "VT")
SETTINGS = {"synthetic_donor_records": 5_000}


def test_two_shards_backfill_through_the_daemon(national_build, tmp_path, monkeypatch):
    _, artifacts = national_build
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\nrun_queue:\n  max_concurrent_runs: 2\n"
    )
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    lines: list[str] = []
    table, summary = run_backfill(
        BackfillPlan.local(STATES, fan_in=False),  # the fan-in needs all 51 shards
        households=150,
        settings=SETTINGS,
        log=lines.append,
        artifacts_root=str(artifacts),
    )
    assert summary["success"], (summary, table.to_dict("records"), lines)
    stages = table.groupby("stage")["cell"].apply(sorted).to_dict()
    assert stages["shards"] == ["local|DE", "local|VT"]  # one run per shard
    assert stages["derived"] == ["national|DE", "national|VT"]
    assert set(stages["unpartitioned"]) == {"unpartitioned"}  # built before, read by both
    shards = table[table["stage"] == "shards"]
    assert (shards["train_loss"] < shards["fallback_train_loss"]).all()
    assert any("started dagster-daemon" in line for line in lines)
    assert len([line for line in lines if " SUCCESS " in line]) == len(table)
    for state in STATES:
        assert (artifacts / "local" / state / "current").exists()
        assert (artifacts / "national" / state / "current").exists()
