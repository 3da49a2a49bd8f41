"""The top-wealth list's income drawn from real SCF 2022 top-tail donors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex_assets.sources import top_tail_income as tti
from microplex_assets.sources.forbes import real_top_wealth_list
from microplex_assets.sources.reference_microdata import load_scf_top_tail


@pytest.fixture(scope="module")
def real_list():
    return tti.with_scf_income(real_top_wealth_list(2024, seed=0), seed=0)


def test_composition_is_deterministic_for_a_seed(real_list):
    again = tti.with_scf_income(real_top_wealth_list(2024, seed=0), seed=0)
    pd.testing.assert_frame_equal(again.tables["household"], real_list.tables["household"])
    other = tti.with_scf_income(real_top_wealth_list(2024, seed=0), seed=1)
    assert not other.tables["household"]["donor_scf_row"].equals(
        real_list.tables["household"]["donor_scf_row"]
    )
    assert real_list.provenance["income"]["kind"] == "real"
    assert real_list.provenance["income"]["donors"]["file"].endswith(".json.gz")


def test_income_follows_the_donor_ratios(real_list):
    household = real_list.tables["household"]
    donors, _ = load_scf_top_tail()
    donor = donors.loc[household["donor_scf_row"]]
    worth = household["net_worth"].to_numpy()
    columns = ("wageinc", "kginc", "intdivinc", "bussefarminc")
    per_dollar = {c: donor[c].to_numpy() / donor["net_worth"].to_numpy() for c in columns}
    np.testing.assert_allclose(household[tti.GAINS], per_dollar["kginc"] * worth)
    np.testing.assert_allclose(
        household[list(tti.INTEREST_DIVIDENDS)].sum(axis=1), per_dollar["intdivinc"] * worth
    )
    np.testing.assert_allclose(
        household[list(tti.BUSINESS)].sum(axis=1), per_dollar["bussefarminc"] * worth
    )
    np.testing.assert_allclose(household[tti.WAGES], np.maximum(per_dollar["wageinc"], 0) * worth)
    # Social Security / retirement: the donor's dollars, as SS from age 62.
    np.testing.assert_allclose(household[list(tti.RETIREMENT)].sum(axis=1), donor["ssretinc"])
    young = household["age_head"] < tti.RETIREMENT_AGE
    assert (household.loc[young, "social_security_retirement"] == 0).all()
    # Donors come from the pool, and the pool's richest records serve the richest members.
    assert (household["donor_net_worth"] >= tti.POOL_MIN_NET_WORTH).all()
    pool = tti.donor_pool(donors)
    assert household["donor_scf_row"].iloc[0] in set(pool["scf_row"].iloc[: tti.WINDOW])
    summary = real_list.provenance["income"]["matches"]
    assert summary["marriage_matched"] > 0.9 * len(household)


def test_matching_prefers_marriage_then_age_within_the_rank_window():
    pool = pd.DataFrame(
        {
            "scf_row": np.arange(6),
            "net_worth": np.linspace(2e9, 1e9, 6),
            "age": [80, 60, 45, 80, 60, 45],
            "is_married": [True, True, True, False, False, False],
            "wgt": np.ones(6),
        }
    )
    members = pd.DataFrame(
        {"net_worth": [5e9, 4e9], "age_head": [44, 81], "is_married": [False, True]}
    )
    for seed in range(5):
        matches = tti.match_donors(members, pool, seed)
        candidates = [set(), set()]
        for row in range(2):
            same = pool[pool["is_married"] == members["is_married"][row]]
            gap = (same["age"] - members["age_head"][row]).abs()
            candidates[row] = set(same["scf_row"][gap.rank(method="first") <= tti.NEAREST_AGE])
        assert matches["donor_scf_row"].iloc[0] in candidates[0]
        assert matches["donor_is_married"].tolist() == [False, True]


def test_published_comparison_and_totals(real_list):
    household = real_list.tables["household"]
    comparison = tti.published_comparison(household).set_index("item")
    total = comparison.loc["income total ($bn)", "spine"]
    assert total == pytest.approx(tti.income_totals(household)["total_bn"].sum())
    assert comparison.loc["income total ($bn)", "published"] == pytest.approx(127.2)
    assert 0.02 < comparison.loc["income / list net worth", "spine"] < 0.12
    shares = tti.soi_top_class_splits()
    assert sum(shares["interest_dividends"].values()) == pytest.approx(1.0)
    assert sum(shares["business"].values()) == pytest.approx(1.0)


def test_a_csv_list_gets_donor_income_too(tmp_path):
    from microplex_assets.sources.forbes import load_forbes_list

    path = tmp_path / "forbes.csv"
    path.write_text("rank,net_worth,age,state\n1,90e9,70,CA\n2,4e9,,TX\n")
    frame = tti.with_scf_income(load_forbes_list(path, 2024), seed=3)
    household = frame.tables["household"]
    assert household["age_head"].tolist() == [70, 70]  # blank age -> the list's median
    assert (household["donor_net_worth"] >= tti.POOL_MIN_NET_WORTH).all()
    assert household[list(tti.INCOME_COLUMNS)].abs().sum(axis=1).gt(0).all()
    assert frame.provenance["kind"] == "real" and frame.provenance["income"]["seed"] == 3
