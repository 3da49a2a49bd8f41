"""Retention keeps the newest N bundles and never the promotion stack; the index follows."""

import pytest

from microplex_assets.release.index import rebuild, sync, table
from microplex_assets.release.pointer import promote
from microplex_assets.release.retention import collect, removable
from tests.release.bundles import make_bundle


def test_gc_keeps_the_newest_and_the_current_and_previous(tmp_path):
    root = tmp_path / "artifacts"
    cell = root / "national" / "US"
    for key in ("r1", "r2", "r3", "r4", "r5"):
        make_bundle(cell, key)
    promote(cell, "r1", "national", "US")
    promote(cell, "r2", "national", "US")
    index = tmp_path / "i.duckdb"
    sync(index, root)
    assert removable(cell, keep=3) == []  # r1, r2 on the stack; r3..r5 newest
    assert removable(cell, keep=2) == ["r3"]
    assert removable(cell, keep=1) == ["r3", "r4"]
    assert collect(root, keep=1) == ["national|US|r3", "national|US|r4"]
    assert sorted(p.name for p in (cell / "runs").iterdir()) == ["r1", "r2", "r5"]
    assert (cell / "policyengine_us_2024.h5").read_text() == "h5 of r2"
    sync(index, root)
    keys = table(index, "SELECT run_key FROM bundles ORDER BY 1")["run_key"].tolist()
    assert keys == ["r1", "r2", "r5"]
    assert rebuild(tmp_path / "j.duckdb", root) == 3
    with pytest.raises(ValueError, match="keep must be at least 1"):
        removable(cell, keep=0)


def test_a_build_is_refused_when_disk_is_short(tmp_path, monkeypatch):
    from collections import namedtuple

    from microplex_assets.release import disk

    cell = tmp_path / "artifacts" / "national" / "US"
    make_bundle(cell, "r1")
    assert disk.space_needed(cell, minimum=1) == 2 * disk.bundle_bytes(cell / "runs" / "r1")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(disk.shutil, "disk_usage", lambda path: usage(10, 9, 2**29))
    with pytest.raises(disk.InsufficientDiskError, match="0.5 GiB free, a build of national|US"):
        disk.require_free_space(tmp_path / "artifacts" / "not-yet", cell)
    assert disk.require_free_space(tmp_path, cell, minimum=1) == 2**29


def test_gc_keeps_the_newest_work_folders_and_latest(tmp_path):
    import os

    from microplex_assets.release.retention import collect_work

    cell = tmp_path / "_work" / "national" / "US"
    for age, run in enumerate(("old", "mid", "new")):
        (cell / run).mkdir(parents=True)
        os.utime(cell / run, (1_000 + age, 1_000 + age))
    os.symlink("old", cell / "latest")  # a rerun of an old run is the latest
    assert collect_work(tmp_path, keep=1) == ["_work/national/US/mid"]
    assert sorted(p.name for p in cell.iterdir()) == ["latest", "new", "old"]
