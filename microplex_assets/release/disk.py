"""Disk guardrail: refuse to start a build that would run out of disk half-way.

A build writes its work files (H5, the eCPS-method H5, matrices) and then copies a run
bundle; the newest bundle of the cell is the best guess of one build's size, so twice
that (work copy + bundle), and at least ``MIN_FREE_BYTES``, must be free.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from microplex_assets.release.bundle import list_runs, run_dir

MIN_FREE_BYTES = 2 * 2**30


class InsufficientDiskError(RuntimeError):
    """Not enough free disk for a build; the message names the folder, free and needed."""


def bundle_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def space_needed(cell: Path, minimum: int = MIN_FREE_BYTES) -> int:
    runs = list_runs(cell)
    last = bundle_bytes(run_dir(cell, runs[-1])) if runs else 0
    return max(2 * last, minimum)


def require_free_space(root: Path, cell: Path, minimum: int = MIN_FREE_BYTES) -> int:
    """Free bytes under ``root``; InsufficientDiskError when below ``space_needed``."""
    existing = Path(root)
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    needed = space_needed(cell, minimum)
    if free < needed:
        raise InsufficientDiskError(
            f"{existing}: {free / 2**30:.1f} GiB free, a build of {cell.parent.name}|"
            f"{cell.name} needs {needed / 2**30:.1f} GiB (twice its last bundle, at least "
            f"{minimum / 2**30:.1f} GiB): run `make gc` or free space"
        )
    return free
