"""Published cells for the publication fault cases: tiny shard bundles, an earlier
bundle made current, and a snapshot that shows whether anything under a cell changed."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from microplex_assets.files import dataset_filename, file_sha256, replace_symlink
from microplex_assets.release.bundle import publish_run_bundle
from microplex_assets.release.pointer import promote

YEAR = 2024


def write_h5(path: Path, ids: list[int], weights: list[float], year: int = YEAR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h5:
        h5.create_dataset(f"household_id/{year}", data=np.array(ids, dtype=np.int64))
        h5.create_dataset(f"household_weight/{year}", data=np.array(weights, dtype=np.float32))
    return path


def publish_shard(
    root: Path, state: str, target_set_hash: str, year: int = YEAR, key: str = "r1"
) -> Path:
    """``local|<state>`` published as run ``key`` and made current (its manifest records
    its year, target-set hash and the H5's SHA256, as ``published_dataset`` writes them)."""
    work = root / "_src" / state
    h5 = write_h5(work / dataset_filename(year), [1, 2], [10.0, 20.0], year)
    manifest = {
        "manifest_schema_version": 1,
        "year": year,
        "config": {"product": "local", "geography": state, "year": year},
        "targets": {"target_set_hash": target_set_hash},
        "h5": {"sha256": file_sha256(h5), "size_bytes": h5.stat().st_size},
        "exported_variables": {"household": ["household_weight"]},
    }
    (work / "manifest.json").write_text(json.dumps(manifest))
    cell = root / "local" / state
    folder = publish_run_bundle(
        {h5.name: h5, "manifest.json": work / "manifest.json"}, cell, key, {"run_id": key}
    )
    replace_symlink(cell / "current", f"runs/{key}")
    return folder


def publish_earlier(cell: Path, key: str = "20240101T000000Z-earlier0") -> Path:
    """An earlier derived bundle of ``cell``, promoted: what a failed run must not touch."""
    work = cell.parent / f"_src_{cell.name}"
    h5 = write_h5(work / dataset_filename(YEAR), [7], [1.0])
    (work / "manifest.json").write_text(
        json.dumps({"derived_from": ["earlier"], "year": YEAR, "dataset": h5.name})
    )
    folder = publish_run_bundle(
        {h5.name: h5, "manifest.json": work / "manifest.json"}, cell, key, {"run_id": key}
    )
    promote(cell, key, cell.parent.name, cell.name, reason="earlier release")
    return folder


def snapshot(cell: Path) -> dict[str, Any]:
    """Every entry under ``cell`` (temporaries included): a file by its SHA256, a link by
    its target, a folder by its name; equal snapshots mean nothing was added, lost or
    half-written, and ``current`` points where it did."""
    entries: dict[str, str] = {}
    for path in sorted(Path(cell).rglob("*")):
        name = path.relative_to(cell).as_posix()
        if path.is_symlink():
            entries[name] = "-> " + os.readlink(path)
        elif path.is_file():
            entries[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            entries[name] = "dir"
    return entries


def temporaries(root: Path) -> list[str]:
    """Dot-named temporaries of the atomic-write helper left anywhere under ``root``."""
    return sorted(p.as_posix() for p in Path(root).rglob(".*.tmp"))
