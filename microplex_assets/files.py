"""File helpers every stage shares: atomic JSON writes and content hashes."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np


def write_atomic(path: Path, write: Callable[[IO], None], mode: str = "w") -> Path:
    """Write through ``write`` to a temporary sibling, fsync, then rename: readers see the
    old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


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
