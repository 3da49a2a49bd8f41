"""The ``current`` pointer of a cell, promote and rollback.

``<cell>/current`` is a relative symlink to ``runs/<run_key>``, switched by one atomic
rename (``files.replace_symlink``): it is the single truth of what is current. The
stable paths users already pass to ``Microsimulation(dataset=...)``, e.g.
``artifacts/national/US/policyengine_us_2024.h5``, are fixed symlinks to
``current/<name>``, so they follow every switch at the same instant.

``releases.json`` is the history: each switch first records its intent there (with the
whole promotion stack after it), then renames the symlink. A crash between the two
leaves an entry whose target is not current; ``pointer_state`` reads the last entry
whose target *is* current, so such an entry is simply never applied.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from microplex_assets.files import (
    dataset_filename,
    remove_orphaned_temporaries,
    replace_symlink,
    write_json_atomic,
)
from microplex_assets.release.bundle import (
    CHECKSUMS,
    RUN_INFO,
    RUNS,
    checksum_lines,
    run_dir,
    runs_dir,
)
from microplex_assets.release.gates import promotion_blockers, read_json

CURRENT = "current"
HISTORY = "releases.json"
LOCK = ".release.lock"
RESERVED = {CURRENT, HISTORY, LOCK, RUNS, "derived"}


class PromotionRefused(RuntimeError):
    """A bundle may not become current; the message names the cell, run and each reason."""


class RollbackError(RuntimeError):
    """There is nothing to roll back to; the message names the cell."""


@dataclass
class PointerState:
    current: str | None
    stack: list[str] = field(default_factory=list)

    @property
    def previous(self) -> str | None:
        return self.stack[-2] if len(self.stack) >= 2 else None


def artifacts_root(root: str | Path | None = None) -> Path:
    """``root``, else $DAGSTER_HOME/artifacts (the ArtifactStore default)."""
    if root is not None:
        return Path(root)
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise RuntimeError("no artifacts root given and DAGSTER_HOME is not set")
    return Path(home) / "artifacts"


def cell_dir(product: str, geography: str, root: str | Path | None = None) -> Path:
    return artifacts_root(root) / product / geography


def current_key(cell: Path) -> str | None:
    """The run key ``current`` points at, or None when the cell has no current bundle."""
    link = Path(cell) / CURRENT
    if not link.is_symlink():
        return None
    return Path(os.readlink(link)).name


def history(cell: Path) -> list[dict[str, Any]]:
    return read_json(Path(cell), HISTORY) or []


def pointer_state(cell: Path) -> PointerState:
    """What is current and the promotion stack under it (see the module docstring)."""
    current = current_key(cell)
    if current is None:
        return PointerState(None, [])
    for entry in reversed(history(cell)):
        if entry.get("to") == current:
            return PointerState(current, list(entry["stack"]))
    return PointerState(current, [current])


@contextmanager
def cell_lock(cell: Path) -> Iterator[None]:
    """One promote / rollback at a time per cell (an flock, released if the process dies)."""
    Path(cell).mkdir(parents=True, exist_ok=True)
    with open(Path(cell) / LOCK, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _link_stable_names(cell: Path, key: str) -> None:
    """A fixed ``<cell>/<name> -> current/<name>`` for each top-level entry of the bundle
    (H5, manifest, loss record, ...); these links never change once made."""
    for entry in sorted(run_dir(cell, key).iterdir()):
        if entry.name in RESERVED or entry.name in (CHECKSUMS, RUN_INFO):
            continue
        link = Path(cell) / entry.name
        if link.is_symlink() and os.readlink(link) == f"{CURRENT}/{entry.name}":
            continue
        if link.exists() and not link.is_symlink():
            raise FileExistsError(f"{link} is a real file where a stable link belongs")
        replace_symlink(link, f"{CURRENT}/{entry.name}")


def _prune_stable_names(cell: Path) -> None:
    """Drop stable links the new current bundle does not have (they would dangle)."""
    for entry in Path(cell).iterdir():
        dangling = entry.is_symlink() and entry.name != CURRENT and not entry.exists()
        if dangling and os.readlink(entry).startswith(f"{CURRENT}/"):
            entry.unlink()


def _switch(cell: Path, key: str, stack: list[str], action: str, reason: str) -> PointerState:
    """Record the intent, then swap the symlink (the commit point), then tidy links."""
    entry = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "action": action,
        "from": current_key(cell),
        "to": key,
        "stack": stack,
        "reason": reason,
    }
    write_json_atomic(Path(cell) / HISTORY, [*history(cell), entry])
    _link_stable_names(cell, key)
    replace_symlink(Path(cell) / CURRENT, f"{RUNS}/{key}")
    _prune_stable_names(cell)
    return PointerState(key, stack)


def promote(cell: Path, key: str, product: str, geography: str, reason: str = "") -> PointerState:
    """Make run ``key`` current; PromotionRefused names every blocking reason."""
    cell = Path(cell)
    with cell_lock(cell):
        remove_orphaned_temporaries(cell)  # a killed switch's releases.json or link
        blockers = promotion_blockers(run_dir(cell, key), product, geography)
        if blockers:
            raise PromotionRefused(
                f"{product}|{geography}: run {key} not promoted: " + "; ".join(blockers)
            )
        state = pointer_state(cell)
        if state.current == key:
            return state
        return _switch(cell, key, [*state.stack, key], "promote", reason)


def rollback(cell: Path, product: str, geography: str, reason: str = "") -> PointerState:
    """Make the bundle that was current before this one current again."""
    cell = Path(cell)
    with cell_lock(cell):
        state = pointer_state(cell)
        if state.previous is None:
            raise RollbackError(
                f"{product}|{geography}: nothing to roll back to (current: {state.current})"
            )
        if not run_dir(cell, state.previous).is_dir():
            raise RollbackError(f"{product}|{geography}: previous run {state.previous} is gone")
        return _switch(cell, state.previous, state.stack[:-1], "rollback", reason)


def current_dataset_path(
    product: str, geography: str, year: int, root: str | Path | None = None
) -> Path:
    """The current bundle's H5, resolved to its run folder (immutable: a later switch of
    ``current`` never changes the file a caller already holds)."""
    cell = cell_dir(product, geography, root)
    key = current_key(cell)
    if key is None:
        raise FileNotFoundError(f"{product}|{geography} has no current bundle in {cell}")
    path = run_dir(cell, key) / dataset_filename(year)
    if not path.is_file():
        raise FileNotFoundError(f"{product}|{geography}: current run {key} has no {path.name}")
    return path


def adopt_legacy_bundle(cell: Path) -> str | None:
    """Move a pre-runs in-place bundle (files directly in ``<cell>/``) into
    ``runs/legacy-<time>/`` with its checksums, and make it current so a rollback can
    return to it. Returns its key, or None when there is nothing to adopt."""
    cell = Path(cell)
    if not cell.is_dir():
        return None
    entries = [
        p for p in cell.iterdir()
        if p.name not in RESERVED and not p.name.startswith(".") and not p.is_symlink()
    ]  # fmt: skip
    if not entries:
        return None
    stamp = max(p.stat().st_mtime for p in entries)
    key = f"legacy-{datetime.fromtimestamp(stamp, UTC):%Y%m%dT%H%M%SZ}"
    with cell_lock(cell):
        staging = runs_dir(cell) / f".{key}.adopting"
        staging.mkdir(parents=True)
        moved = []
        try:
            for entry in entries:
                shutil.move(str(entry), staging / entry.name)
                moved.append(entry)
            (staging / RUN_INFO).write_text(json.dumps({"legacy": True, "run_key": key}))
            (staging / CHECKSUMS).write_text("\n".join(checksum_lines(staging)) + "\n")
            os.rename(staging, run_dir(cell, key))
        except BaseException:
            for entry in moved:  # put the old bundle back where its readers expect it
                shutil.move(str(staging / entry.name), entry)
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _switch(cell, key, [key], "adopt", "bundle published in place before run bundles")
    return key
