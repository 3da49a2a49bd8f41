"""current, promote, refuse, rollback, crash safety and the stable path."""

import json
import os

import pytest

from microplex_assets import files
from microplex_assets.release import pointer
from microplex_assets.release.gates import BENCHMARKS_GATE, promotion_blockers
from microplex_assets.release.pointer import (
    PromotionRefused,
    RollbackError,
    adopt_legacy_bundle,
    current_dataset_path,
    current_key,
    pointer_state,
    promote,
    rollback,
)
from tests.release.bundles import gate, loss_record, make_bundle, suite

STABLE = "policyengine_us_2024.h5"


@pytest.fixture
def cell(tmp_path):
    return tmp_path / "artifacts" / "national" / "US"


def test_promote_switches_current_and_the_stable_path_follows(cell, tmp_path):
    make_bundle(cell, "r1")
    make_bundle(cell, "r2")
    promote(cell, "r1", "national", "US")
    assert (cell / STABLE).read_text() == "h5 of r1"
    assert os.readlink(cell / STABLE) == f"current/{STABLE}"
    promote(cell, "r2", "national", "US")
    assert (cell / STABLE).read_text() == "h5 of r2"
    assert current_key(cell) == "r2" and os.readlink(cell / "current") == "runs/r2"
    path = current_dataset_path("national", "US", 2024, root=tmp_path / "artifacts")
    assert path == cell / "runs" / "r2" / STABLE
    assert pointer_state(cell).stack == ["r1", "r2"]


def test_rollback_restores_the_previous_current_twice(cell):
    for key in ("r1", "r2", "r3"):
        make_bundle(cell, key)
        promote(cell, key, "national", "US")
    assert rollback(cell, "national", "US").current == "r2"
    assert (cell / STABLE).read_text() == "h5 of r2"
    assert rollback(cell, "national", "US").current == "r1"
    with pytest.raises(RollbackError, match="national|US: nothing to roll back to"):
        rollback(cell, "national", "US")
    actions = [entry["action"] for entry in json.loads((cell / "releases.json").read_text())]
    assert actions == ["promote", "promote", "promote", "rollback", "rollback"]


def test_promotion_refuses_a_failed_blocking_gate_and_names_it(cell):
    make_bundle(cell, "good")
    promote(cell, "good", "national", "US")
    failing = loss_record(gates=[gate("protected_families_hold", passed=False)])
    make_bundle(cell, "bad", record=failing)
    with pytest.raises(PromotionRefused, match="blocking gate 'protected_families_hold'"):
        promote(cell, "bad", "national", "US")
    assert current_key(cell) == "good"
    warned = loss_record(gates=[gate("runtime", passed=False, severity="WARN")])
    make_bundle(cell, "warned", record=warned)
    promote(cell, "warned", "national", "US")  # a WARN gate never blocks


def test_national_needs_a_passing_benchmark_suite(cell, tmp_path):
    make_bundle(cell, "skipped", record=loss_record(benchmarks={"skipped": "disabled"}))
    make_bundle(cell, "failed", record=loss_record(benchmarks=suite(passed=False)))
    assert promotion_blockers(cell / "runs" / "skipped", "national", "US") == [
        "national|US needs a passing benchmark suite: disabled"
    ]
    reasons = promotion_blockers(cell / "runs" / "failed", "national", "US")
    assert reasons == [f"blocking gate '{BENCHMARKS_GATE}' (microsim) failed: benchmarks False"]
    state = tmp_path / "artifacts" / "local" / "CA"
    record = loss_record("local", "CA", benchmarks={"skipped": "national only"})
    make_bundle(state, "s1", record=record)
    assert promotion_blockers(state / "runs" / "s1", "local", "CA") == []


def test_promotion_refuses_a_tampered_or_foreign_bundle(cell):
    bundle = make_bundle(cell, "r1")
    assert promotion_blockers(bundle, "local", "CA") == [
        "r1: its loss record is for national|US, not local|CA"
    ]
    os.chmod(bundle, 0o755)
    os.chmod(bundle / "manifest.json", 0o644)
    (bundle / "manifest.json").write_text("{}")
    with pytest.raises(PromotionRefused, match="manifest.json: SHA256 differs"):
        promote(cell, "r1", "national", "US")
    with pytest.raises(PromotionRefused, match="no run bundle at"):
        promote(cell, "nope", "national", "US")


def test_a_derived_bundle_needs_no_loss_record(tmp_path):
    cell = tmp_path / "national" / "CA"
    make_bundle(cell, "d1", derived=True)
    assert promote(cell, "d1", "national", "CA").current == "d1"


def test_benchmark_gate_name_matches_the_suite():
    from microplex_assets.validation.microsim.gates import BENCHMARKS_GATE as SUITE_GATE

    assert BENCHMARKS_GATE == SUITE_GATE


def test_a_crash_between_history_and_switch_changes_nothing(cell, monkeypatch):
    """The intent is recorded, then the process dies before the symlink rename: current,
    the stable path and the rollback target are as before, and the next promote works."""
    for key in ("r1", "r2"):
        make_bundle(cell, key)
        promote(cell, key, "national", "US")
    make_bundle(cell, "r3")

    def die(link, target):
        raise SystemExit("killed between the steps")

    monkeypatch.setattr(pointer, "replace_symlink", die)
    with pytest.raises(SystemExit):
        promote(cell, "r3", "national", "US")
    monkeypatch.undo()
    assert json.loads((cell / "releases.json").read_text())[-1]["to"] == "r3"  # intent only
    assert current_key(cell) == "r2" and (cell / STABLE).read_text() == "h5 of r2"
    assert pointer_state(cell).stack == ["r1", "r2"]
    assert rollback(cell, "national", "US").current == "r1"
    promote(cell, "r3", "national", "US")
    assert pointer_state(cell).stack == ["r1", "r3"]


def test_a_crash_inside_the_symlink_rename_keeps_the_old_link(cell, monkeypatch):
    make_bundle(cell, "r1")
    promote(cell, "r1", "national", "US")
    make_bundle(cell, "r2")
    real = files.os.replace

    def crash(src, dst):
        if str(dst).endswith("/current"):
            raise OSError("power cut")
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        promote(cell, "r2", "national", "US")
    assert current_key(cell) == "r1" and (cell / STABLE).read_text() == "h5 of r1"
    assert not [p for p in cell.iterdir() if p.name.startswith(".current")]


def test_a_legacy_in_place_bundle_becomes_a_run_and_current(cell):
    cell.mkdir(parents=True)
    (cell / STABLE).write_text("legacy h5")
    (cell / "manifest.json").write_text("{}")
    (cell / "validation").mkdir()
    (cell / "validation" / "aggregates.json").write_text("{}")
    key = adopt_legacy_bundle(cell)
    assert key.startswith("legacy-") and current_key(cell) == key
    assert (cell / STABLE).is_symlink() and (cell / STABLE).read_text() == "legacy h5"
    assert adopt_legacy_bundle(cell) is None
    make_bundle(cell, "r1")
    promote(cell, "r1", "national", "US")
    assert rollback(cell, "national", "US").current == key
    assert (cell / STABLE).read_text() == "legacy h5"


def test_no_current_is_a_named_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="local|CA has no current bundle"):
        current_dataset_path("local", "CA", 2024, root=tmp_path)
