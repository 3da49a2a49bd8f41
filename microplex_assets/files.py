"""File helpers every stage shares: the one atomic-write helper, JSON, content hashes."""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (a rename into it) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        for folder in [path, *(p for p in path.rglob("*") if p.is_dir())]:
            os.chmod(folder, 0o755)  # a staged run bundle is already read-only
        shutil.rmtree(path, ignore_errors=True)


# A write that failed for lack of room: a full disk, a full quota, a file-size limit.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class DiskFullError(OSError):
    """A write ran out of room; the message names the target, the file being written
    when it failed, the free space left, and that the target is untouched."""


def _is_disk_full(err: OSError) -> bool:
    """By errno, or by text where a C library (HDF5) reports the failed write in words."""
    return err.errno in DISK_FULL or "No space left on device" in str(err)


def _disk_full(err: OSError, path: Path, tmp: Path, existed: bool) -> DiskFullError:
    code = err.errno if err.errno in DISK_FULL else errno.ENOSPC
    writing = err.filename2 or err.filename
    where = f" while writing {writing}" if writing else ""
    try:
        free = f"{shutil.disk_usage(path.parent).free / 2**20:,.1f} MiB free"
    except OSError:
        free = "free space unknown"
    state = "unchanged" if existed else "still absent"
    return DiskFullError(
        code,
        f"{path}: not written, {os.strerror(code)}{where} ({free} on its "
        f"filesystem); the partial {tmp.name} was removed and {path.name} is {state}",
    )


@contextmanager
def atomic_target(path: Path, *, overwrite: bool = True) -> Iterator[Path]:
    """The one atomic-write helper: yield a temporary sibling of ``path`` for the caller
    to create (a file, a folder or a symlink), then fsync it and rename it over ``path``.

    Readers see the old entry or the complete new one, never half of one; on any error
    the temporary is removed and ``path`` is untouched. The sibling is on the same
    filesystem, so the rename is atomic. ``overwrite=False`` refuses an existing
    ``path`` (FileExistsError naming it): an immutable run bundle is never replaced.
    A write that runs out of room is re-raised as DiskFullError (same errno) saying so.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    existed = path.exists() or path.is_symlink()
    try:
        yield tmp
        if tmp.is_file() and not tmp.is_symlink():
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        elif tmp.is_dir() and not tmp.is_symlink():
            fsync_dir(tmp)
        if not overwrite and (path.exists() or path.is_symlink()):
            raise FileExistsError(f"{path} already exists and is never replaced")
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as err:
        _remove(tmp)
        if _is_disk_full(err) and not isinstance(err, DiskFullError):
            raise _disk_full(err, path, tmp, existed) from err
        raise
    except BaseException:
        _remove(tmp)
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_orphaned_temporaries(folder: Path) -> list[Path]:
    """Remove the temporaries ``atomic_target`` left in ``folder`` when its process was
    killed (SIGKILL skips every cleanup), i.e. those whose writer's pid is not a live
    process; a live writer's are kept. Assumes the writers ran on this host (one Dagster
    instance per machine). Returns what was removed."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        parts = entry.name.rsplit(".", 3)
        if not entry.name.startswith(".") or len(parts) != 4 or parts[3] != "tmp":
            continue
        if parts[1].isdigit() and not _alive(int(parts[1])):
            _remove(entry)
            removed.append(entry)
    return removed


def write_atomic(path: Path, write: Callable[[IO], None], mode: str = "w") -> Path:
    """Write through ``write`` to a temporary sibling, then rename (``atomic_target``)."""
    with atomic_target(path) as tmp, open(tmp, mode) as handle:
        write(handle)
    return Path(path)


def replace_symlink(link: Path, target: str | Path) -> Path:
    """Point ``link`` at ``target`` (kept as given, e.g. relative) in one atomic rename."""
    with atomic_target(link) as tmp:
        os.symlink(target, tmp)
    return Path(link)


def write_json_atomic(path: Path, payload: Any) -> Path:
    """JSON written atomically (see ``write_atomic``)."""
    return write_atomic(
        path, lambda handle: json.dump(payload, handle, indent=2, sort_keys=True, default=str)
    )


def json_safe(value: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, tuples to lists, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def file_sha256(path: str | Path) -> str:
    """SHA256 of a file, read in 1 MiB blocks: provenance pins the exact bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_filename(year: int) -> str:
    """The published H5's name: the one name every bundle and loader agrees on."""
    return f"policyengine_us_{year}.h5"


def carried_file(
    data_dir: Path, name: str, error: type[Exception] = ValueError, sources: str = "SOURCES.json"
) -> tuple[bytes, dict[str, Any]]:
    """A file carried in ``data_dir`` and its ``SOURCES.json`` entry, after checking it is
    listed, present and has the recorded SHA256; ``error`` is raised naming the path."""
    path = Path(data_dir) / name
    entries = json.loads((Path(data_dir) / sources).read_text())
    if name not in entries:
        raise error(f"{path}: not listed in {sources}")
    if not path.exists():
        raise error(f"{path}: carried file is missing")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != entries[name]["sha256"]:
        raise error(f"{path}: sha256 {digest} differs from {sources} ({entries[name]['sha256']})")
    return data, entries[name]
