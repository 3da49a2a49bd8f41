"""The run index: one DuckDB file of every run bundle's loss record and manifest.

Rebuildable from the bundles alone (``python -m microplex_assets.release.index rebuild``)
and updated incrementally by ``sync`` after each publication; both produce the same
rows. Every bundle row carries its loss record's ``schema_version`` and is read by the
extractor for that version (``EXTRACTORS``), so older records stay queryable next to new
ones; the raw loss record and manifest are kept as JSON too.

Tables: ``bundles`` (one row per run bundle: cell, run, gate summary, losses, weights,
H5 size, whether it is current), ``gates``, ``losses`` (method x split), ``families``
(per-family candidate / eCPS-method loss), ``reforms`` (benchmark suite budget impacts)
and ``meta`` (the index's own schema version).
"""

from __future__ import annotations

import argparse
import fcntl
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from microplex_assets.release.bundle import RUN_INFO, list_runs, run_dir
from microplex_assets.release.gates import gate_rows, is_blocking_failure, read_json
from microplex_assets.release.pointer import artifacts_root, pointer_state

INDEX_SCHEMA_VERSION = 1
INDEX_NAME = "run_index.duckdb"
SKIP = {"_work", "_release"}

TABLES = {
    "bundles": """product VARCHAR, geography VARCHAR, run_key VARCHAR, run_id VARCHAR,
        published_at VARCHAR, loss_record_schema_version INTEGER, year INTEGER,
        derived BOOLEAN, h5_size_bytes BIGINT, households BIGINT, nonzero_weights BIGINT,
        effective_sample_size DOUBLE, largest_weight_share DOUBLE,
        target_set_hash VARCHAR, gates_total INTEGER, blocking_failures INTEGER,
        is_current BOOLEAN, is_previous BOOLEAN, loss_record JSON, manifest JSON""",
    "gates": """product VARCHAR, geography VARCHAR, run_key VARCHAR, source VARCHAR,
        gate VARCHAR, passed BOOLEAN, severity VARCHAR, status VARCHAR, value DOUBLE,
        threshold DOUBLE, summary VARCHAR""",
    "losses": """product VARCHAR, geography VARCHAR, run_key VARCHAR, method VARCHAR,
        split VARCHAR, loss DOUBLE""",
    "families": """product VARCHAR, geography VARCHAR, run_key VARCHAR, family VARCHAR,
        targets INTEGER, candidate DOUBLE, ecps_method DOUBLE""",
    "reforms": """product VARCHAR, geography VARCHAR, run_key VARCHAR, reform VARCHAR,
        method VARCHAR, budget_impact_bn DOUBLE""",
}


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def extract_v2_v3(record: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Rows from a loss record of schema 2 or 3 (2 lacks validation / test splits: the
    splits present are indexed as they are)."""
    losses = [
        {"method": method, "split": split, "loss": _num(value)}
        for method, splits in (record.get("losses") or {}).items()
        for split, value in splits.items()
    ]
    families = [
        {"family": row.get("family"), "targets": row.get("targets"),
         "candidate": _num(row.get("candidate")), "ecps_method": _num(row.get("ecps_method"))}
        for row in record.get("family_losses") or []
    ]  # fmt: skip
    suite = record.get("microsim_benchmarks") or {}
    reforms = [
        {"reform": entry.get("reform"), "method": method,
         "budget_impact_bn": _num(values.get("budget_impact_bn"))}
        for entry in suite.get("reforms") or []
        for method, values in entry.items()
        if isinstance(values, dict)
    ]  # fmt: skip
    gates = [{**row, "value": _num(row["value"]), "threshold": _num(row["threshold"])}
             for row in gate_rows(record)]  # fmt: skip
    return {"losses": losses, "families": families, "reforms": reforms, "gates": gates}


def derived_losses(scores: dict[str, Any]) -> list[dict[str, Any]]:
    """A derived bundle's scores.json (fallback or fan-in, next to national|US) as loss
    rows: every method's train / held-out / all loss over all its targets."""
    return [
        {"method": row["method"], "split": split, "loss": _num(row.get(split))}
        for row in scores.get("scores") or []
        if row.get("level") == "all"
        for split in ("train", "held_out", "all")
    ]


EXTRACTORS: dict[int, Callable[[dict[str, Any]], dict[str, list[dict[str, Any]]]]] = {
    1: extract_v2_v3,
    2: extract_v2_v3,
    3: extract_v2_v3,
}


def bundle_rows(cell: Path, key: str) -> dict[str, list[dict[str, Any]]]:
    """Every index row of one run bundle (read from the bundle's files only)."""
    folder = run_dir(cell, key)
    product, geography = cell.parent.name, cell.name
    record = read_json(folder, "loss_record.json")
    manifest = read_json(folder, "manifest.json") or {}
    info = read_json(folder, RUN_INFO) or {}
    version = int(record.get("schema_version", 0)) if record else None
    if record is not None and version not in EXTRACTORS:
        raise ValueError(
            f"{folder}/loss_record.json: schema version {version} has no index extractor "
            f"(known: {sorted(EXTRACTORS)})"
        )
    rows = EXTRACTORS[version](record) if record else {t: [] for t in TABLES if t != "bundles"}
    if record is None:  # a derived cell: its scores against what it stands in for
        rows["losses"] = derived_losses(read_json(folder, "scores.json") or {})
    weights = (record or {}).get("weight_diagnostics") or {}
    state = pointer_state(cell)
    bundle = {
        "product": product, "geography": geography, "run_key": key,
        "run_id": (record or {}).get("run_id") or info.get("run_id"),
        "published_at": info.get("published_at"),
        "loss_record_schema_version": version,
        "year": manifest.get("year") or (record or {}).get("year"),
        "derived": "derived_from" in manifest,
        "h5_size_bytes": (manifest.get("h5") or {}).get("size_bytes"),
        "households": (manifest.get("record_counts") or {}).get("household"),
        "nonzero_weights": weights.get("nonzero_weights"),
        "effective_sample_size": _num(weights.get("effective_sample_size")),
        "largest_weight_share": _num(weights.get("largest_weight_share")),
        "target_set_hash": (record or {}).get("target_set_hash"),
        "gates_total": len(rows["gates"]),
        "blocking_failures": sum(is_blocking_failure(row) for row in rows["gates"]),
        "is_current": state.current == key,
        "is_previous": state.previous == key,
        "loss_record": json.dumps(record, sort_keys=True) if record else None,
        "manifest": json.dumps(manifest, sort_keys=True),
    }  # fmt: skip
    ids = {"product": product, "geography": geography, "run_key": key}
    out = {"bundles": [bundle]}
    for table in ("gates", "losses", "families", "reforms"):
        out[table] = [{**ids, **row} for row in rows[table]]
    return out


def cells(root: Path) -> Iterator[Path]:
    """Every ``<product>/<geography>`` folder that holds run bundles."""
    for product in sorted(p for p in Path(root).iterdir() if p.is_dir() and p.name not in SKIP):
        for cell in sorted(p for p in product.iterdir() if p.is_dir()):
            if list_runs(cell):
                yield cell


@contextmanager
def open_index(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The index, created if new; an flock serialises writers from concurrent runs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        connection = duckdb.connect(str(path))
        try:
            for table, columns in TABLES.items():
                connection.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
            connection.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR, value VARCHAR)")
            found = connection.execute("SELECT value FROM meta WHERE key = 'schema'").fetchall()
            if found and int(found[0][0]) != INDEX_SCHEMA_VERSION:
                raise ValueError(
                    f"{path}: index schema {found[0][0]}, this code writes "
                    f"{INDEX_SCHEMA_VERSION}: run `python -m microplex_assets.release.index "
                    "rebuild`"
                )
            if not found:
                connection.execute("INSERT INTO meta VALUES ('schema', ?)", [INDEX_SCHEMA_VERSION])
            yield connection
        finally:
            connection.close()
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _insert(connection: duckdb.DuckDBPyConnection, rows: dict[str, list[dict[str, Any]]]) -> None:
    for table, records in rows.items():
        if not records:
            continue
        columns = [c.split()[0] for c in TABLES[table].replace("\n", " ").split(",")]
        marks = ", ".join("?" for _ in columns)
        connection.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
            [[record.get(column) for column in columns] for record in records],
        )


