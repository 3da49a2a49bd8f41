"""Disk guardrail: keep the last N run bundles per cell, never ``current`` or the bundle
a rollback would return to (every bundle on the promotion stack is kept, in fact), and
the last N per-run work folders per cell (``_work/<product>/<geography>/<run_id>/``,
never the one ``latest`` names).

``python -m microplex_assets.release.retention --keep 5`` (``make gc``) removes the rest
and drops the removed bundles from the run index.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from microplex_assets.release.bundle import list_runs, run_dir
from microplex_assets.release.index import INDEX_NAME, cells, sync
from microplex_assets.release.pointer import artifacts_root, cell_lock, pointer_state


def removable(cell: Path, keep: int) -> list[str]:
    """Run keys of ``cell`` beyond the newest ``keep``, minus every bundle on the
    promotion stack (current, the one before it, ...)."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    protected = set(pointer_state(cell).stack)
    runs = list_runs(cell)
    return [key for key in runs[: max(len(runs) - keep, 0)] if key not in protected]


def collect(root: Path, keep: int) -> list[str]:
    """Remove old bundles of every cell; returns ``product|geography|run_key`` removed."""
    removed = []
    for cell in cells(root):
        with cell_lock(cell):
            for key in removable(cell, keep):
                folder = run_dir(cell, key)
                for path in [folder, *folder.rglob("*")]:
                    if path.is_dir():
                        os.chmod(path, 0o755)  # bundles are read-only
                shutil.rmtree(folder)
                removed.append(f"{cell.parent.name}|{cell.name}|{key}")
    return removed


def collect_work(root: Path, keep: int) -> list[str]:
    """Remove all but the newest ``keep`` work folders of each cell (by modification
    time; ``latest``'s target always stays); returns the folders removed."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    removed = []
    for cell in sorted(Path(root).glob("_work/*/*")):
        latest = cell / "latest"
        newest = os.readlink(latest) if latest.is_symlink() else None
        runs = [p for p in cell.iterdir() if p.is_dir() and not p.is_symlink()]
        runs.sort(key=lambda p: p.stat().st_mtime)
        for folder in runs[: max(len(runs) - keep, 0)]:
            if folder.name != newest:
                shutil.rmtree(folder)
                removed.append(str(folder.relative_to(root)))
    return removed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=int, default=5, help="bundles kept per cell")
    parser.add_argument("--root", default=None, help="artifacts root (default: DAGSTER_HOME's)")
    args = parser.parse_args(argv)
    root = artifacts_root(args.root)
    removed = collect(root, args.keep)
    sync(root / "_release" / INDEX_NAME, root)
    print(f"removed {len(removed)} run bundles: {removed}")
    work = collect_work(root, args.keep)
    print(f"removed {len(work)} work folders: {work}")


if __name__ == "__main__":
    main()
