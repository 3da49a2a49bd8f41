"""The ACS PUMS loader on small psam_p / psam_h files written in the exact public format.

Headers are upper case, SERIALNO is text (2022HU0000001 / 2022GQ0000001), PUMA and ST are
zero-padded, ADJINC/ADJHSG carry 6 implied decimals and "not in universe" is a blank cell.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from microplex_assets.sources.acs_pums import load_acs_pums
from microplex_assets.sources.frame import SourceFormatError

ADJINC = "1042311"
HOUSING_HEADER = (
    "RT,SERIALNO,DIVISION,PUMA,REGION,ST,ADJHSG,ADJINC,WGTP,NP,TYPEHUGQ,MRGP,RNTP,VALP,TEN,"
    "HINCP,TAXAMT,WGTP1,WGTP2"
)
HOUSING_ROWS = [
    # owner with mortgage, 2 persons, CA
    f"H,2022HU0000001,9,00101,4,06,1000000,{ADJINC},120,2,1,1500,,650000,1,95000,7200,118,121",
    # renter, 1 person, NY; ADJHSG 1.01 to check the housing factor
    f"H,2022HU0000002,2,03701,1,36,1010000,{ADJINC},80,1,1,,1200,,3,40000,,79,82",
    # vacant unit: no persons
    f"H,2022HU0000003,2,03701,1,36,1000000,{ADJINC},60,0,1,,,,,,,58,61",
    # group-quarters placeholder: WGTP 0, NP 1
    f"H,2022GQ0000004,5,01000,3,12,1000000,{ADJINC},0,1,3,,,,,,,0,0",
]
PERSON_HEADER = (
    "RT,SERIALNO,DIVISION,SPORDER,PUMA,REGION,ST,ADJINC,PWGTP,AGEP,SEX,DIS,HINS4,INTP,OIP,"
    "PAP,RETP,SEMP,SSIP,SSP,WAGP,PINCP,PWGTP1"
)
PERSON_ROWS = [
    f"P,2022HU0000001,9,01,00101,4,06,{ADJINC},125,45,1,2,2,1000,0,0,0,0,0,0,80000,81000,120",
    f"P,2022HU0000001,9,02,00101,4,06,{ADJINC},130,12,2,2,1,,,,,,,,,,131",
    f"P,2022HU0000002,2,01,03701,1,36,{ADJINC},82,67,2,1,1,0,0,0,5000,0,900,18000,0,23900,80",
    f"P,2022GQ0000004,5,01,01000,3,12,{ADJINC},35,20,1,1,1,0,0,0,0,0,0,6000,0,6000,33",
]


def _write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _drop(header: str, rows: list[str], column: str) -> tuple[str, list[str]]:
    """Header and rows without one column, as a file from a different release would be."""
    index = header.split(",").index(column)

    def cut(line: str) -> str:
        cells = line.split(",")
        return ",".join(cells[:index] + cells[index + 1 :])

    return cut(header), [cut(row) for row in rows]


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    person = _write(tmp_path / "psam_p06.csv", PERSON_HEADER, PERSON_ROWS)
    housing = _write(tmp_path / "psam_h06.csv", HOUSING_HEADER, HOUSING_ROWS)
    return person, housing


def test_good_files_load(files):
    frame = load_acs_pums(*files)
    household, person = frame.tables["household"], frame.tables["person"]
    assert frame.year == 2022
    assert frame.provenance["kind"] == "real"
    assert len(frame.provenance["files"]["person"]["sha256"]) == 64
    assert len(household) == 3 and len(person) == 4  # vacant unit dropped
    assert frame.provenance["vacant_units_dropped"] == 1
    assert frame.provenance["group_quarters_households"] == 1
    assert household["state_fips"].tolist() == [6, 36, 12]
    assert household["puma"].tolist() == ["00101", "03701", "01000"]
    # GQ household takes its person's PWGTP
    assert household["household_weight"].tolist() == [120.0, 80.0, 35.0]
    assert household["is_group_quarters"].tolist() == [False, False, True]
    assert household["tenure_type"].tolist() == ["OWNED_WITH_MORTGAGE", "RENTED", "NONE"]
    assert frame.link_report()["person->household"]["unresolved"] == 0

    factor = 1.042311
    head = person.iloc[0]
    assert head["employment_income_before_lsr"] == pytest.approx(80000 * factor)
    assert head["real_estate_taxes"] == pytest.approx(7200)
    assert head["is_household_head"] and not head["is_female"]
    child = person.iloc[1]
    assert child["employment_income_before_lsr"] == 0  # blank = not in universe
    assert child["receives_medicaid"] and child["real_estate_taxes"] == 0
    renter = person.iloc[2]
    assert renter["pre_subsidy_rent"] == pytest.approx(12 * 1200 * 1.01)
    assert renter["social_security_retirement"] == pytest.approx(18000 * factor)
    assert renter["social_security_disability"] == 0
    assert renter["ssi_reported"] == pytest.approx(900 * factor)
    assert renter["is_disabled"]
    gq = person.iloc[3]
    assert gq["social_security_disability"] == pytest.approx(6000 * factor)
    assert person["household_id"].tolist() == [1, 1, 2, 3]


def test_missing_column_names_file_and_column(files):
    person, housing = files
    _write(person, *_drop(PERSON_HEADER, PERSON_ROWS, "HINS4"))
    with pytest.raises(SourceFormatError, match=r"psam_p06\.csv.*HINS4"):
        load_acs_pums(person, housing)


def test_text_in_numeric_column(files):
    person, housing = files
    rows = [HOUSING_ROWS[0].replace(",120,2,", ",abc,2,"), *HOUSING_ROWS[1:]]
    _write(housing, HOUSING_HEADER, rows)
    with pytest.raises(SourceFormatError, match=r"psam_h06\.csv column 'WGTP'.*'abc'"):
        load_acs_pums(person, housing)


def test_person_serial_missing_from_housing(files):
    person, housing = files
    _write(housing, HOUSING_HEADER, HOUSING_ROWS[1:])
    with pytest.raises(SourceFormatError, match=r"psam_p06\.csv.*SERIALNO.*psam_h06\.csv"):
        load_acs_pums(person, housing)


def test_malformed_serial_and_duplicate_person(files):
    person, housing = files
    _write(person, PERSON_HEADER, [PERSON_ROWS[0].replace("2022HU0000001", "22-1"), *PERSON_ROWS])
    with pytest.raises(SourceFormatError, match=r"psam_p06\.csv column 'SERIALNO'"):
        load_acs_pums(person, housing)
    _write(person, PERSON_HEADER, [*PERSON_ROWS, PERSON_ROWS[0]])
    with pytest.raises(SourceFormatError, match=r"psam_p06\.csv.*duplicate.*SPORDER"):
        load_acs_pums(person, housing)


def test_state_column_2023_name_and_absent(files):
    person, housing = files
    _write(housing, HOUSING_HEADER.replace(",ST,", ",STATE,"), HOUSING_ROWS)
    assert load_acs_pums(person, housing).tables["household"]["state_fips"].tolist() == [6, 36, 12]
    _write(housing, *_drop(HOUSING_HEADER, HOUSING_ROWS, "ST"))
    with pytest.raises(SourceFormatError, match=r"psam_h06\.csv.*'ST'.*'STATE'"):
        load_acs_pums(person, housing)
