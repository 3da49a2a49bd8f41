"""Atomic publication of a bundle folder: readers see the old bundle or the new, never half.

Files are copied into a temporary sibling folder and fsynced; the folder then replaces
the published one by renames. A failure at any point leaves the old bundle in place and
no temporary folder behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_bundle(files: dict[str, Path], destination: Path) -> dict[str, Path]:
    """Publish ``{name in bundle: source file}`` as the folder ``destination``.

    Entries of the existing bundle not in ``files`` (e.g. ``validation/`` written by a
    later stage) are not carried over: a new bundle starts clean.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        if not Path(source).is_file():
            raise FileNotFoundError(f"cannot publish '{name}': {source} is not a file")
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.new.", dir=destination.parent))
    retired = destination.parent / f".{destination.name}.old.{os.getpid()}"
    try:
        for name, source in files.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            with open(target, "rb") as handle:
                os.fsync(handle.fileno())
        os.chmod(staging, 0o755)
        _fsync_dir(staging)
        if destination.exists():
            os.replace(destination, retired)
        os.replace(staging, destination)
        _fsync_dir(destination.parent)
    except BaseException:
        if retired.exists() and not destination.exists():
            os.replace(retired, destination)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(retired, ignore_errors=True)
    return {name: destination / name for name in files}
