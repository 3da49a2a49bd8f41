"""Immutable run bundles: ``<cell>/runs/<run_key>/``, written once, never touched again.

A bundle is copied into a temporary sibling folder, given ``RUN.json`` (which run, which
cell, when) and ``SHA256SUMS`` (every other file's hash, ``sha256sum -c`` format), made
read-only and renamed into place by the one atomic-write helper (``files.atomic_target``)
with ``overwrite=False``: a reader sees no bundle or the whole bundle, and an existing
run bundle is never replaced. A run killed while copying (SIGKILL: no cleanup runs)
leaves its dot-named staging folder, which no reader lists; the next publication of the
cell removes it (``files.remove_orphaned_temporaries``). Anything a later stage derives
goes elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from microplex_assets.files import (
    atomic_target,
    file_sha256,
    json_safe,
    remove_orphaned_temporaries,
)

RUNS = "runs"
CHECKSUMS = "SHA256SUMS"
RUN_INFO = "RUN.json"
RUN_INFO_VERSION = 1


def run_key(run_id: str, published_at: datetime | None = None) -> str:
    """``<UTC time>-<first 8 of the Dagster run id>``: sorts by time, names its run."""
    when = (published_at or datetime.now(UTC)).astimezone(UTC)
    short = "".join(ch for ch in run_id if ch.isalnum())[:8]
    if not short:
        raise ValueError(f"run id '{run_id}' has no letters or digits to key a bundle by")
    return f"{when:%Y%m%dT%H%M%SZ}-{short}"


def runs_dir(cell_dir: Path) -> Path:
    return Path(cell_dir) / RUNS


def run_dir(cell_dir: Path, key: str) -> Path:
    """The folder of run bundle ``key``; ValueError for a key that is not one name."""
    if not key or "/" in key or key.startswith("."):
        raise ValueError(f"run key '{key}' must be one folder name under {runs_dir(cell_dir)}")
    return runs_dir(cell_dir) / key


def list_runs(cell_dir: Path) -> list[str]:
    """Published run keys of a cell, oldest first (temporaries are dot-names)."""
    folder = runs_dir(cell_dir)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _check_name(name: str) -> None:
    parts = PurePosixPath(name).parts
    if not parts or PurePosixPath(name).is_absolute() or ".." in parts:
        raise ValueError(f"bundle entry '{name}' must be a relative path inside the bundle")
    if name in (CHECKSUMS, RUN_INFO):
        raise ValueError(f"bundle entry '{name}' is written by the publisher itself")


def checksum_lines(folder: Path) -> list[str]:
    """``<sha256>  <relative path>`` for every file but SHA256SUMS, sorted by path."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    files = [p for p in files if p.relative_to(folder).as_posix() != CHECKSUMS]
    return [f"{file_sha256(p)}  {p.relative_to(folder).as_posix()}" for p in files]


def _make_read_only(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        os.chmod(path, 0o555 if path.is_dir() else 0o444)
    os.chmod(folder, 0o555)


def publish_run_bundle(
    files: dict[str, Path], cell_dir: Path, key: str, info: dict[str, Any]
) -> Path:
    """Publish ``{name in bundle: source file}`` as the immutable bundle ``runs/<key>``.

    ``info`` (run id, cell, ...) is written as RUN.json with the key and the time. Raises
    FileExistsError if the bundle exists, FileNotFoundError naming a missing source.
    """
    destination = run_dir(cell_dir, key)
    for name, source in files.items():
        _check_name(name)
        if not Path(source).is_file():
            raise FileNotFoundError(f"cannot publish '{name}' into run {key}: no file {source}")
    if destination.exists():
        raise FileExistsError(f"run bundle {destination} already exists and is never replaced")
    remove_orphaned_temporaries(runs_dir(cell_dir))  # a killed run's half-copied bundle
    with atomic_target(destination, overwrite=False) as staging:
        staging.mkdir()
        for name, source in files.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        run_info = {
            "run_info_version": RUN_INFO_VERSION,
            "run_key": key,
            "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **json_safe(info),
        }
        (staging / RUN_INFO).write_text(json.dumps(run_info, indent=2, sort_keys=True))
        (staging / CHECKSUMS).write_text("\n".join(checksum_lines(staging)) + "\n")
        for path in staging.rglob("*"):
            if path.is_file():
                with open(path, "rb") as handle:
                    os.fsync(handle.fileno())
        _make_read_only(staging)
    return destination


def verify_bundle(folder: Path) -> list[str]:
    """What is wrong with a bundle against its SHA256SUMS (empty when it is intact):
    a missing list, a changed, missing or unlisted file, each named."""
    folder = Path(folder)
    listing = folder / CHECKSUMS
    if not listing.is_file():
        return [f"{folder}: no {CHECKSUMS}"]
    expected = {}
    for line in listing.read_text().splitlines():
        if line.strip():
            digest, name = line.split("  ", 1)
            expected[name] = digest
    found = {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in checksum_lines(folder)}
    problems = [f"{folder.name}/{n}: missing" for n in sorted(set(expected) - set(found))]
    extra = sorted(set(found) - set(expected))
    problems += [f"{folder.name}/{n}: not in {CHECKSUMS}" for n in extra]
    problems += [
        f"{folder.name}/{n}: SHA256 differs from {CHECKSUMS}"
        for n in sorted(set(expected) & set(found))
        if expected[n] != found[n]
    ]
    return problems
