"""The Forbes-400-style CSV loader and the embedded real Forbes 400."""

from __future__ import annotations

from pathlib import Path

import pytest

from microplex_assets.sources import forbes
from microplex_assets.sources.forbes import load_forbes_list, real_top_wealth_list
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
    # A blank age becomes the list's median age, flagged; no marital status -> married.
    assert household["age_head"].tolist() == [53, 60, 56]
    assert household["age_imputed"].tolist() == [False, False, True]
    assert household["is_married"].all() and household["married_imputed"].all()
    assert (household["children"] == 0).all()
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


def test_default_list_is_the_real_forbes_400_with_states():
    frame = real_top_wealth_list(2024, seed=0)
    household = frame.tables["household"]
    assert frame.provenance["kind"] == "real"
    assert frame.provenance["files"]["list"]["file"].endswith("forbes_us_top_400_2024-09-01.json")
    assert len(frame.provenance["files"]["list"]["sha256"]) == 64
    assert len(household) == 400 and household["rank"].tolist() == list(range(1, 401))
    assert household["net_worth"].is_monotonic_decreasing
    assert household["name"].iloc[0] == "Elon Musk" and household["state_fips"].iloc[0] == 48
    assert household["net_worth"].sum() == pytest.approx(5.387e12, rel=1e-3)
    assert household["state_fips"].between(1, 56).all() and household["age_head"].notna().all()
    assert (household["household_weight"] == 1.0).all()
    # Published facts: 12 members at $100bn+, California 83 (after the state rule).
    check = frame.provenance["published_check"]
    assert check["members_at_least_100_billion"] == {"list": 12.0, "published": 12.0}
    assert check["total_net_worth"]["list"] == pytest.approx(5.4e12, rel=0.01)
    zuckerberg = household[household["name"] == "Mark Zuckerberg"].iloc[0]
    assert zuckerberg["is_married"] and zuckerberg["children"] == 3
    musk = household.iloc[0]
    assert not musk["is_married"] and musk["marital_status"] == "Divorced"


def test_members_without_a_state_get_one_by_the_rule():
    household = real_top_wealth_list(2024, seed=0).tables["household"]
    imputed = household[household["state_imputed"]]
    assert len(imputed) == 19  # 12 without any residence, 7 living abroad
    assert set(imputed["residence_country"]) == {"", "gb", "kr", "sg", "cn", "au"}
    assert (
        not household.loc[~household["state_imputed"], "residence_country"]
        .isin(["gb", "kr", "sg", "cn", "au"])
        .any()
    )
    again = real_top_wealth_list(2024, seed=0).tables["household"]
    assert again["state_fips"].equals(household["state_fips"])
    # The draw follows $1m+ AGI shares: a state with none of it never gets a member.
    shares = forbes.millionaire_agi_by_state()
    drawn = forbes.impute_states(2000, seed=1)
    top = forbes.STATE_FIPS[shares.idxmax()]
    assert (drawn == top).mean() == pytest.approx(shares.max() / shares.sum(), abs=0.03)


def test_blank_marital_status_becomes_married_and_is_flagged():
    household = real_top_wealth_list(2024, seed=0).tables["household"]
    flagged = household[household["married_imputed"]]
    assert len(flagged) == 31 and flagged["is_married"].all()
    assert (flagged["marital_status"] == "").all()
    known = household[~household["married_imputed"]]
    assert (
        known["is_married"].tolist()
        == known["marital_status"].isin(["Married", "Widowed, Remarried"]).tolist()
    )


def test_unknown_residence_state_names_the_file_and_column(monkeypatch):
    members, source = forbes.load_forbes_400()
    members = members.copy()
    members.loc[5, "residence_state"] = "Atlantis"
    monkeypatch.setattr(forbes, "load_forbes_400", lambda: (members, source))
    with pytest.raises(SourceFormatError, match=r"forbes_us_top_400.*'residence_state'.*Atlantis"):
        real_top_wealth_list(2024)
