"""Validated reading of public delimited files: every error names file, column and problem.

All real-format loaders (CPS ASEC, PUF, ACS PUMS, SIPP, SCF, Forbes list) read through
``read_columns`` so that a missing column, a non-numeric value or a negative weight is
reported the same way everywhere, and every frame records the SHA256 of the bytes read.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from microplex_assets.files import file_sha256
from microplex_assets.sources.frame import SourceFormatError

ColumnKind = Literal["int", "float", "str"]
# what pandas raises on a file it cannot parse or decompress (a cut gzip raises EOFError)
UNREADABLE = (
    pd.errors.EmptyDataError,
    pd.errors.ParserError,
    UnicodeDecodeError,
    EOFError,
    OSError,
)


@dataclass(frozen=True)
class ColumnSpec:
    """One expected column: its name in the file, its kind, and what it may hold."""

    name: str
    kind: ColumnKind = "float"
    required: bool = True
    non_negative: bool = False
    allowed: tuple[Any, ...] | None = None  # closed code list (e.g. MARS 1..5)


def file_provenance(path: Path, kind: str = "real", **extra: Any) -> dict[str, Any]:
    """Provenance entry of one input file: path, SHA256, bytes, real/synthetic."""
    path = Path(path)
    return {"file": str(path), "sha256": file_sha256(path), "bytes": path.stat().st_size,
            "kind": kind, **extra}  # fmt: skip


def read_columns(
    path: Path | str,
    columns: Sequence[ColumnSpec],
    source: str,
    sep: str = ",",
    upper_case_header: bool = False,
) -> pd.DataFrame:
    """Read the listed columns of a delimited file, checking presence, type and range.

    ``upper_case_header`` matches header names case-insensitively (public files differ in
    case between years: the SIPP and SCF extracts ship both). Optional columns that are
    absent come back missing, not as zeros, so callers decide what absence means.
    """
    path = Path(path)
    if not path.exists():
        raise SourceFormatError(f"{source}: file {path} does not exist")
    try:
        header = list(pd.read_csv(path, sep=sep, nrows=0).columns)
    except UNREADABLE as error:
        raise SourceFormatError(
            f"{source}: {path} is not a readable delimited file: {error}"
        ) from error
    lookup = {(h.upper() if upper_case_header else h): h for h in header}
    wanted = {spec.name: lookup.get(spec.name.upper() if upper_case_header else spec.name)
              for spec in columns}  # fmt: skip
    missing = [spec.name for spec in columns if spec.required and wanted[spec.name] is None]
    if missing:
        raise SourceFormatError(
            f"{source}: {path} lacks required column(s) {missing}; "
            f"found {len(header)} columns starting {header[:8]}"
        )
    present = {name: original for name, original in wanted.items() if original is not None}
    try:
        raw = pd.read_csv(
            path, sep=sep, usecols=list(present.values()), dtype=str, keep_default_na=False
        ).rename(columns={original: name for name, original in present.items()})
    except UNREADABLE as error:  # e.g. a gzip file cut short
        raise SourceFormatError(f"{source}: {path} cannot be read to its end: {error}") from error
    check_complete_rows(raw, path, source, sep, len(header))
    out = pd.DataFrame(index=raw.index)
    for spec in columns:
        if spec.name in raw.columns:
            out[spec.name] = coerce_column(raw[spec.name], spec, path, source)
    return out


def check_complete_rows(raw: pd.DataFrame, path: Path, source: str, sep: str, fields: int) -> None:
    """A row with fewer fields than the header (a file cut short, a broken line) is an
    error: pandas would pad it with blanks and the cut record would load as zeros."""
    short = raw.isna().any(axis=1).to_numpy()  # keep_default_na=False: only absent fields
    if short.any():
        row = int(np.flatnonzero(short)[0])
        raise SourceFormatError(
            f"{source}: {path} row {row + 1} has fewer fields than the header's {fields} "
            f"({int(short.sum())} such rows): a truncated or malformed line"
        )
    if path.suffix in {".gz", ".bz2", ".zip", ".xz", ".zst"}:
        return  # a cut compressed file fails to decompress instead
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 65_536))
        tail = handle.read()
    if not tail or tail.endswith((b"\n", b"\r")):
        return  # ends on a line break: no line was cut (a short header is pandas' business)
    last = tail.decode("utf-8", errors="replace").splitlines()[-1]
    cells = next(csv.reader([last], delimiter=sep), [])
    if len(cells) < fields:
        raise SourceFormatError(
            f"{source}: {path} last line has {len(cells)} of the header's {fields} fields: "
            "the file is truncated"
        )


def coerce_column(values: pd.Series, spec: ColumnSpec, path: Path, source: str) -> pd.Series:
    """Convert one text column to its kind; the error quotes the first offending row."""
    stripped = values.str.strip()
    if spec.kind == "str":
        result: pd.Series = stripped
    else:
        numeric = pd.to_numeric(stripped.replace("", np.nan), errors="coerce")
        bad = numeric.isna() & stripped.ne("")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise SourceFormatError(
                f"{source}: {path} column '{spec.name}' must be {spec.kind}; "
                f"row {row + 1} holds {stripped.iloc[row]!r} ({int(bad.sum())} bad values)"
            )
        infinite = np.isinf(numeric.to_numpy(dtype=float))
        if infinite.any():  # "inf" parses as a number; no public file holds one
            row = int(np.flatnonzero(infinite)[0])
            raise SourceFormatError(
                f"{source}: {path} column '{spec.name}' must be finite; "
                f"row {row + 1} holds {stripped.iloc[row]!r}"
            )
        if spec.kind == "int":
            fractional = numeric.notna() & (numeric != np.floor(numeric))
            if fractional.any():
                row = int(np.flatnonzero(fractional.to_numpy())[0])
                raise SourceFormatError(
                    f"{source}: {path} column '{spec.name}' must be integer; "
                    f"row {row + 1} holds {stripped.iloc[row]!r}"
                )
            result = numeric.astype("Int64")
        else:
            result = numeric.astype(float)
        if spec.non_negative and (result < 0).any():
            row = int(np.flatnonzero((result < 0).fillna(False).to_numpy())[0])
            raise SourceFormatError(
                f"{source}: {path} column '{spec.name}' must be non-negative; "
                f"row {row + 1} holds {stripped.iloc[row]!r}"
            )
    if spec.allowed is not None:
        outside = result.notna() & ~result.isin(spec.allowed)
        if outside.any():
            row = int(np.flatnonzero(outside.to_numpy())[0])
            raise SourceFormatError(
                f"{source}: {path} column '{spec.name}' holds {stripped.iloc[row]!r} at row "
                f"{row + 1}; expected one of {list(spec.allowed)}"
            )
    return result


def check_link(
    child: pd.DataFrame,
    parent: pd.DataFrame,
    keys: Sequence[str],
    source: str,
    child_path: Path | str,
    parent_path: Path | str,
) -> None:
    """Every child row's key must exist in the parent file; name both files and the key."""
    known = pd.MultiIndex.from_frame(parent[list(keys)].astype(str))
    theirs = pd.MultiIndex.from_frame(child[list(keys)].astype(str))
    orphan = ~theirs.isin(known)
    if orphan.any():
        first = child.loc[orphan, list(keys)].iloc[0].to_dict()
        raise SourceFormatError(
            f"{source}: {int(orphan.sum())} rows of {child_path} have {list(keys)} not found in "
            f"{parent_path} (first: {first})"
        )
