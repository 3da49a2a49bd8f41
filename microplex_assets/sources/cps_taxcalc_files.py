"""Reading and checking taxcalc's ``cps.csv.gz`` and ``cps_weights.csv.gz`` (stage 2).

Every problem is a ``SourceFormatError`` naming the file, the column and an example row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from microplex_assets.geography.states import FIPS_CODES
from microplex_assets.sources.frame import SourceFormatError

COUNT_COLUMNS = ("XTOT", "nu06", "nu13", "n24", "nu18", "n1820", "n21", "elderly_dependents")
NON_NEGATIVE_COLUMNS = (*COUNT_COLUMNS, "s006", "age_head", "age_spouse")


def read_csv_file(path: Path, what: str, usecols: list[str] | None = None) -> pd.DataFrame:
    """A gzip CSV, or a SourceFormatError naming the file."""
    if not path.is_file():
        raise SourceFormatError(f"{what} file not found: {path}")
    try:
        return pd.read_csv(path, usecols=usecols)
    except (ValueError, OSError, EOFError, pd.errors.ParserError) as error:
        raise SourceFormatError(f"{path}: cannot be read as a gzip CSV ({error})") from error


def require_numeric(frame: pd.DataFrame, path: Path, columns: tuple[str, ...] | list[str]) -> None:
    """Missing, non-numeric or empty cells in a required column are format errors."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SourceFormatError(
            f"{path}: missing column(s) {missing}; expected the taxcalc cps.csv.gz columns "
            f"including {list(columns)}"
        )
    for column in columns:
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            parsed = pd.to_numeric(values, errors="coerce")
            bad = values[parsed.isna() & values.notna()]
            example = bad.iloc[0] if len(bad) else values.iloc[0]
            raise SourceFormatError(
                f"{path}: column '{column}' expected numeric, found {values.dtype} "
                f"(e.g. {example!r} at row {bad.index[0] if len(bad) else 0})"
            )
        infinite = np.isinf(values.to_numpy(dtype=float))
        if infinite.any():
            raise SourceFormatError(
                f"{path}: column '{column}' has {int(infinite.sum())} infinite values "
                f"(first at row {int(np.flatnonzero(infinite)[0])}); expected finite numbers"
            )
        empty = values.isna()
        if empty.any():
            raise SourceFormatError(
                f"{path}: column '{column}' has {int(empty.sum())} empty values "
                f"(first at row {int(np.flatnonzero(empty.to_numpy())[0])}); expected numeric"
            )


def validate_cps(cps: pd.DataFrame, path: Path, required: tuple[str, ...]) -> None:
    """Required columns numeric and complete; counts non-negative; MARS, state FIPS valid
    and one state per household."""
    require_numeric(cps, path, required)
    for column in NON_NEGATIVE_COLUMNS:
        negative = cps[column] < 0
        if negative.any():
            row = int(np.flatnonzero(negative.to_numpy())[0])
            raise SourceFormatError(
                f"{path}: column '{column}' has {int(negative.sum())} negative values "
                f"(e.g. {cps[column].iloc[row]} at row {row}); expected counts >= 0"
            )
    bad_mars = ~cps["MARS"].isin([1, 2, 3, 4, 5])
    if bad_mars.any():
        raise SourceFormatError(
            f"{path}: column 'MARS' has values {sorted(cps.loc[bad_mars, 'MARS'].unique())[:5]}; "
            "expected filing status 1-5"
        )
    bad_fips = ~cps["fips"].isin(FIPS_CODES)  # 50 states and DC
    if bad_fips.any():
        raise SourceFormatError(
            f"{path}: column 'fips' has {int(bad_fips.sum())} values that are not a state "
            f"FIPS code (e.g. {sorted(cps.loc[bad_fips, 'fips'].unique())[:5]}); "
            "expected one of the 50 states or DC"
        )
    states = cps.groupby(["FLPDYR", "h_seq"])["fips"].nunique()
    split = states[states > 1]
    if len(split):
        year, h_seq = split.index[0]
        raise SourceFormatError(
            f"{path}: column 'fips' differs within {len(split)} household(s) "
            f"(e.g. FLPDYR={year}, h_seq={h_seq}); expected one state per household"
        )


class MissingWeightYearError(SourceFormatError):
    """The weights file has no ``WT<year>`` column and the s006 fallback was not allowed."""


def read_weights(
    path: Path,
    year: int,
    rows: int,
    cps: pd.DataFrame,
    cps_path: Path,
    allow_s006: bool = False,
) -> tuple[np.ndarray, str]:
    """Tax-unit weights in persons: ``WT<year>`` from the weights file.

    Without that column the only other weight is ``s006``, the survey years' own weight
    (2012-14), which silently mis-states the population of any other year: an error
    unless ``allow_s006`` (build setting ``cps_weights_allow_s006``) says to use it; the
    loader then records the fallback in provenance (``weight_fallback``).
    """
    if not path.is_file():
        raise SourceFormatError(f"weights file not found: {path}")
    try:
        columns = list(pd.read_csv(path, nrows=0).columns)
    except (ValueError, OSError, EOFError, pd.errors.ParserError) as error:
        raise SourceFormatError(f"{path}: cannot be read as a gzip CSV ({error})") from error
    if not columns:
        raise SourceFormatError(f"{path}: no columns; expected WT2014..WT2036")
    wanted = f"WT{year}"
    column = wanted if wanted in columns else None
    if column is None and not allow_s006:
        years = sorted(c for c in columns if c.startswith("WT"))
        span = f"{years[0]}..{years[-1]}" if years else "no WT<year> column"
        raise MissingWeightYearError(
            f"{path}: no column '{wanted}' for build year {year} (the file has {span}); "
            f"expected WT{year}. The only other weight is s006 in {cps_path}, the survey "
            "years' own weight: set cps_weights_allow_s006=true to use it (recorded in "
            "provenance), or choose a year the weights file covers"
        )
    weights_frame = read_csv_file(path, "weights", usecols=[column or columns[0]])
    if len(weights_frame) != rows:
        raise SourceFormatError(
            f"{path}: {len(weights_frame)} weight rows but {cps_path} has {rows} records; "
            "expected one weight row per cps record, in the same order"
        )
    if column is None:
        values, column_name, source = cps["s006"], "s006", cps_path
    else:
        require_numeric(weights_frame, path, [column])
        values, column_name, source = weights_frame[column], column, path
    negative = values < 0
    if negative.any():
        row = int(np.flatnonzero(negative.to_numpy())[0])
        raise SourceFormatError(
            f"{source}: column '{column_name}' has {int(negative.sum())} negative weights "
            f"(e.g. {values.iloc[row]} at row {row}); expected weights >= 0"
        )
    # Both files store weights in hundredths of a person.
    return values.to_numpy(dtype=float) / 100.0, column_name
