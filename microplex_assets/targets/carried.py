"""The public tables the project carries (``data/``), read only from inside the package.

The default build must not depend on ``../shared``: every table a provider uses is a copy,
unchanged, listed in ``data/SOURCES.json`` with its agency, table, year, original path and
SHA256. Reading checks the columns a provider needs (a malformed table fails naming the
file and the column) and then the hash (a table changed without updating SOURCES.json
fails instead of silently moving targets).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd

DATA_DIR = Path(__file__).parent / "data"
SOURCES_FILE = "SOURCES.json"


class CarriedTableError(ValueError):
    """A carried table is missing, malformed, or not the file SOURCES.json describes."""


def carried_sources(data_dir: Path = DATA_DIR) -> dict[str, dict[str, Any]]:
    """SOURCES.json: per file its agency, table, year, original path and sha256."""
    path = Path(data_dir) / SOURCES_FILE
    if not path.is_file():
        raise CarriedTableError(f"{path}: sources file missing")
    return json.loads(path.read_text())


def read_carried_csv(path: Path, required: tuple[str, ...]) -> tuple[pd.DataFrame, str]:
    """The table at ``path`` and its sha256; raises naming the file and any missing column.

    Lines starting with '#' are provenance comments some tables carry.
    """
    path = Path(path)
    if not path.is_file():
        raise CarriedTableError(f"{path}: carried table not found")
    data = path.read_bytes()
    try:
        frame = pd.read_csv(io.BytesIO(data), comment="#")
    except Exception as error:  # a parse error should still name the file
        raise CarriedTableError(f"{path}: cannot be read as CSV ({error})") from error
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise CarriedTableError(f"{path}: missing column(s) {missing}; found {list(frame.columns)}")
    if frame.empty:
        raise CarriedTableError(f"{path}: no rows")
    return frame, hashlib.sha256(data).hexdigest()


def carried_table(
    name: str, required: tuple[str, ...], data_dir: Path = DATA_DIR
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A carried table and its SOURCES.json entry (with ``file``), hash checked."""
    sources = carried_sources(data_dir)
    if name not in sources:
        raise CarriedTableError(f"{Path(data_dir) / name}: not listed in {SOURCES_FILE}")
    frame, digest = read_carried_csv(Path(data_dir) / name, required)
    entry = dict(sources[name])
    if entry.get("sha256") != digest:
        raise CarriedTableError(
            f"{Path(data_dir) / name}: sha256 {digest} differs from {SOURCES_FILE} "
            f"({entry.get('sha256')}); update the sources file with the table"
        )
    entry["file"] = f"microplex_assets/targets/data/{name}"
    return frame, entry
