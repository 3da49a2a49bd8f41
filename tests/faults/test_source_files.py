"""Malformed, truncated and non-finite source files: every loader refuses them by name.

Each (loader, fault) pair is one case: the loader's good small files, one fault applied
to one file, and the load must raise ``SourceFormatError`` naming that file and, for a
column fault, the column. A load that returns a frame instead is a fault let through.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex_assets.sources.cps_taxcalc import REQUIRED_COLUMNS
from microplex_assets.sources.cps_taxcalc_files import (
    MissingWeightYearError,
    read_csv_file,
    read_weights,
    validate_cps,
)
from microplex_assets.sources.frame import SourceFormatError
from tests.faults.source_cases import CASES, FAULTS, LoaderCase, truncate


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_loader_refuses_a_faulty_file_naming_it(
    case: LoaderCase, fault: str, tmp_path: Path, record_property
) -> None:
    paths = case.write(tmp_path)
    case.load(paths)  # the good files load
    edit, column = FAULTS[fault](case)
    edit(paths[case.target])
    with pytest.raises(SourceFormatError) as error:
        case.load(paths)
    message = str(error.value)
    record_property("message", message)
    assert paths[case.target].name in message, message
    if column is not None:
        assert column.upper() in message.upper(), message


# The taxcalc CPS loader needs policyengine-us for its uprating; its reading layer
# (cps_taxcalc_files) is where a bad file is refused, so the faults are tried there.


def small_cps() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three one-unit households in taxcalc's cps.csv.gz columns, and their weights."""
    cps = pd.DataFrame(0, index=range(3), columns=list(REQUIRED_COLUMNS))
    cps["RECID"] = cps["h_seq"] = [1, 2, 3]
    cps["FLPDYR"], cps["fips"], cps["MARS"], cps["a_lineno"] = 2014, 6, 1, 1
    cps["XTOT"], cps["age_head"], cps["s006"] = 1, 40, 10_000
    cps["e00300"] = cps["e00200p"] = [30_000, 50_000, 0]
    weights = pd.DataFrame({f"WT{y}": [10_000, 20_000, 30_000] for y in range(2014, 2037)})
    return cps, weights


def read_and_check(cps_path: Path, weights_path: Path, year: int = 2024) -> np.ndarray:
    cps = read_csv_file(cps_path, "cps")
    validate_cps(cps, cps_path, REQUIRED_COLUMNS)
    return read_weights(weights_path, year, len(cps), cps, cps_path)[0]


@pytest.fixture()
def cps_files(tmp_path: Path) -> tuple[Path, Path]:
    cps, weights = small_cps()
    cps_path, weights_path = tmp_path / "cps.csv.gz", tmp_path / "cps_weights.csv.gz"
    cps.to_csv(cps_path, index=False, compression="gzip")
    weights.to_csv(weights_path, index=False, compression="gzip")
    assert read_and_check(cps_path, weights_path).tolist() == [100.0, 200.0, 300.0]
    return cps_path, weights_path


def _rewrite(path: Path, change) -> None:
    frame = pd.read_csv(path)
    change(frame).to_csv(path, index=False, compression="gzip")


def _set(column: str, value: object):
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.astype({column: object})
        frame.loc[1, column] = value
        return frame

    return change


CPS_FAULTS = {
    "truncated": (lambda p: truncate(p), None),
    "empty": (lambda p: p.write_bytes(b""), None),
    "missing_column": (lambda p: _rewrite(p, lambda f: f.drop(columns="e00300")), "e00300"),
    "text_in_numeric": (lambda p: _rewrite(p, _set("e00300", "n/a")), "e00300"),
    "inf_value": (lambda p: _rewrite(p, _set("e00300", np.inf)), "e00300"),
    "nan_value": (lambda p: _rewrite(p, _set("e00300", np.nan)), "e00300"),
    "negative_count": (lambda p: _rewrite(p, _set("XTOT", -1)), "XTOT"),
}


@pytest.mark.parametrize("fault", sorted(CPS_FAULTS))
def test_taxcalc_cps_refuses_a_faulty_file_naming_it(
    cps_files, fault: str, record_property
) -> None:
    cps_path, weights_path = cps_files
    edit, column = CPS_FAULTS[fault]
    edit(cps_path)
    with pytest.raises(SourceFormatError) as error:
        read_and_check(cps_path, weights_path)
    message = str(error.value)
    record_property("message", message)
    assert str(cps_path) in message, message
    if column is not None:
        assert f"'{column}'" in message or column in message, message


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("truncated", "cannot be read"),
        ("negative_weight", "'WT2024' has 1 negative weights"),
        ("inf_weight", "'WT2024' has 1 infinite values"),
        ("missing_year", "no column 'WT2024'"),
    ],
)
def test_taxcalc_weights_refused_naming_file_and_column(
    cps_files, fault: str, expected: str, record_property
) -> None:
    cps_path, weights_path = cps_files
    edits = {
        "truncated": lambda: truncate(weights_path),
        "negative_weight": lambda: _rewrite(weights_path, _set("WT2024", -100)),
        "inf_weight": lambda: _rewrite(weights_path, _set("WT2024", np.inf)),
        "missing_year": lambda: _rewrite(weights_path, lambda f: f.drop(columns="WT2024")),
    }
    edits[fault]()
    with pytest.raises(SourceFormatError, match=expected) as error:
        read_and_check(cps_path, weights_path)
    record_property("message", str(error.value))
    assert str(weights_path) in str(error.value)


def test_missing_weight_year_falls_back_to_s006_only_when_allowed(cps_files) -> None:
    cps_path, weights_path = cps_files
    cps = read_csv_file(cps_path, "cps")
    with pytest.raises(MissingWeightYearError, match="WT2014..WT2036.*cps_weights_allow_s006"):
        read_weights(weights_path, 2040, len(cps), cps, cps_path)
    weights, column = read_weights(weights_path, 2040, len(cps), cps, cps_path, allow_s006=True)
    assert column == "s006" and weights.tolist() == [100.0, 100.0, 100.0]
