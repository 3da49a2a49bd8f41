"""Atomic publication of a bundle folder: readers see the old bundle or the new, never half.

Files are copied into a temporary sibling folder (same filesystem, so renames are
atomic) and fsynced; the old folder is then renamed aside, the new one renamed into
place and the old one removed. A failure at any point leaves the old bundle in place
and no temporary folder behind. Between the two renames the destination is briefly
absent (a reader gets "not found", never a mix of old and new files).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from microplex_assets.files import write_json_atomic

__all__ = ["publish_bundle", "write_json_atomic"]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_name(name: str) -> None:
    parts = PurePosixPath(name).parts
    if not parts or PurePosixPath(name).is_absolute() or ".." in parts:
        raise ValueError(f"bundle entry '{name}' must be a relative path inside the bundle")


def _stage(files: dict[str, Path], staging: Path) -> None:
    """Copy every file into ``staging`` and make it durable before anything is renamed."""
    folders = {staging}
    for name, source in files.items():
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        folders.add(target.parent)
        shutil.copyfile(source, target)
        with open(target, "rb") as handle:
            os.fsync(handle.fileno())
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        os.chmod(folder, 0o755)
        _fsync_dir(folder)


def publish_bundle(files: dict[str, Path], destination: Path) -> dict[str, Path]:
    """Publish ``{name in bundle: source file}`` as the folder ``destination``.

    The new bundle replaces the old one whole: entries of the old bundle not in
    ``files`` (e.g. ``validation/`` written by a later stage) are not carried over.
    Returns ``{name: published path}``.
    """
    destination = Path(destination)
    for name, source in files.items():
        _check_name(name)
        if not Path(source).is_file():
            raise FileNotFoundError(f"cannot publish '{name}': {source} is not a file")
    destination.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{destination.name}."
    staging = Path(tempfile.mkdtemp(prefix=prefix + "new.", dir=destination.parent))
    retired_root = Path(tempfile.mkdtemp(prefix=prefix + "old.", dir=destination.parent))
    retired = retired_root / destination.name
    try:
        _stage(files, staging)
        if destination.exists():
            os.replace(destination, retired)
        os.replace(staging, destination)
        _fsync_dir(destination.parent)
    except BaseException:
        if retired.exists() and not destination.exists():
            os.replace(retired, destination)
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(retired_root, ignore_errors=True)
        raise
    shutil.rmtree(retired_root, ignore_errors=True)
    return {name: destination / name for name in files}
