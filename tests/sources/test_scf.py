"""The SCF loader on a small SCFP2022.csv written in the summary extract's exact format.

Upper-case header, one row per implicate, Y1 = 10 x YY1 + implicate, WGT = X42001 / 5.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from microplex_assets.sources.frame import SourceFormatError
from microplex_assets.sources.scf import load_scf

HEADER = (
    "YY1,Y1,WGT,HHSEX,AGE,AGECL,EDUC,MARRIED,KIDS,INCOME,WAGEINC,BUSSEFARMINC,INTDIVINC,"
    "KGINC,SSRETINC,TRANSFOTHINC,ASSET,FIN,NFIN,HOUSES,DEBT,NETWORTH"
)


def _household(yy1: int, wgt: float, age: int, networth: float, sex: int = 1) -> list[str]:
    """Five implicates that differ only in the imputed net worth (+1000 each)."""
    rows = []
    for i in range(1, 6):
        worth = networth + 1000 * i
        debt = 20000.0
        rows.append(
            f"{yy1},{10 * yy1 + i},{wgt},{sex},{age},3,12,1,2,98000.5,85000,0,1200.25,0,0,"
            f"300,{worth + debt},{worth / 2},{worth / 2 + debt},250000,{debt},{worth}"
        )
    return rows


def _rows() -> list[str]:
    return [*_household(1, 6000.25, 45, 300000.0), *_household(2, 9000.5, 71, 1.2e6, sex=2)]


def _write(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_good_file_loads(tmp_path):
    frame = load_scf(_write(tmp_path / "SCFP2022.csv", _rows()))
    household = frame.tables["household"]
    assert frame.year == 2022 and frame.provenance["income_year"] == 2021
    assert frame.provenance["kind"] == "real"
    assert len(frame.provenance["files"]["scf"]["sha256"]) == 64
    assert len(household) == 10 and frame.provenance["households"] == 2
    assert household["household_id"].tolist() == [11, 12, 13, 14, 15, 21, 22, 23, 24, 25]
    assert household["implicate"].tolist() == [1, 2, 3, 4, 5] * 2
    # WGT is already X42001/5: the sum over implicates is the population
    assert household["household_weight"].sum() == pytest.approx(5 * (6000.25 + 9000.5))
    assert household["net_worth"].iloc[0] == pytest.approx(301000.0)
    assert household["interest_dividend_income"].iloc[0] == pytest.approx(1200.25)
    assert household["is_female_head"].tolist() == [False] * 5 + [True] * 5
    assert "state_fips" not in household.columns


def test_lower_case_header_accepted(tmp_path):
    frame = load_scf(_write(tmp_path / "scfp2022.csv", _rows(), HEADER.lower()))
    assert len(frame.tables["household"]) == 10


def test_missing_column(tmp_path):
    path = _write(tmp_path / "SCFP2022.csv", _rows(), HEADER.replace("NETWORTH", "NW"))
    with pytest.raises(SourceFormatError, match=r"SCFP2022\.csv lacks.*NETWORTH"):
        load_scf(path)


def test_text_in_numeric_column(tmp_path):
    rows = _rows()
    rows[2] = rows[2].replace(",98000.5,", ",lots,")
    with pytest.raises(SourceFormatError, match=r"SCFP2022\.csv column 'INCOME'.*'lots'"):
        load_scf(_write(tmp_path / "SCFP2022.csv", rows))


def test_missing_implicate(tmp_path):
    rows = _rows()
    del rows[7]  # household 2, implicate 3
    with pytest.raises(SourceFormatError, match=r"SCFP2022\.csv.*'YY1'.*YY1=2.*\[1, 2, 4, 5\]"):
        load_scf(_write(tmp_path / "SCFP2022.csv", rows))


def test_duplicated_implicate(tmp_path):
    rows = _rows()
    rows[1] = rows[0]  # implicate 1 twice, implicate 2 absent
    with pytest.raises(SourceFormatError, match=r"SCFP2022\.csv column 'Y1' repeats.*YY1=1"):
        load_scf(_write(tmp_path / "SCFP2022.csv", rows))


def test_implicate_id_outside_household(tmp_path):
    rows = _rows()
    rows[0] = rows[0].replace("1,11,", "1,16,", 1)
    with pytest.raises(SourceFormatError, match=r"SCFP2022\.csv column 'Y1' holds 16"):
        load_scf(_write(tmp_path / "SCFP2022.csv", rows))
