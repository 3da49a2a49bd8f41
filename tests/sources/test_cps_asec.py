"""The CPS ASEC loader on tiny files written in the Census public-use CSV format.

Three occupied households and one non-interview household, with the exact upper-case
headers of ``hhpub24.csv`` / ``ffpub24.csv`` / ``pppub24.csv`` (plus columns the loader
ignores), weights stored x 100 as the public files do.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from microplex_assets.source_plan.plan import scaffold_shortfalls
from microplex_assets.sources.cps_asec import QUALIFIED_DIVIDEND_SHARE, load_cps_asec
from microplex_assets.sources.frame import SourceFormatError

YEAR = 2024


def household_file() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "HRECORD": [1, 1, 1, 1],
            "H_SEQ": [1, 2, 3, 4],
            "H_YEAR": [2024, 2024, 2024, 2024],
            "GESTFIPS": [6, 36, 48, 12],
            "H_NUMPER": [4, 2, 1, 0],
            "HSUP_WGT": [152345, 98000, 120050, 0],
            "GTCO": [37, 61, 0, 0],
        }
    )


def family_file() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "FRECORD": [2, 2, 2],
            "FH_SEQ": [1, 2, 3],
            "FFPOS": [1, 1, 1],
            "FKIND": [1, 2, 3],
            "FSUP_WGT": [152345, 98000, 120050],
        }
    )


def person_file() -> pd.DataFrame:
    rows = [
        # PH_SEQ PF_SEQ P_SEQ LINE AGE SEX MARITL SPOUSE WGT TAX_ID SPM DEP WSAL SEMP DIV SS
        (1, 1, 1, 1, 41, 1, 1, 2, 152345, 101, 1001, 0, 60000, 0, 400, 0),
        (1, 1, 2, 2, 39, 2, 1, 1, 152345, 101, 1001, 0, 35000, 0, 0, 0),
        (1, 1, 3, 3, 10, 2, 7, 0, 150010, 101, 1001, 1, 0, 0, 0, 0),
        (1, 1, 4, 4, 6, 1, 7, 0, 150010, 101, 1001, 1, 0, 0, 0, 0),
        (2, 1, 1, 1, 70, 2, 4, 0, 98000, 201, 2001, 0, 0, 0, 0, 18000),
        (2, 1, 2, 2, 30, 1, 7, 0, 97550, 202, 2001, 0, 40000, 0, 0, 0),
        (3, 1, 1, 1, 45, 1, 7, 0, 120050, 301, 3001, 0, 0, -5000, 1000, 6000),
    ]
    columns = ["PH_SEQ", "PF_SEQ", "P_SEQ", "A_LINENO", "A_AGE", "A_SEX", "A_MARITL",
               "A_SPOUSE", "MARSUPWT", "TAX_ID", "SPM_ID", "DEP_STAT", "WSAL_VAL",
               "SEMP_VAL", "DIV_VAL", "SS_VAL"]  # fmt: skip
    person = pd.DataFrame(rows, columns=columns)
    person["PERIDNUM"] = [f"{i:022d}" for i in range(1, len(person) + 1)]
    person["PRDTRACE"] = 1
    zeros = ["FRSE_VAL", "RNT_VAL", "SSI_VAL", "UC_VAL", "ANN_VAL", "CAP_VAL", "CSP_VAL",
             "PAW_VAL"]  # fmt: skip
    for column in zeros:
        person[column] = 0
    person["INT_VAL"] = [120, 0, 0, 0, 900, 15, 0]
    person["RNT_VAL"] = [0, 0, 0, 0, 0, 0, -1200]
    person["PNSN_VAL"] = [0, 0, 0, 0, 12000, 0, 0]
    person["ANN_VAL"] = [0, 0, 0, 0, 800, 0, 0]
    person["UC_VAL"] = [0, 3000, 0, 0, 0, 0, 0]
    person["SSI_VAL"] = [0, 0, 0, 0, 0, 0, 2400]
    return person


def write_files(
    folder: Path,
    person: pd.DataFrame | None = None,
    household: pd.DataFrame | None = None,
    family: pd.DataFrame | None = None,
) -> tuple[Path, Path, Path]:
    paths = (folder / "pppub24.csv", folder / "hhpub24.csv", folder / "ffpub24.csv")
    frames = (
        person if person is not None else person_file(),
        household if household is not None else household_file(),
        family if family is not None else family_file(),
    )
    for frame, path in zip(frames, paths, strict=True):
        frame.to_csv(path, index=False)
    return paths


def test_good_files_load_with_counts_links_and_weights(tmp_path: Path) -> None:
    paths = write_files(tmp_path)
    frame = load_cps_asec(*paths, year=YEAR)
    household, family, person = (frame.tables[t] for t in ("household", "family", "person"))
    tax_unit = frame.tables["tax_unit"]

    assert frame.source == "cps_asec" and frame.year == YEAR
    assert len(household) == 3 and len(family) == 3 and len(person) == 7 and len(tax_unit) == 4
    assert frame.provenance["dropped_households_without_persons"] == 1
    assert frame.provenance["household_person_count_mismatches"] == 0
    assert frame.provenance["income_year"] == YEAR - 1
    assert frame.provenance["kind"] == "real"
    assert frame.provenance["uprating"]["status"] == "not uprated"
    for name, path in zip(("person", "household", "family"), paths, strict=True):
        entry = frame.provenance["files"][name]
        assert entry["file"] == str(path) and len(entry["sha256"]) == 64
    assert all(c["unresolved"] == 0 for c in frame.link_report().values())
    assert set(frame.link_report()) == {
        "person->household", "person->family", "person->tax_unit", "family->household",
        "tax_unit->household",
    }  # fmt: skip
    assert scaffold_shortfalls(frame) == []

    # Implied decimals: 152345 -> 1523.45.
    assert household.set_index("household_id")["household_weight"].to_dict() == {
        1: 1523.45, 2: 980.0, 3: 1200.5,
    }  # fmt: skip
    assert household["state_fips"].tolist() == [6, 36, 48]
    assert family["family_weight"].tolist() == [1523.45, 980.0, 1200.5]
    assert person.set_index("person_id").loc[103, "person_weight"] == pytest.approx(1500.10)


def test_roles_and_amounts_are_mapped(tmp_path: Path) -> None:
    person = load_cps_asec(*write_files(tmp_path), year=YEAR).tables["person"]
    by_id = person.set_index("person_id")

    assert by_id.loc[[101, 102, 103, 104], "role"].tolist() == [
        "head", "spouse", "dependent", "dependent",
    ]  # fmt: skip
    assert by_id.loc[[101, 102, 103, 104], "line_in_tax_unit"].tolist() == [0, 1, 2, 3]
    assert by_id.loc[[201, 202, 301], "role"].tolist() == ["head", "head", "head"]
    assert by_id.loc[101, "family_id"] == 101 and by_id.loc[202, "tax_unit_id"] == 202

    assert by_id.loc[101, "employment_income_before_lsr"] == 60000
    assert by_id.loc[301, "self_employment_income_before_lsr"] == -5000
    assert by_id.loc[301, "rental_income"] == -1200
    assert by_id.loc[101, "qualified_dividend_income"] == pytest.approx(
        400 * QUALIFIED_DIVIDEND_SHARE
    )
    assert by_id.loc[101, "non_qualified_dividend_income"] == pytest.approx(
        400 * (1 - QUALIFIED_DIVIDEND_SHARE)
    )
    # Social Security: retirement at 62+, disability below.
    assert by_id.loc[201, "social_security_retirement"] == 18000
    assert by_id.loc[201, "social_security_disability"] == 0
    assert by_id.loc[301, "social_security_disability"] == 6000
    assert by_id.loc[201, "taxable_private_pension_income"] == 12800
    assert by_id.loc[102, "unemployment_compensation"] == 3000
    assert by_id.loc[301, "ssi_reported"] == 2400
    assert by_id.loc[201, "taxable_interest_income"] == 900
    assert bool(by_id.loc[102, "is_female"]) and by_id.loc[103, "age"] == 10


def test_without_tax_id_there_is_no_tax_unit_table(tmp_path: Path) -> None:
    paths = write_files(tmp_path, person=person_file().drop(columns=["TAX_ID"]))
    frame = load_cps_asec(*paths, year=YEAR)
    assert "tax_unit" not in frame.tables and "tax_unit_id" not in frame.tables["person"]
    # Without tax units the seed stage cannot sample or impute on it: not a scaffold.
    assert scaffold_shortfalls(frame) == ["tax_unit table", "person.tax_unit_id", "person.role"]
    with_units = load_cps_asec(*write_files(tmp_path), year=YEAR)
    assert scaffold_shortfalls(with_units) == []


class _Parameter:
    def __init__(self, values: dict[int, float]) -> None:
        self.values = values

    def __call__(self, instant: str) -> float | None:
        return self.values.get(int(instant[:4]))


def test_uprating_uses_the_system_index_and_records_factors(tmp_path: Path) -> None:
    """A stand-in system (CPI-U only) checks the wiring without importing PolicyEngine."""
    cpi = _Parameter({year: 100.0 + 10 * (year - 2023) for year in range(2000, 2030)})
    system = SimpleNamespace(variables={}, parameters=SimpleNamespace(get_child=lambda path: cpi))
    frame = load_cps_asec(*write_files(tmp_path), year=2025, system=system)
    uprating = frame.provenance["uprating"]
    assert uprating["status"] == "uprated" and uprating["from_year"] == 2023
    wages = uprating["factors"]["employment_income_before_lsr"]
    assert wages["factor"] == pytest.approx(1.2) and wages["index"] == "gov.bls.cpi.cpi_u"
    person = frame.tables["person"].set_index("person_id")
    assert person.loc[101, "employment_income_before_lsr"] == pytest.approx(72000)


def _drop(column: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda frame: frame.drop(columns=[column])


def _set(column: str, row: int, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.astype({column: object})
        frame.loc[row, column] = value
        return frame

    return change


@pytest.mark.parametrize(
    ("which", "change", "file_name", "expected"),
    [
        ("person", _drop("WSAL_VAL"), "pppub24.csv", "WSAL_VAL"),
        ("household", _drop("HSUP_WGT"), "hhpub24.csv", "HSUP_WGT"),
        ("family", _drop("FFPOS"), "ffpub24.csv", "FFPOS"),
        ("person", _set("A_AGE", 2, "ten"), "pppub24.csv", "A_AGE"),
        ("person", _set("WSAL_VAL", 0, "60k"), "pppub24.csv", "WSAL_VAL"),
        ("household", _set("GESTFIPS", 1, "NY"), "hhpub24.csv", "GESTFIPS"),
        ("household", _set("HSUP_WGT", 0, -5), "hhpub24.csv", "HSUP_WGT"),
        ("household", _set("HSUP_WGT", 0, ""), "hhpub24.csv", "HSUP_WGT"),
        ("person", _set("PH_SEQ", 6, 9), "hhpub24.csv", "PH_SEQ"),
        ("person", _set("PF_SEQ", 3, 2), "ffpub24.csv", "PF_SEQ"),
        ("family", _set("FH_SEQ", 2, 7), "hhpub24.csv", "FH_SEQ"),
        ("person", _set("A_LINENO", 1, 1), "pppub24.csv", "A_LINENO"),
        ("person", _set("TAX_ID", 4, 101), "pppub24.csv", "TAX_ID"),
    ],
)
def test_malformed_files_raise_naming_file_and_column(
    tmp_path: Path,
    which: str,
    change: Callable[[pd.DataFrame], pd.DataFrame],
    file_name: str,
    expected: str,
) -> None:
    frames = {"person": person_file(), "household": household_file(), "family": family_file()}
    frames[which] = change(frames[which])
    paths = write_files(tmp_path, frames["person"], frames["household"], frames["family"])
    with pytest.raises(SourceFormatError) as error:
        load_cps_asec(*paths, year=YEAR)
    message = str(error.value)
    assert file_name in message and expected in message, message


def test_missing_file_is_a_format_error(tmp_path: Path) -> None:
    person, household, _ = write_files(tmp_path)
    with pytest.raises(SourceFormatError, match="ffpub24.csv"):
        load_cps_asec(person, household, tmp_path / "ffpub24.csv.missing", year=YEAR)
