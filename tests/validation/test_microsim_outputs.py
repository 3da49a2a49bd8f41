"""Stage 9 benchmark statistics on tiny hand-made frames, checked against hand arithmetic."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from microplex_assets.validation.microsim.outputs import (
    IMPACT_COLUMNS,
    SimulationResults,
    baseline_levels,
    impacts_table,
    reform_impacts,
)
from microplex_assets.validation.microsim.report import decile_chart_png, impacts_markdown

BENEFITS = ["snap", "ssi", "eitc"]
B = 1e9

# Six households. weight × people ("people weight"): 2×3=6, 3×2=6, 1×1=1, 4×4=16, 5×1=5,
# 1×2=2; total 36, which is also the person-weighted population.
IDS = [10, 20, 30, 40, 50, 60]
WEIGHTS = pd.Series([2.0, 3.0, 1.0, 4.0, 5.0, 1.0], index=IDS)
PEOPLE = [3, 2, 1, 4, 1, 2]
BASE_NET = [20_000.0, 50_000.0, 100_000.0, -1_000.0, 10_000.0, 40_000.0]
BASE_TAX = [1_000.0, 5_000.0, 20_000.0, 0.0, 500.0, 4_000.0]
BASE_SNAP = [1_000.0, 0.0, 0.0, 3_000.0, 0.0, 0.0]
BASE_SSI = [0.0, 9_000.0, 0.0, 0.0, 0.0, 0.0]
BASE_EITC = [0.0, 0.0, 0.0, 2_000.0, 0.0, 0.0]
# The reform: SNAP +500 (hh 10), SSI -1,000 (hh 20), income tax +6,000 (hh 30),
# SNAP +300 (hh 40), EITC +50 (hh 50), nothing for hh 60.
PERSON_HOUSEHOLD = [10, 10, 10, 20, 20, 30, 40, 40, 40, 40, 50, 60, 60]
AGES = [40, 10, 5, 70, 68, 50, 30, 8, 3, 1, 80, 45, 16]
BASE_POOR = [1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0]
REFORM_POOR = [0, 0, 0, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0]


def results(net, tax, snap, ssi, eitc, poor, ids=IDS, people=PEOPLE, ages=AGES, persons=None):
    household = pd.DataFrame(
        {
            "household_net_income": net,
            "people": people,
            "income_tax": tax,
            "snap": snap,
            "ssi": ssi,
            "eitc": eitc,
        },
        index=pd.Index(ids, name="household_id", dtype="int64"),
    )
    person = pd.DataFrame(
        {
            "household_id": PERSON_HOUSEHOLD if persons is None else persons,
            "age": ages,
            "in_poverty": [bool(flag) for flag in poor],
        }
    )
    return SimulationResults(household=household, person=person)


def baseline() -> SimulationResults:
    return results(BASE_NET, BASE_TAX, BASE_SNAP, BASE_SSI, BASE_EITC, BASE_POOR)


def reform() -> SimulationResults:
    net = [20_500.0, 49_000.0, 94_000.0, -700.0, 10_050.0, 40_000.0]
    tax = [1_000.0, 5_000.0, 26_000.0, 0.0, 500.0, 4_000.0]
    snap = [1_500.0, 0.0, 0.0, 3_300.0, 0.0, 0.0]
    ssi = [0.0, 8_000.0, 0.0, 0.0, 0.0, 0.0]
    eitc = [0.0, 0.0, 0.0, 2_000.0, 50.0, 0.0]
    return results(net, tax, snap, ssi, eitc, REFORM_POOR)


def one_person_households(net, weights, people=None):
    """Households of ``people`` persons each (default one), nobody poor, no taxes."""
    ids = list(range(1, len(net) + 1))
    people = people or [1] * len(net)
    persons = [hid for hid, size in zip(ids, people, strict=True) for _ in range(size)]
    zeros = [0.0] * len(net)
    simulation = results(
        net,
        zeros,
        zeros,
        zeros,
        zeros,
        [0] * len(persons),
        ids=ids,
        people=people,
        ages=[40] * len(persons),
        persons=persons,
    )
    return simulation, pd.Series(weights, index=ids, dtype=float)


def test_budget_impact_sign_and_components():
    impacts = reform_impacts(baseline(), reform(), WEIGHTS, BENEFITS)
    tax = 1 * 6_000
    snap = 2 * 500 + 4 * 300
    ssi = 3 * -1_000
    eitc = 5 * 50
    assert impacts["income_tax_change_bn"] == pytest.approx(tax / B)
    assert impacts["benefit_changes_bn"] == pytest.approx(
        {"snap": snap / B, "ssi": ssi / B, "eitc": eitc / B}
    )
    expected_budget = (6_000 - (2_200 - 3_000 + 250)) / B  # = 6,550: more revenue
    assert impacts["budget_impact_bn"] == pytest.approx(expected_budget)
    assert impacts["budget_impact_bn"] > 0
    net = 2 * 500 + 3 * -1_000 + 1 * -6_000 + 4 * 300 + 5 * 50 + 1 * 0
    assert impacts["household_net_income_change_bn"] == pytest.approx(net / B)
    assert impacts["household_net_income_change_bn"] == pytest.approx(-expected_budget)
    assert impacts["households_changed"] == 5


def test_budget_impact_is_negative_when_benefits_grow():
    impacts = reform_impacts(baseline(), reform(), WEIGHTS, ["snap"])
    assert impacts["budget_impact_bn"] == pytest.approx((6_000 - 2_200) / B)
    flipped = reform_impacts(reform(), baseline(), WEIGHTS, BENEFITS)
    assert flipped["budget_impact_bn"] == pytest.approx(-6_550 / B)


def test_winners_and_losers_at_1_and_5_percent():
    shares = reform_impacts(baseline(), reform(), WEIGHTS, BENEFITS)["winners_losers"]
    # Relative changes: hh10 +500/20,000 = +2.5%; hh20 -1,000/50,000 = -2%;
    # hh30 -6,000/100,000 = -6%; hh40 +300/max(|-1,000|, 1) = +30%; hh50 +50/10,000 = +0.5%;
    # hh60 0. People weights 6, 6, 1, 16, 5, 2 (total 36).
    assert shares["gain_more_than_5pct"] == pytest.approx(16 / 36)
    assert shares["gain_more_than_1pct"] == pytest.approx((6 + 16) / 36)
    assert shares["lose_more_than_1pct"] == pytest.approx((6 + 1) / 36)
    assert shares["lose_more_than_5pct"] == pytest.approx(1 / 36)
    assert shares["no_change_or_under_1pct"] == pytest.approx((5 + 2) / 36)


def test_zero_baseline_income_is_divided_by_one_dollar():
    simulation, weights = one_person_households([0.0, 1_000.0], [1.0, 3.0])
    changed = dataclasses.replace(
        simulation, household=simulation.household.assign(household_net_income=[0.5, 1_000.0])
    )
    shares = reform_impacts(simulation, changed, weights, [])["winners_losers"]
    # hh1: +0.5 / max(|0|, 1) = +50%, a gain over 5%, for 1 of 4 weighted people.
    assert shares["gain_more_than_5pct"] == pytest.approx(1 / (1 + 3))


def test_poverty_rate_changes_for_everyone_and_children():
    impacts = reform_impacts(baseline(), reform(), WEIGHTS, BENEFITS)
    # Persons take their household's weight; all persons weigh 36 in total.
    base_rate = (2 * 3 + 4 * 4 + 5 * 1) / 36  # hh10, hh40 and the senior in hh50
    reform_rate = (3 * 1 + 4 * 4 + 5 * 1) / 36  # one of hh20, hh40, hh50
    assert impacts["spm_poverty_rate_change_pp"] == pytest.approx(100 * (reform_rate - base_rate))
    # Children: two in hh10 (weight 2), three in hh40 (weight 4), one in hh60 (weight 1).
    children = 2 * 2 + 3 * 4 + 1 * 1
    base_child = (2 * 2 + 3 * 4) / children
    reform_child = (3 * 4) / children
    assert impacts["child_spm_poverty_rate_change_pp"] == pytest.approx(
        100 * (reform_child - base_child)
    )


def test_baseline_levels():
    levels = baseline_levels(baseline(), WEIGHTS)
    assert levels["spm_poverty_rate"] == pytest.approx((2 * 3 + 4 * 4 + 5 * 1) / 36)
    assert levels["child_spm_poverty_rate"] == pytest.approx((2 * 2 + 3 * 4) / (2 * 2 + 3 * 4 + 1))
    assert levels["senior_spm_poverty_rate"] == pytest.approx((5 * 1) / (3 * 2 + 5 * 1))
    net = 2 * 20_000 + 3 * 50_000 + 1 * 100_000 + 4 * -1_000 + 5 * 10_000 + 1 * 40_000
    assert levels["household_net_income_bn"] == pytest.approx(net / B)
    tax = 2 * 1_000 + 3 * 5_000 + 1 * 20_000 + 4 * 0 + 5 * 500 + 1 * 4_000
    assert levels["income_tax_bn"] == pytest.approx(tax / B)


def test_gini_of_three_people():
    # microdf's Gini is the population (not n/(n-1)) Gini: sum over ordered pairs of
    # |x_i - x_j| / (2 n² mean). For 10, 20, 60: pairs 10, 50, 40 twice; mean 30.
    simulation, weights = one_person_households([10.0, 20.0, 60.0], [1.0, 1.0, 1.0])
    expected = 2 * (10 + 50 + 40) / (2 * 3**2 * 30)
    assert baseline_levels(simulation, weights)["gini_household_net_income"] == pytest.approx(
        expected
    )


def test_gini_weights_households_by_people_and_zeroes_negatives():
    # A two-person household at 10 and a single at 40 are the people 10, 10, 40:
    # pairs (10,40) four times of nine; mean 20.
    simulation, weights = one_person_households([10.0, 40.0], [1.0, 1.0], people=[2, 1])
    expected = 4 * 30 / (2 * 3**2 * 20)
    assert baseline_levels(simulation, weights)["gini_household_net_income"] == pytest.approx(
        expected
    )
    # -50 counts as 0: people 0, 20, 60, pairs 20, 60, 40 twice, mean 80/3.
    simulation, weights = one_person_households([-50.0, 20.0, 60.0], [1.0, 1.0, 1.0])
    expected = 2 * (20 + 60 + 40) / (2 * 3**2 * (80 / 3))
    assert baseline_levels(simulation, weights)["gini_household_net_income"] == pytest.approx(
        expected
    )


def test_top_1pct_share():
    # 100 weighted people: one at $1m (weight 1) and 99 at $10k (33 households of 3).
    simulation, weights = one_person_households([1_000_000.0, 10_000.0], [1.0, 33.0], [1, 3])
    expected = 1_000_000 / (1_000_000 + 33 * 3 * 10_000)
    assert baseline_levels(simulation, weights)["top_1pct_share"] == pytest.approx(expected)


def test_decile_average_and_relative_changes():
    # Deciles 1-9: one household each of people weight 6 (of 60); decile 10: two households,
    # people weights 3 and 3. Ids are not in income order, so the ranking is exercised.
    net = [5_000, 1_000, 3_000, 2_000, 4_000, 9_000, 7_000, 8_000, 6_000, 95_000, 100_000]
    people = [1, 1, 2, 1, 1, 1, 1, 2, 1, 1, 3]
    weights = [6, 6, 3, 6, 6, 6, 6, 3, 6, 3, 1]
    simulation, weights = one_person_households([float(x) for x in net], weights, people)
    change = [50, 10, 30, 20, 40, 90, 70, 80, 60, 300, -1_000]
    new_net = [float(x + dx) for x, dx in zip(net, change, strict=True)]
    changed = dataclasses.replace(
        simulation, household=simulation.household.assign(household_net_income=new_net)
    )
    deciles = reform_impacts(simulation, changed, weights, [])["deciles"]
    assert [row["decile"] for row in deciles] == list(range(1, 11))
    for row in deciles[:9]:
        # decile d holds the household with income d × 1,000 and change d × 10
        number = row["decile"]
        assert row["average_change"] == pytest.approx(number * 10)
        assert row["relative_change"] == pytest.approx((number * 10) / (number * 1_000))
    top = deciles[9]
    assert top["average_change"] == pytest.approx((3 * 300 + 1 * -1_000) / (3 + 1))
    assert top["relative_change"] == pytest.approx(
        (3 * 300 + 1 * -1_000) / (3 * 95_000 + 1 * 100_000)
    )


def test_mismatched_households_or_persons_raise():
    other = reform()
    other.household.index = pd.Index([10, 20, 30, 40, 50, 70], name="household_id")
    other.person["household_id"] = other.person["household_id"].replace(60, 70)
    with pytest.raises(ValueError, match="households differ"):
        reform_impacts(baseline(), other, WEIGHTS, BENEFITS)
    moved = reform()
    moved.person["age"] = list(reversed(AGES))
    with pytest.raises(ValueError, match="persons differ in 'age'"):
        reform_impacts(baseline(), moved, WEIGHTS, BENEFITS)


def test_weights_must_cover_the_simulated_households():
    with pytest.raises(ValueError, match="weights lack"):
        baseline_levels(baseline(), WEIGHTS.drop(60))
    with pytest.raises(ValueError, match="not simulated"):
        baseline_levels(baseline(), pd.concat([WEIGHTS, pd.Series([1.0], index=[99])]))


def test_people_must_match_person_rows():
    wrong = baseline()
    wrong.household["people"] = [3, 2, 1, 4, 1, 3]
    with pytest.raises(ValueError, match="'people' disagrees"):
        baseline_levels(wrong, WEIGHTS)


def suite() -> dict[str, dict[str, dict]]:
    uniform = pd.Series(1.0, index=IDS)
    return {
        reform_id: {
            "candidate": reform_impacts(baseline(), reform(), WEIGHTS, BENEFITS),
            "ecps": reform_impacts(baseline(), reform(), uniform, BENEFITS),
        }
        for reform_id in ("snap_boost", "tax_hike")
    }


def test_impacts_table_and_markdown():
    table = impacts_table(suite())
    assert list(table.columns) == ["reform", "dataset", *IMPACT_COLUMNS]
    assert len(table) == 4
    row = table.set_index(["reform", "dataset"]).loc[("tax_hike", "candidate")]
    assert row["budget_impact_bn"] == pytest.approx(6_550 / B)
    assert row["gain_more_than_1pct"] == pytest.approx(22 / 36)
    uniform = table.set_index(["reform", "dataset"]).loc[("tax_hike", "ecps")]
    # Uniform weights: 6,000 - (500 + 300 - 1,000 + 50) = 6,150.
    assert uniform["budget_impact_bn"] == pytest.approx(6_150 / B)
    markdown = impacts_markdown(table)
    assert "budget $bn: candidate" in markdown and "budget $bn: ecps" in markdown
    assert "snap_boost" in markdown and "tax_hike" in markdown
    assert len(markdown.splitlines()) == 2 + 2  # header, rule, one row per reform


def test_decile_chart_is_a_png():
    png = decile_chart_png(suite(), ["snap_boost", "tax_hike"])
    assert png.startswith(b"\x89PNG")
    assert decile_chart_png(suite(), ["tax_hike"]).startswith(b"\x89PNG")