def _refresh_pointers(connection: duckdb.DuckDBPyConnection, cell: Path) -> None:
    state = pointer_state(cell)
    connection.execute(
        "UPDATE bundles SET is_current = (run_key = ?), is_previous = (run_key = ?) "
        "WHERE product = ? AND geography = ?",
        [state.current or "", state.previous or "", cell.parent.name, cell.name],
    )


def sync(index_path: Path, root: Path) -> list[str]:
    """Add every bundle not yet indexed, drop those removed by retention and refresh which
    is current; returns the ``product|geography|run_key`` added (a bundle never changes,
    so its rows never do)."""
    added = []
    with open_index(index_path) as connection:
        known = set(
            connection.execute("SELECT product, geography, run_key FROM bundles").fetchall()
        )
        for product, geography, key in sorted(known):  # removed by retention: drop its rows
            if not run_dir(Path(root) / product / geography, key).is_dir():
                for name in TABLES:
                    connection.execute(
                        f"DELETE FROM {name} WHERE product = ? AND geography = ? AND run_key = ?",
                        [product, geography, key],
                    )
        for cell in cells(root):
            for key in list_runs(cell):
                if (cell.parent.name, cell.name, key) not in known:
                    _insert(connection, bundle_rows(cell, key))
                    added.append(f"{cell.parent.name}|{cell.name}|{key}")
            _refresh_pointers(connection, cell)
    return added


def rebuild(index_path: Path, root: Path) -> int:
    """Drop the index and index every bundle again; returns the number of bundles."""
    index_path = Path(index_path)
    for stale in (index_path, index_path.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    return len(sync(index_path, root))


def table(index_path: Path, query: str, params: list[Any] | None = None) -> Any:
    """A query's result as a pandas DataFrame (read-only use: the dashboard, tests)."""
    with open_index(index_path) as connection:
        return connection.execute(query, params or []).fetchdf()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["rebuild", "sync"])
    parser.add_argument("--root", default=None, help="artifacts root (default: DAGSTER_HOME's)")
    args = parser.parse_args(argv)
    root = artifacts_root(args.root)
    path = root / "_release" / INDEX_NAME
    if args.command == "rebuild":
        print(f"indexed {rebuild(path, root)} bundles into {path}")
    else:
        print(f"added {len(sync(path, root))} bundles to {path}")


if __name__ == "__main__":
    main()
