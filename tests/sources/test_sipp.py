"""The SIPP loader on a small pu2023.csv written in the exact public format.

The public file is pipe-delimited with an upper-case header, one row per person-month,
SSUID a 12-digit text id and blank cells for "not in universe".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from microplex_assets.sources.frame import SourceFormatError
from microplex_assets.sources.sipp import load_sipp

HEADER = (
    "SSUID|PNUM|MONTHCODE|ERESIDENCEID|SPANEL|SWAVE|WPFINWGT|TAGE|ESEX|TEHC_ST|TPTOTINC|"
    "TPEARN|TJB1_MSUM|EJB1_JBORSE|TJB2_MSUM|EJB2_JBORSE|TSSSAMT|TSSI_AMT|RSNAP_MNYN|"
    "TSNAP_AMT|TTANF_AMT|TWIC_AMT|RDIS"
)
A, B = "000114552134", "000220119871"


FIELDS = ("age", "sex", "st", "tot", "earn", "j1", "t1", "j2", "t2", "ss", "ssi", "snapyn")
FIELDS += ("snap", "tanf", "wic", "dis")
# A full-time wage earner in CA: blank ("-") where the person is not in a program's universe.
DEFAULT_VALUES = ("40", "1", "6", "4000", "3000", "3000", "1", "-", "-", "-", "-", "2")
DEFAULT = dict(zip(FIELDS, (*DEFAULT_VALUES, "-", "-", "-", "2"), strict=True))
SPOUSE = {"sex": "2", "j1": "-", "t1": "-", "earn": "-", "tot": "300", "snapyn": "1"}
SPOUSE |= {"snap": "300", "dis": "1"}
RETIREE = {"age": "70", "st": "36", "j1": "-", "t1": "-", "earn": "-", "tot": "1800"}
RETIREE |= {"ss": "1500", "ssi": "300"}


def _months(ssuid: str, pnum: int, residence: str, months: range, **row: str) -> list[str]:
    """One line per month; ``row`` sets monthly values ("-" = blank); weights rise by month."""
    values = [(DEFAULT | row)[key].replace("-", "") for key in FIELDS]
    fixed = [ssuid, str(pnum)]
    return [
        "|".join([*fixed, str(m), residence, "2020", "4", f"{1000 + m}.5", *values]) for m in months
    ]


def _rows() -> list[str]:
    return [
        # household A/1: a wage earner with a self-employed second job, full year
        *_months(A, 101, "1", range(1, 13), j2="500", t2="2"),
        # spouse: SNAP all year, disabled, no earnings
        *_months(A, 102, "1", range(1, 13), **SPOUSE),
        # household B/2: a retiree seen for 8 months
        *_months(B, 101, "2", range(1, 9), **RETIREE),
    ]


def _write(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.fixture()
def good(tmp_path: Path) -> Path:
    return _write(tmp_path / "pu2023.csv", _rows())


def test_good_file_loads_as_person_years(good):
    frame = load_sipp(good)
    household, person = frame.tables["household"], frame.tables["person"]
    assert frame.year == 2022  # pu2023 describes calendar 2022
    assert frame.provenance["kind"] == "real"
    assert len(frame.provenance["files"]["sipp"]["sha256"]) == 64
    assert frame.provenance["person_months"] == 32
    assert len(person) == 3 and len(household) == 2
    assert household["state_fips"].tolist() == [6, 36]
    assert household["ssuid"].tolist() == [A, B]  # leading zeros kept
    # weights from the last observed month: December (1012.5) and August (1008.5)
    assert household["household_weight"].tolist() == [1012.5, 1008.5]
    earner, spouse, retiree = (person.iloc[i] for i in range(3))
    assert earner["employment_income_before_lsr"] == pytest.approx(12 * 3000)
    assert earner["self_employment_income_before_lsr"] == pytest.approx(12 * 500)
    assert earner["months_observed"] == 12 and not earner["is_disabled"]
    assert spouse["snap_reported"] == pytest.approx(12 * 300)
    assert spouse["is_disabled"] and spouse["is_female"]
    assert retiree["months_observed"] == 8 and retiree["last_month"] == 8
    assert retiree["social_security_retirement"] == pytest.approx(8 * 1500)
    assert retiree["ssi_reported"] == pytest.approx(8 * 300)
    assert retiree["total_income_reported"] == pytest.approx(8 * 1800)
    assert frame.provenance["persons_with_partial_year"] == 1
    assert person["household_id"].tolist() == [1, 1, 2]


def test_household_key_shhadid_accepted(tmp_path):
    path = _write(tmp_path / "pu2023.csv", _rows(), HEADER.replace("ERESIDENCEID", "SHHADID"))
    assert load_sipp(path).provenance["household_key"] == ["SSUID", "SHHADID"]


def test_year_needed_when_file_name_has_none(tmp_path):
    path = _write(tmp_path / "extract.csv", _rows())
    with pytest.raises(SourceFormatError, match=r"extract\.csv.*year"):
        load_sipp(path)
    assert load_sipp(path, year=2022).year == 2022


def test_missing_column(tmp_path):
    path = _write(tmp_path / "pu2023.csv", _rows(), HEADER.replace("WPFINWGT", "WPFINWGTX"))
    with pytest.raises(SourceFormatError, match=r"pu2023\.csv lacks.*WPFINWGT"):
        load_sipp(path)


def test_text_in_numeric_column(tmp_path):
    rows = _rows()
    rows[3] = rows[3].replace("|4000|", "|n/a|")
    path = _write(tmp_path / "pu2023.csv", rows)
    with pytest.raises(SourceFormatError, match=r"pu2023\.csv column 'TPTOTINC'.*'n/a'"):
        load_sipp(path)


def test_duplicate_person_month(tmp_path):
    rows = _rows()
    path = _write(tmp_path / "pu2023.csv", [*rows, rows[0]])
    with pytest.raises(SourceFormatError, match=r"pu2023\.csv.*duplicate person-months.*MONTHCODE"):
        load_sipp(path)


def test_bad_monthcode(tmp_path):
    rows = _rows()
    rows[0] = rows[0].replace(f"{A}|101|1|", f"{A}|101|13|")
    path = _write(tmp_path / "pu2023.csv", rows)
    with pytest.raises(SourceFormatError, match=r"pu2023\.csv column 'MONTHCODE' holds '13'"):
        load_sipp(path)
