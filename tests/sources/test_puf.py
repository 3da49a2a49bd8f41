"""The SOI PUF loader on tiny files written in the puf_2015.csv / demographics_2015.csv format.

Ten returns plus the four aggregate records (RECID 999996-999999, MARS 0) the public
file carries, upper-case headers, S006 stored as weight x 100.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from microplex_assets.sources.frame import SourceFormatError
from microplex_assets.sources.puf import AGEDP_AGE, AGERANGE_AGE, load_puf
from microplex_assets.sources.tax_records import REQUIRED_COLUMNS, validate_tax_records

YEAR = 2024
AMOUNTS = ("E00100", "E00200", "E00300", "E00400", "E00600", "E00650", "E00900", "E01100",
           "E01400", "E01500", "E01700", "E02000", "E02100", "E02300", "E02400", "E17500",
           "E18500", "E19200", "E19800", "E20100", "E26270", "P22250", "P23250")  # fmt: skip


def puf_file() -> pd.DataFrame:
    recid = [*range(1, 11), 999996, 999997, 999998, 999999]
    returns = len(recid)
    puf = pd.DataFrame(
        {
            "RECID": recid,
            "FLPDYR": [2015] * returns,
            "MARS": [1, 2, 2, 4, 1, 3, 2, 1, 4, 2, 0, 0, 0, 0],
            "XTOT": [1, 2, 4, 3, 0, 1, 3, 1, 2, 5, 0, 0, 0, 0],
            "DSI": [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            "EIC": [0, 0, 2, 2, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0],
            "N24": [0, 0, 2, 2, 0, 0, 1, 0, 1, 3, 0, 0, 0, 0],
            "S006": [123456, 50000, 7525, 100, 31000, 2200, 45000, 900000, 1234, 5, 10, 10, 10,
                     10],
            "AGIR1": [5, 10, 12, 4, 1, 6, 14, 20, 3, 30, 0, 0, 0, 0],
            "F2441": 0,
            "E00800": 0,
        }
    )  # fmt: skip
    for column in AMOUNTS:
        puf[column] = 0
    puf["E00200"] = [30000, 80000, 55000, 21000, 4000, 0, 120000, 0, 15000, 0, *[10**9] * 4]
    puf["E00300"] = [100, 0, 20, 0, 50, 0, 900, 0, 0, 250000, *[10**7] * 4]
    puf["E00600"] = [0, 500, 0, 0, 0, 0, 3000, 0, 0, 900000, *[10**8] * 4]
    puf["E00650"] = [0, 400, 0, 0, 0, 0, 2500, 0, 0, 950000, *[10**8] * 4]  # last > E00600
    puf["E00900"] = [0, -3000, 0, 0, 0, 0, 12000, 0, 0, 0, 0, 0, 0, 0]
    puf["E02000"] = [0, 0, 0, 0, 0, 0, 5000, 0, 0, 2000000, 0, 0, 0, 0]
    puf["E26270"] = [0, 0, 0, 0, 0, 0, 3000, 0, 0, 2500000, 0, 0, 0, 0]
    puf["E01100"] = [0, 0, 0, 0, 0, 0, 0, 700, 0, 0, 0, 0, 0, 0]
    puf["P23250"] = [0, 0, 0, 0, 0, 0, 4000, 0, 0, 5000000, 0, 0, 0, 0]
    puf["P22250"] = [0, 0, 0, 0, 0, 0, -1500, 0, 0, 0, 0, 0, 0, 0]
    puf["E02400"] = [0, 0, 0, 0, 0, 0, 0, 24000, 0, 0, 0, 0, 0, 0]
    puf["E01500"] = [0, 0, 0, 0, 0, 0, 0, 20000, 0, 0, 0, 0, 0, 0]
    puf["E01700"] = [0, 0, 0, 0, 0, 0, 0, 15000, 0, 0, 0, 0, 0, 0]
    puf["E19800"] = [0, 1000, 0, 0, 0, 0, 6000, 0, 0, 300000, 0, 0, 0, 0]
    puf["E00100"] = puf["E00200"] + puf["E00300"] + puf["E00600"] + puf["E00900"]
    return puf


def demographics_file() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "RECID": list(range(1, 11)),
            "AGERANGE": [2, 3, 3, 2, 1, 4, 4, 6, 3, 5],
            "AGEDP1": [0, 0, 1, 2, 0, 0, 3, 0, 2, 4],
            "AGEDP2": [0, 0, 2, 1, 0, 0, 0, 0, 0, 5],
            "AGEDP3": [0, 0, 0, 0, 0, 0, 0, 0, 0, 6],
            "EARNSPLIT": [0, 2, 3, 0, 0, 0, 1, 0, 0, 4],
            "GENDER": [1, 1, 2, 2, 1, 2, 1, 2, 2, 1],
        }
    )


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_good_file_loads_as_tax_record_donor(tmp_path: Path) -> None:
    path = write(puf_file(), tmp_path / "puf_2015.csv")
    frame = load_puf(path, year=YEAR)
    validate_tax_records(frame)
    table = frame.tables["tax_unit"].set_index("tax_unit_id")

    assert set(REQUIRED_COLUMNS) <= set(frame.tables["tax_unit"].columns)
    assert len(table) == 10 and frame.provenance["aggregate_records_dropped"] == 4
    assert frame.provenance["kind"] == "real" and frame.provenance["source_year"] == 2015
    assert frame.provenance["uprating"]["status"] == "not uprated"
    assert len(frame.provenance["files"]["puf"]["sha256"]) == 64
    assert "rule" in frame.provenance["age_source"]

    # Implied decimals: S006 123456 -> 1234.56.
    assert table.loc[1, "tax_unit_weight"] == pytest.approx(1234.56)
    assert table.loc[10, "tax_unit_weight"] == pytest.approx(0.05)
    assert table["filing_status"].tolist() == [1, 2, 2, 4, 1, 3, 2, 1, 4, 2]
    assert table.loc[7, "employment_income_before_lsr"] == 120000
    assert table.loc[2, "self_employment_income_before_lsr"] == -3000
    assert table.loc[7, "qualified_dividend_income"] == 2500
    assert table.loc[7, "non_qualified_dividend_income"] == 500
    assert table.loc[10, "non_qualified_dividend_income"] == 0  # E00650 > E00600: clipped
    assert frame.provenance["negative_differences_clipped"]["non_qualified_dividend_income"] == 1
    assert table.loc[7, "long_term_capital_gains_before_response"] == 4000
    # E01100 (distributions without Schedule D) is its own input, not long-term gains.
    assert table.loc[8, "non_sch_d_capital_gains"] == 700
    assert table.loc[8, "long_term_capital_gains_before_response"] == 0
    assert table["non_sch_d_capital_gains"].sum() == 700
    assert table.loc[7, "short_term_capital_gains"] == -1500
    # No S-corp or rent/royalty columns: E26270 all partnership, rent = E02000 - E26270.
    assert table.loc[7, "partnership_income"] == 3000 and table.loc[7, "s_corp_income"] == 0
    assert table.loc[7, "rental_income"] == 2000 and table.loc[10, "rental_income"] == -500000
    assert table.loc[8, "taxable_private_pension_income"] == 15000
    assert table.loc[8, "tax_exempt_private_pension_income"] == 5000
    assert table.loc[7, "adjusted_gross_income"] == puf_file().loc[6, "E00100"]
    # Rule ages: dependent filer 18, Social Security 70, otherwise 40; spouse = head if joint.
    assert table.loc[5, "age_head"] == 18 and table.loc[8, "age_head"] == 70
    assert table.loc[1, "age_head"] == 40 and table.loc[1, "age_spouse"] == 0
    assert table.loc[3, "age_spouse"] == 40
    assert table.loc[8, "social_security_retirement"] == 24000
    # Dependents: XTOT - head - spouse.
    assert table["count_dependents"].tolist() == [0, 0, 2, 2, 0, 0, 1, 0, 1, 3]


def test_optional_s_corp_and_rent_columns_refine_the_split(tmp_path: Path) -> None:
    puf = puf_file()
    puf["E26190"] = [0] * 6 + [1000] + [0] * 7
    puf["E26180"] = 0
    puf["E25850"] = [0] * 6 + [2500] + [0] * 7
    puf["E25860"] = [0] * 6 + [300] + [0] * 7
    table = load_puf(write(puf, tmp_path / "puf_2015.csv"), year=YEAR).tables["tax_unit"]
    row = table.set_index("tax_unit_id").loc[7]
    assert row["s_corp_income"] == 1000 and row["partnership_income"] == 2000
    assert row["rental_income"] == 2200


def test_demographics_give_band_ages(tmp_path: Path) -> None:
    puf_path = write(puf_file(), tmp_path / "puf_2015.csv")
    demo_path = write(demographics_file(), tmp_path / "demographics_2015.csv")
    frame = load_puf(puf_path, year=YEAR, demographics_path=demo_path)
    table = frame.tables["tax_unit"].set_index("tax_unit_id")
    assert table.loc[1, "age_head"] == AGERANGE_AGE[2]
    assert table.loc[8, "age_head"] == AGERANGE_AGE[6]
    assert table.loc[3, "age_spouse"] == AGERANGE_AGE[3]
    assert table.loc[3, "age_dependent_1"] == AGEDP_AGE[1]
    assert table.loc[10, "listed_dependents"] == 3
    assert "AGERANGE" in frame.provenance["age_source"]
    assert set(frame.provenance["files"]) == {"puf", "demographics"}


def test_returns_without_demographics_may_use_the_rule(tmp_path: Path) -> None:
    puf_path = write(puf_file(), tmp_path / "puf_2015.csv")
    demo_path = write(demographics_file().iloc[:8], tmp_path / "demographics_2015.csv")
    with pytest.raises(SourceFormatError) as error:
        load_puf(puf_path, year=YEAR, demographics_path=demo_path)
    message = str(error.value)
    assert "puf_2015.csv" in message and "demographics_2015.csv" in message
    assert "RECID 9" in message
    frame = load_puf(puf_path, year=YEAR, demographics_path=demo_path, missing_demographics="rule")
    assert frame.provenance["returns_without_demographics_given_rule_ages"] == 2
    assert frame.tables["tax_unit"].set_index("tax_unit_id").loc[9, "age_head"] == 40


def test_demographics_recid_absent_from_puf_names_both_files(tmp_path: Path) -> None:
    demo = demographics_file()
    demo.loc[3, "RECID"] = 424242
    puf_path = write(puf_file(), tmp_path / "puf_2015.csv")
    demo_path = write(demo, tmp_path / "demographics_2015.csv")
    with pytest.raises(SourceFormatError) as error:
        load_puf(puf_path, year=YEAR, demographics_path=demo_path)
    message = str(error.value)
    assert "puf_2015.csv" in message and "demographics_2015.csv" in message
    assert "RECID 424242" in message


def _drop(column: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda frame: frame.drop(columns=[column])


def _set(column: str, row: int, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.astype({column: object})
        frame.loc[row, column] = value
        return frame

    return change


@pytest.mark.parametrize(
    ("file_name", "change", "expected"),
    [
        ("puf_2015.csv", _drop("E00200"), "E00200"),
        ("puf_2015.csv", _drop("S006"), "S006"),
        ("puf_2015.csv", _set("E00300", 2, "n/a"), "E00300"),
        ("puf_2015.csv", _set("MARS", 1, "J"), "MARS"),
        ("puf_2015.csv", _set("MARS", 1, 7), "MARS"),
        ("puf_2015.csv", _set("S006", 0, -100), "S006"),
        ("puf_2015.csv", _set("E00900", 0, ""), "E00900"),
        ("puf_2015.csv", _set("RECID", 1, 1), "RECID"),
        ("puf_2015.csv", _set("FLPDYR", 1, 2014), "FLPDYR"),
        ("demographics_2015.csv", _drop("AGERANGE"), "AGERANGE"),
        ("demographics_2015.csv", _set("AGEDP1", 0, "young"), "AGEDP1"),
        ("demographics_2015.csv", _set("AGERANGE", 0, 9), "AGERANGE"),
    ],
)
def test_malformed_files_raise_naming_file_and_column(
    tmp_path: Path, file_name: str, change: Callable[[pd.DataFrame], pd.DataFrame], expected: str
) -> None:
    frames = {"puf_2015.csv": puf_file(), "demographics_2015.csv": demographics_file()}
    frames[file_name] = change(frames[file_name])
    puf_path = write(frames["puf_2015.csv"], tmp_path / "puf_2015.csv")
    demo_path = write(frames["demographics_2015.csv"], tmp_path / "demographics_2015.csv")
    with pytest.raises(SourceFormatError) as error:
        load_puf(puf_path, year=YEAR, demographics_path=demo_path)
    message = str(error.value)
    assert file_name in message and expected in message, message


def test_uprating_with_policyengine(tmp_path: Path, pe_system) -> None:
    from microplex_assets.uprating import uprating_factors

    path = write(puf_file(), tmp_path / "puf_2015.csv")
    frame = load_puf(path, year=YEAR, system=pe_system)
    uprating = frame.provenance["uprating"]
    assert uprating["status"] == "uprated" and uprating["from_year"] == 2015
    index, factors = uprating_factors(pe_system, "employment_income_before_lsr", [2015], YEAR)
    wages = uprating["factors"]["employment_income_before_lsr"]
    assert wages["index"] == index.path and wages["factor"] == pytest.approx(factors[2015], 1e-6)
    table = frame.tables["tax_unit"].set_index("tax_unit_id")
    assert table.loc[7, "employment_income_before_lsr"] == pytest.approx(120000 * factors[2015])
    assert table.loc[2, "self_employment_income_before_lsr"] < 0  # a loss stays a loss
    validate_tax_records(frame)
