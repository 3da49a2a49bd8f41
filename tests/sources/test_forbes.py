"""The Forbes-400-style list loader and the embedded synthetic top-wealth list."""

from __future__ import annotations

from pathlib import Path

import pytest

from microplex_assets.sources.forbes import (
    FORBES_400_2024,
    embedded_top_wealth_list,
    load_forbes_list,
)
from microplex_assets.sources.frame import SourceFormatError

HEADER = "rank,name,net_worth,age,state,source_of_wealth"
ROWS = [
    "2,Member B,197000000000,60,FL,retail",
    "1,Member A,244000000000,53,TX,cars",
    "3,Member C & family,3300000000,,06,inheritance",
]


def _write(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_good_list_loads(tmp_path):
    frame = load_forbes_list(_write(tmp_path / "forbes_400.csv", ROWS), 2024)
    household = frame.tables["household"]
    assert frame.provenance["kind"] == "real" and frame.year == 2024
    assert len(frame.provenance["files"]["list"]["sha256"]) == 64
    assert household["rank"].tolist() == [1, 2, 3]  # sorted by rank
    assert household["household_id"].tolist() == [1, 2, 3]
    assert household["state_fips"].tolist() == [48, 12, 6]  # postal code or FIPS
    assert household["net_worth"].tolist() == [244e9, 197e9, 3.3e9]
    assert household["household_weight"].tolist() == [1.0, 1.0, 1.0]
    assert household["age_head"].isna().tolist() == [False, False, True]
    assert household["name"].iloc[2] == "Member C & family"


def test_billions_header_and_case(tmp_path):
    header = "Rank,Name,Net_Worth_Billions,Age,State,Source_Of_Wealth"
    rows = ["1,A,244,53,TX,cars", "2,B,197.5,60,fl,retail"]
    frame = load_forbes_list(_write(tmp_path / "forbes_400.csv", rows, header), 2024)
    assert frame.tables["household"]["net_worth"].tolist() == [244e9, 197.5e9]
    assert frame.provenance["net_worth_column"] == "net_worth_billions"


def test_missing_column(tmp_path):
    path = _write(tmp_path / "forbes_400.csv", ROWS, HEADER.replace("state", "residence"))
    with pytest.raises(SourceFormatError, match=r"forbes_400\.csv lacks.*state"):
        load_forbes_list(path, 2024)
    path = _write(tmp_path / "forbes_400.csv", ROWS, HEADER.replace("net_worth", "worth"))
    with pytest.raises(SourceFormatError, match=r"forbes_400\.csv.*'net_worth'"):
        load_forbes_list(path, 2024)


def test_text_in_numeric_column(tmp_path):
    rows = [ROWS[0].replace("197000000000", "197B"), *ROWS[1:]]
    with pytest.raises(SourceFormatError, match=r"forbes_400\.csv column 'net_worth'.*'197B'"):
        load_forbes_list(_write(tmp_path / "forbes_400.csv", rows), 2024)


def test_duplicate_rank(tmp_path):
    rows = [*ROWS, "3,Member D,3300000000,80,NY,finance"]
    with pytest.raises(SourceFormatError, match=r"forbes_400\.csv column 'rank' repeats.*3"):
        load_forbes_list(_write(tmp_path / "forbes_400.csv", rows), 2024)


def test_unknown_state(tmp_path):
    rows = [*ROWS[:2], ROWS[2].replace(",06,", ",PR,")]
    with pytest.raises(SourceFormatError, match=r"forbes_400\.csv column 'state' holds 'PR'"):
        load_forbes_list(_write(tmp_path / "forbes_400.csv", rows), 2024)
    rows = [*ROWS[:2], ROWS[2].replace(",06,", ",3,")]  # 3 is not a state FIPS code
    with pytest.raises(SourceFormatError, match=r"forbes_400\.csv column 'state' holds '3'"):
        load_forbes_list(_write(tmp_path / "forbes_400.csv", rows), 2024)


def test_non_positive_net_worth(tmp_path):
    rows = [ROWS[0].replace("197000000000", "-5"), *ROWS[1:]]
    with pytest.raises(SourceFormatError, match=r"forbes_400\.csv column 'net_worth' must be"):
        load_forbes_list(_write(tmp_path / "forbes_400.csv", rows), 2024)


def test_embedded_list_reproduces_published_aggregates():
    frame = embedded_top_wealth_list(2024)
    household = frame.tables["household"]
    worth = household["net_worth"]
    assert frame.provenance["kind"] == "synthetic"
    assert frame.provenance["citations"] and "forbes.com" in frame.provenance["citations"][0]
    assert len(household) == FORBES_400_2024["members"] == 400
    assert worth.sum() == pytest.approx(5.4e12, rel=0.01)
    assert worth.min() == pytest.approx(3.3e9, rel=0.01)
    assert worth.max() == pytest.approx(244e9, rel=0.01)
    assert worth.iloc[:25].sum() == pytest.approx(2.5e12, rel=0.01)
    assert worth.is_monotonic_decreasing and household["rank"].tolist() == list(range(1, 401))
    counts = household["state_fips"].value_counts()
    assert (counts[6], counts[36], counts[12], counts[48]) == (83, 54, 54, 43)
    assert not household["state_fips"].isin([1, 2, 10, 27, 28]).any()
    assert household["age_head"].between(38, 99).all()
    assert (household["household_weight"] == 1.0).all()


def test_embedded_list_is_deterministic_and_year_bounded():
    first = embedded_top_wealth_list(2026).tables["household"]
    second = embedded_top_wealth_list(2026).tables["household"]
    assert first.equals(second)
    with pytest.raises(ValueError, match="2024"):
        embedded_top_wealth_list(2020)
