"""Real reference microdata carried in ``sources/data/`` (SHA256 in SOURCES.json).

Two public record sets the default build may use without touching ``../shared``:
the real Forbes 400 list (2024-09-01 snapshot, with residence state) and 6,092 real SCF
2022 summary-extract records with net worth above $2.1m (the top tail a donor of wealth
and income composition draws from). Each loader checks the bytes against SOURCES.json and
the columns it promises, and names the file on any failure.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd

from microplex_assets.files import carried_file

DATA_DIR = Path(__file__).parent / "data"
SOURCES_FILE = "SOURCES.json"
FORBES_FILE = "forbes_us_top_400_2024-09-01.json"
SCF_TOP_TAIL_FILE = "scf_2022_top_tail_donors.json.gz"
FORBES_COLUMNS = (
    "rank",
    "name",
    "age",
    "networth_millions",
    "industry",
    "residence_state",
    "marital_status",
    "children",
)
SCF_TOP_TAIL_COLUMNS = (
    "age",
    "is_married",
    "wgt",
    "net_worth",
    "wageinc",
    "kginc",
    "intdivinc",
    "bussefarminc",
    "ssretinc",
    "houses",
    "mrthel",
)


class ReferenceDataError(ValueError):
    """A carried reference file is missing, altered or lacks a promised column."""


def carried_bytes(name: str) -> tuple[bytes, dict[str, Any]]:
    """The file's bytes and its SOURCES.json entry, after the SHA256 check."""
    data, entry = carried_file(DATA_DIR, name, ReferenceDataError, SOURCES_FILE)
    return data, {**entry, "file": f"microplex_assets/sources/data/{name}"}


def _require(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> pd.DataFrame:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ReferenceDataError(f"{DATA_DIR / name}: missing column(s) {missing}")
    return frame


def load_forbes_400() -> tuple[pd.DataFrame, dict[str, Any]]:
    """The real Forbes 400 (2024-09-01), one row per person, and its provenance."""
    data, provenance = carried_bytes(FORBES_FILE)
    frame = pd.DataFrame(json.loads(data))
    return _require(frame, FORBES_COLUMNS, FORBES_FILE), provenance


def load_scf_top_tail() -> tuple[pd.DataFrame, dict[str, Any]]:
    """The 6,092 real SCF 2022 top-tail records (weights ``wgt``) and their provenance."""
    data, provenance = carried_bytes(SCF_TOP_TAIL_FILE)
    frame = pd.read_json(io.BytesIO(data), orient="split", compression="gzip")
    return _require(frame, SCF_TOP_TAIL_COLUMNS, SCF_TOP_TAIL_FILE), provenance
