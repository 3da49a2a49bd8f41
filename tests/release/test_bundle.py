"""Run bundles are immutable, checksummed and never replaced; one atomic-write helper."""

import json
import os
from datetime import UTC, datetime

import pytest

from microplex_assets import files
from microplex_assets.files import atomic_target, replace_symlink, write_json_atomic
from microplex_assets.release.bundle import (
    CHECKSUMS,
    list_runs,
    publish_run_bundle,
    run_key,
    verify_bundle,
)
from tests.release.bundles import make_bundle


def test_run_key_is_time_then_run_id():
    when = datetime(2026, 12, 1, 9, 30, 5, tzinfo=UTC)
    assert run_key("0f3a9c2e-1111-2222", when) == "20261201T093005Z-0f3a9c2e"
    with pytest.raises(ValueError, match="run id '---'"):
        run_key("---", when)


def test_bundle_has_checksums_of_every_file_and_is_read_only(tmp_path):
    bundle = make_bundle(tmp_path / "national" / "US", "r1")
    listed = dict(
        reversed(line.split("  ", 1)) for line in (bundle / CHECKSUMS).read_text().splitlines()
    )
    assert sorted(listed) == [
        "RUN.json", "loss_record.json", "manifest.json", "policyengine_us_2024.h5",
        "validation/aggregates.json",
    ]  # fmt: skip
    assert listed["policyengine_us_2024.h5"] == files.file_sha256(
        bundle / "policyengine_us_2024.h5"
    )
    assert json.loads((bundle / "RUN.json").read_text())["run_key"] == "r1"
    assert verify_bundle(bundle) == []
    assert oct(bundle.stat().st_mode & 0o777) == "0o555"
    assert oct((bundle / "manifest.json").stat().st_mode & 0o777) == "0o444"
    if os.geteuid() != 0:  # root ignores permissions
        with pytest.raises(PermissionError):
            (bundle / "validation" / "late.json").write_text("{}")


def test_verify_names_changed_missing_and_extra_files(tmp_path):
    bundle = make_bundle(tmp_path / "c", "r1")
    for path in (bundle, bundle / "validation"):
        os.chmod(path, 0o755)
    os.chmod(bundle / "manifest.json", 0o644)
    (bundle / "manifest.json").write_text("{}")
    (bundle / "validation" / "aggregates.json").unlink()
    (bundle / "validation" / "late.json").write_text("{}")
    assert verify_bundle(bundle) == [
        "r1/validation/aggregates.json: missing",
        "r1/validation/late.json: not in SHA256SUMS",
        "r1/manifest.json: SHA256 differs from SHA256SUMS",
    ]


def test_a_run_bundle_is_never_replaced(tmp_path):
    cell = tmp_path / "c"
    make_bundle(cell, "r1", h5_text="first")
    src = tmp_path / "x.h5"
    src.write_text("second")
    with pytest.raises(FileExistsError, match="never replaced"):
        publish_run_bundle({"policyengine_us_2024.h5": src}, cell, "r1", {})
    assert (cell / "runs" / "r1" / "policyengine_us_2024.h5").read_text() == "first"


def test_failed_publication_leaves_nothing(tmp_path, monkeypatch):
    src = tmp_path / "a.txt"
    src.write_text("a")
    real = files.os.replace

    def crash(a, b):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        publish_run_bundle({"a.txt": src, "b/c.txt": src}, tmp_path / "c", "r1", {})
    monkeypatch.setattr(files.os, "replace", real)
    assert list_runs(tmp_path / "c") == []
    assert os.listdir(tmp_path / "c" / "runs") == []


def test_bad_entries_are_refused_with_their_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="cannot publish 'x.h5' into run r1"):
        publish_run_bundle({"x.h5": tmp_path / "nope"}, tmp_path / "c", "r1", {})
    (tmp_path / "f").write_text("f")
    with pytest.raises(ValueError, match="'../e' must be a relative path"):
        publish_run_bundle({"../e": tmp_path / "f"}, tmp_path / "c", "r1", {})
    with pytest.raises(ValueError, match="'SHA256SUMS' is written by the publisher"):
        publish_run_bundle({"SHA256SUMS": tmp_path / "f"}, tmp_path / "c", "r1", {})


def test_atomic_target_keeps_the_old_file_on_error(tmp_path):
    path = write_json_atomic(tmp_path / "m.json", {"v": 1})
    with pytest.raises(RuntimeError), atomic_target(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_replace_symlink_switches_in_one_rename(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    replace_symlink(tmp_path / "cur", "a")
    replace_symlink(tmp_path / "cur", "b")
    assert os.readlink(tmp_path / "cur") == "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "cur"]


def test_there_is_one_atomic_rename_in_the_code():
    """Issue 16: every atomic write goes through files.atomic_target."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    users = sorted(
        str(path.relative_to(root))
        for package in ("microplex_assets", "microplex_resources")
        for path in (root / package).rglob("*.py")
        if "os.replace(" in path.read_text() or "tempfile.mk" in path.read_text()
    )
    assert users == ["microplex_assets/files.py"]
