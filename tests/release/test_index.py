"""The run index: incremental sync equals a rebuild from the bundles alone."""

import pytest

from microplex_assets.release.index import rebuild, sync, table
from microplex_assets.release.pointer import promote, rollback
from tests.release.bundles import gate, loss_record, make_bundle

TABLES = ("bundles", "gates", "losses", "families", "reforms")


def dump(path):
    return {
        name: table(path, f"SELECT * FROM {name}")
        .sort_values(list(table(path, f"SELECT * FROM {name}").columns[:4]))
        .reset_index(drop=True)
        for name in TABLES
    }


def test_incremental_index_equals_a_rebuild(tmp_path):
    root = tmp_path / "artifacts"
    national, state = root / "national" / "US", root / "local" / "CA"
    incremental = tmp_path / "incremental.duckdb"
    make_bundle(national, "r1", record=loss_record(train=0.6))
    promote(national, "r1", "national", "US")
    assert sync(incremental, root) == ["national|US|r1"]
    make_bundle(national, "r2", record=loss_record(train=0.4))
    promote(national, "r2", "national", "US")
    make_bundle(state, "s1", record=loss_record("local", "CA", benchmarks={"skipped": "n/a"}))
    assert sync(incremental, root) == ["local|CA|s1", "national|US|r2"]
    rollback(national, "national", "US")
    assert sync(incremental, root) == []
    rebuilt = tmp_path / "rebuilt.duckdb"
    assert rebuild(rebuilt, root) == 3
    one, two = dump(incremental), dump(rebuilt)
    for name in TABLES:
        assert one[name].equals(two[name]), name
    bundles = one["bundles"].set_index("run_key")
    assert bundles.loc["r1", "is_current"] and not bundles.loc["r2", "is_current"]
    assert bundles.loc["r2", "loss_record_schema_version"] == 3
    losses = one["losses"]
    train = losses[(losses["method"] == "candidate") & (losses["split"] == "train")]
    assert sorted(train["loss"]) == [0.4, 0.5, 0.6]


def test_index_counts_blocking_failures_and_refuses_unknown_schema(tmp_path):
    root = tmp_path / "artifacts"
    cell = root / "national" / "US"
    make_bundle(cell, "bad", record=loss_record(gates=[gate("protected", passed=False)]))
    rebuild(tmp_path / "i.duckdb", root)
    row = table(tmp_path / "i.duckdb", "SELECT blocking_failures, gates_total FROM bundles")
    assert row.iloc[0].tolist() == [1, 3]
    future = loss_record()
    future["schema_version"] = 99
    make_bundle(cell, "future", record=future)
    with pytest.raises(ValueError, match="future/loss_record.json: schema version 99"):
        rebuild(tmp_path / "j.duckdb", root)
