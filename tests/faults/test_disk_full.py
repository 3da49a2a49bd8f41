"""A disk that fills during publication: the write fails part-way (simulated: the copy
or HDF5 write raises ENOSPC after writing some bytes), and the error says so, names the
target and the file being written, leaves no temporary, no partial bundle under
``runs/``, and the ``current`` pointer and history as they were."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import h5py
import numpy as np
import pytest

from microplex_assets import files
from microplex_assets.entities.bundle import GROUP_ENTITIES
from microplex_assets.entities.h5_combine import restrict_h5
from microplex_assets.files import DiskFullError, dataset_filename
from microplex_assets.release import bundle as bundle_module
from microplex_assets.release.bundle import list_runs, publish_run_bundle
from microplex_assets.release.pointer import current_key, promote
from tests.faults.cells import YEAR, publish_earlier, snapshot, temporaries, write_h5

EARLIER = "20240101T000000Z-earlier0"


def enospc(target: str | None = None) -> OSError:
    error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    error.filename2 = target  # as shutil's sendfile copy reports the file it was writing
    return error


def copy_until_full(after_bytes: int):
    """A ``shutil.copyfile`` that writes ``after_bytes`` in all, then raises ENOSPC."""
    written = {"total": 0}

    def copyfile(source: Any, target: Any, **_: Any) -> Any:
        data = Path(source).read_bytes()
        room = max(0, after_bytes - written["total"])
        Path(target).write_bytes(data[:room])
        written["total"] += min(room, len(data))
        if room < len(data):
            raise enospc(str(target))
        return target

    return copyfile


@pytest.fixture
def cell(tmp_path: Path) -> Path:
    cell = tmp_path / "artifacts" / "local" / "US"
    publish_earlier(cell, EARLIER)
    return cell


def new_files(tmp_path: Path) -> dict[str, Path]:
    work = tmp_path / "work"
    h5 = write_h5(work / dataset_filename(YEAR), list(range(1, 2001)), [1.0] * 2000)
    (work / "manifest.json").write_text(json.dumps({"derived_from": ["x"], "year": YEAR}))
    return {h5.name: h5, "manifest.json": work / "manifest.json"}


def test_disk_fills_while_the_bundle_is_copied(
    cell: Path, tmp_path: Path, monkeypatch, record_property
) -> None:
    sources = new_files(tmp_path)
    before = snapshot(cell)
    size = sources[dataset_filename(YEAR)].stat().st_size
    monkeypatch.setattr(bundle_module.shutil, "copyfile", copy_until_full(size // 2))
    with pytest.raises(DiskFullError) as caught:
        publish_run_bundle(sources, cell, "20240202T000000Z-newrun00", {"run_id": "newrun00"})
    message = str(caught.value)
    record_property("message", message)
    assert caught.value.errno == errno.ENOSPC and isinstance(caught.value, OSError)
    assert f"{cell / 'runs' / '20240202T000000Z-newrun00'}: not written, No space left" in message
    assert f"/{dataset_filename(YEAR)} (" in message  # the file being written when it failed
    assert "MiB free on its filesystem" in message
    assert "was removed and 20240202T000000Z-newrun00 is still absent" in message
    assert list_runs(cell) == [EARLIER]  # no partial bundle under runs/
    assert current_key(cell) == EARLIER
    assert snapshot(cell) == before and temporaries(cell) == []


def test_disk_fills_while_the_history_is_written(cell: Path, tmp_path: Path, monkeypatch) -> None:
    """The bundle is published; the promotion's first write (releases.json) fails half-way:
    the pointer was not switched and the history is the old one."""
    key = "20240202T000000Z-newrun00"
    publish_run_bundle(new_files(tmp_path), cell, key, {"run_id": "newrun00"})
    before = snapshot(cell)

    def dump(payload: Any, handle: Any, **kwargs: Any) -> None:
        handle.write(json.dumps(payload, **kwargs)[:40])
        raise enospc()

    monkeypatch.setattr(files, "json", SimpleNamespace(dump=dump))
    with pytest.raises(DiskFullError, match=f"{cell / 'releases.json'}: not written, No space"):
        promote(cell, key, "local", "US", reason="disk fills")
    assert current_key(cell) == EARLIER
    assert snapshot(cell) == before and temporaries(cell) == []


def tiny_h5(path: Path) -> Path:
    """One household of two persons, every id array a PolicyEngine H5 needs, 2024."""
    with h5py.File(path, "w") as h5:
        h5.create_dataset(f"person_id/{YEAR}", data=np.array([1, 2]))
        for entity in GROUP_ENTITIES:
            h5.create_dataset(f"{entity}_id/{YEAR}", data=np.array([1]))
            h5.create_dataset(f"person_{entity}_id/{YEAR}", data=np.array([1, 1]))
        h5.create_dataset(f"household_weight/{YEAR}", data=np.array([3.0]))
        h5.create_dataset(f"age/{YEAR}", data=np.array([40, 38]))
    return path


def test_disk_fills_while_an_h5_is_written(tmp_path: Path, monkeypatch) -> None:
    """HDF5 fails after some datasets are written: the earlier file at the destination is
    kept byte for byte and the half-written temporary is gone."""
    source = tiny_h5(tmp_path / "source.h5")
    destination = tmp_path / "out" / dataset_filename(YEAR)
    destination.parent.mkdir()
    shutil.copyfile(source, destination)
    earlier = destination.read_bytes()
    create = h5py.Group.create_dataset
    calls = {"n": 0}

    def create_until_full(self: h5py.Group, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 4:
            raise OSError("Can't write data (file write failed: No space left on device)")
        return create(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", create_until_full)
    entity_of = {"household_weight": "household", "age": "person"}.__getitem__
    with pytest.raises(DiskFullError, match=f"{destination}: not written, No space left"):
        restrict_h5(source, destination, [1], YEAR, entity_of=entity_of)
    assert calls["n"] == 5  # it failed part-way, not before writing
    assert destination.read_bytes() == earlier
    assert temporaries(tmp_path) == []
