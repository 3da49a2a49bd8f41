"""Dagster's filesystem IO manager, with every write atomic.

Two runs at once (a backfill on 2 cores) both rematerialize the unpartitioned source
assets; the stock manager writes their pickles in place, so a run loading
``cps_source_frame`` while the other rewrites it read a truncated file ("EOFError: Ran
out of input", seen in the 51-shard backfill). Writing to a temporary file in the same
folder and renaming it over the old one means a reader sees the old value or the new
one, never half of either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster import FilesystemIOManager, InitResourceContext, OutputContext
from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager

from microplex_assets.files import atomic_target


class AtomicPickledObjectFilesystemIOManager(PickledObjectFilesystemIOManager):
    def dump_to_path(self, context: OutputContext, obj: Any, path: Any) -> None:
        with atomic_target(Path(str(path))) as temporary:
            super().dump_to_path(context, obj, type(path)(str(temporary)))


class AtomicFilesystemIOManager(FilesystemIOManager):
    """``FilesystemIOManager`` (same folder, same files) whose writes are atomic."""

    def create_io_manager(
        self, context: InitResourceContext
    ) -> AtomicPickledObjectFilesystemIOManager:
        base_dir = self.base_dir or context.instance.storage_directory()
        return AtomicPickledObjectFilesystemIOManager(base_dir=base_dir)
