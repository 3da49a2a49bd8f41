"""Concurrent runs must never read a half-written asset pickle."""

from __future__ import annotations

import pickle

import pytest
from dagster import DagsterInstance, asset, materialize

from microplex_resources.atomic_io_manager import AtomicFilesystemIOManager


@asset
def frame() -> dict[str, list[int]]:
    return {"values": list(range(1000))}


def test_a_failed_write_leaves_the_previous_value_whole(tmp_path, monkeypatch):
    io_manager = AtomicFilesystemIOManager(base_dir=str(tmp_path))
    with DagsterInstance.ephemeral() as instance:
        assert materialize([frame], resources={"io_manager": io_manager}, instance=instance).success
        stored = tmp_path / "frame"
        before = stored.read_bytes()

        def dump_half(obj, file, protocol=None):  # a write interrupted halfway
            file.write(pickle.dumps(obj)[:100])
            raise pickle.PicklingError("interrupted")

        monkeypatch.setattr(pickle, "dump", dump_half)
        with pytest.raises(Exception, match="not picklable"):  # Dagster rewords it
            materialize([frame], resources={"io_manager": io_manager}, instance=instance)
    assert stored.read_bytes() == before
    assert pickle.loads(before) == {"values": list(range(1000))}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
