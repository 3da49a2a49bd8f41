"""Local shards borrow whole households from similar states for their short target bands."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from microplex_assets.seed.local_support import (
    SupportNeed,
    borrow_for_support,
    similar_states,
    state_profiles,
    support_counts,
    support_needs,
    tax_unit_income,
)
from microplex_assets.seed.seed import build_local_seed
from microplex_assets.targets.model import Target, TargetFilter, TargetSet
from tests.frames import tiny_scaffold

SOURCE = {"agency": "test", "table": "synthetic", "year": 2024}
AGI = "adjusted_gross_income"
BANDS = {
    "agi_under_1": (-math.inf, 1.0),
    "agi_1_50k": (1.0, 50_000.0),
    "agi_50k_1m": (50_000.0, 1_000_000.0),
    "agi_1m_plus": (1_000_000.0, math.inf),
}


def agi_target(state: str, band: str, value: float) -> Target:
    low, high = BANDS[band]
    return Target(
        name=f"irs_soi/adjusted_gross_income/sum/{band}/state/{state}",
        value=value,
        period=2024,
        variable=AGI,
        aggregation="sum",
        entity="tax_unit",
        scope="filer",
        geography=state,
        family="agi",
        group="irs_soi/agi_by_state",
        source=SOURCE,
        filters=(TargetFilter(AGI, low, high),),
    )


def returns_target(state: str, band: str, value: float) -> Target:
    low, high = BANDS[band]
    return Target(
        name=f"irs_soi/returns/count/{band}/state/{state}",
        value=value,
        period=2024,
        variable="tax_unit_is_filer",
        aggregation="count",
        entity="tax_unit",
        scope="filer",
        geography=state,
        family="returns",
        group="irs_soi/returns_by_state",
        source=SOURCE,
        filters=(TargetFilter(AGI, low, high),),
    )


def population_target(state: str, value: float) -> Target:
    return Target(
        name=f"census/population/count/state/{state}",
        value=value,
        period=2024,
        variable="person_count",
        aggregation="count",
        entity="person",
        scope="population",
        geography=state,
        family="population",
        group="census/population_by_state",
        source=SOURCE,
    )


def snap_target(state: str, value: float) -> Target:
    return Target(
        name=f"usda/snap/sum/state/{state}",
        value=value,
        period=2024,
        variable="snap",
        aggregation="sum",
        entity="spm_unit",
        scope="spm_unit",
        geography=state,
        family="snap",
        group="usda/snap_by_state",
        source=SOURCE,
    )


def national_agi(value: float) -> Target:
    return Target(
        name="irs_soi/adjusted_gross_income/sum/agi_1m_plus/national/US",
        value=value,
        period=2024,
        variable=AGI,
        aggregation="sum",
        entity="tax_unit",
        scope="filer",
        geography="US",
        family="agi",
        group="irs_soi/agi_by_band",
        source=SOURCE,
        filters=(TargetFilter(AGI, 1_000_000.0),),
    )


def shaped_states(shapes: dict[str, tuple[float, float, float]], scale: dict[str, float]):
    """AGI targets of three bands per state with the given shares, times a state's size."""
    targets = []
    for state, shares in shapes.items():
        for band, share in zip(("agi_1_50k", "agi_50k_1m", "agi_1m_plus"), shares, strict=True):
            targets.append(agi_target(state, band, share * scale.get(state, 1.0) * 1e9))
    return targets


# ------------------------------------------------------------------ support needs


def test_one_need_per_distinct_agi_band_plus_snap():
    state = TargetSet(
        (
            agi_target("CA", "agi_1m_plus", 5e9),
            returns_target("CA", "agi_1m_plus", 1e3),  # same band, second group: one need
            agi_target("CA", "agi_under_1", -2e8),
            returns_target("CA", "agi_1_50k", 1e6),
            population_target("CA", 4e7),  # no AGI filter: no need
            snap_target("CA", 1e10),
        )
    )
    needs = support_needs(state)
    assert [n.label for n in needs] == [
        "AGI agi_under_1",
        "AGI agi_1_50k",
        "AGI agi_1m_plus",
        "SNAP households",
    ]
    assert (needs[0].low, needs[0].high) == (-math.inf, 1.0)
    assert (needs[2].low, needs[2].high) == (1_000_000.0, math.inf)
    assert needs[-1].flag == "receives_snap"
    assert all(n.flag is None for n in needs[:-1])


def test_no_snap_need_without_a_snap_target():
    needs = support_needs(TargetSet((agi_target("CA", "agi_1m_plus", 5e9),)))
    assert [n.label for n in needs] == ["AGI agi_1m_plus"]
    assert support_needs(TargetSet(())) == []


def test_the_under_one_dollar_band_needs_losses_not_zeros():
    (need,) = support_needs(TargetSet((agi_target("CA", "agi_under_1", -1e8),)))
    income = pd.Series([-5_000.0, 0.0, 0.0, 0.5, 1.0, 40_000.0])
    assert need.matches_units(income).tolist() == [True, False, False, True, False, False]
    inclusive = SupportNeed("zeros count", high=1.0, nonzero=False)
    assert inclusive.matches_units(income).tolist() == [True, True, True, True, False, False]


def test_support_counts_only_units_of_the_given_households():
    households = pd.DataFrame({"household_id": [1, 2, 3], "receives_snap": [True, False, True]})
    units = pd.DataFrame(
        {
            "household_id": [1, 1, 2, 3, 9, 9],  # household 9 is not in the sample
            "income": [2e6, 3e6, -10.0, 0.0, 5e6, -4.0],
        }
    )
    needs = [
        SupportNeed("rich", 1e6),
        SupportNeed("losses", high=1.0),
        SupportNeed("SNAP households", flag="receives_snap"),
    ]
    assert support_counts(households, units, needs) == {
        "rich": 2,
        "losses": 1,
        "SNAP households": 2,
    }
    # A flag the household table lacks means no support, not an error.
    no_flag = households.drop(columns="receives_snap")
    assert support_counts(no_flag, units, needs[2:]) == {"SNAP households": 0}


def test_tax_unit_income_sums_the_income_columns_of_its_persons():
    person = pd.DataFrame(
        {
            "tax_unit_id": [10, 10, 20, 20],
            "employment_income_before_lsr": [1_000.0, 500.0, 0.0, 0.0],
            "taxable_interest_income": [10.0, 0.0, 0.0, 7.0],
            "farm_income": [0.0, 0.0, -3_000.0, 0.0],
            "age": [40, 38, 70, 68],  # not income
        }
    )
    tax_unit = pd.DataFrame({"tax_unit_id": [20, 30, 10]}, index=[5, 6, 7])
    income = tax_unit_income(tax_unit, person)
    assert income.index.tolist() == [5, 6, 7]
    assert income.tolist() == [-2_993.0, 0.0, 1_510.0]


# ------------------------------------------------------------------ similar states


def test_similar_states_ranks_the_closest_shape_first_whatever_the_size():
    targets = shaped_states(
        {
            "CA": (0.2, 0.3, 0.5),
            "TX": (0.2, 0.3, 0.5),  # CA's shape, a tenth of its size
            "NY": (0.3, 0.3, 0.4),
            "WY": (0.8, 0.15, 0.05),
        },
        scale={"CA": 10.0, "NY": 3.0},
    )
    target_set = TargetSet((*targets, national_agi(1e12)))
    assert similar_states(target_set, "CA") == ["TX", "NY", "WY"]
    assert similar_states(target_set, "WY") == ["NY", "CA", "TX"]
    profiles = state_profiles(target_set)
    assert sorted(profiles.index) == ["CA", "NY", "TX", "WY"]  # the national row is dropped
    assert np.allclose(profiles.mean(), 0.0)


def test_program_rates_per_person_count_toward_similarity():
    shapes = {state: (0.2, 0.3, 0.5) for state in ("CA", "TX", "NY")}
    population = {"CA": 40e6, "TX": 30e6, "NY": 20e6}
    # Same income shape everywhere: the SNAP outlay per person decides. CA's is 100,
    # NY's 110 (nearest), TX's 300.
    snap = {"CA": 100 * 40e6, "TX": 300 * 30e6, "NY": 110 * 20e6}
    targets = [
        *shaped_states(shapes, {}),
        *(population_target(s, v) for s, v in population.items()),
        *(snap_target(s, v) for s, v in snap.items()),
    ]
    assert similar_states(TargetSet(tuple(targets)), "CA") == ["NY", "TX"]


def test_a_state_without_targets_cannot_be_ranked():
    target_set = TargetSet(tuple(shaped_states({"CA": (0.2, 0.3, 0.5), "TX": (0.5, 0.3, 0.2)}, {})))
    with pytest.raises(ValueError, match="no state targets for WY"):
        similar_states(target_set, "WY")


# ------------------------------------------------------------------ borrowing

RICH = SupportNeed("AGI agi_1m_plus", 1_000_000.0)
SNAP = SupportNeed("SNAP households", flag="receives_snap")
FIPS = {"CA": 6, "TX": 48, "NY": 36, "WY": 56}


def pool_of(rows: list[tuple[int, str, float, list[float], bool]]):
    """(household_id, state, weight, tax-unit incomes, receives_snap) -> pool and units."""
    pool = pd.DataFrame(
        [
            {
                "household_id": hid,
                "state_fips": FIPS[state],
                "household_weight": weight,
                "receives_snap": snap,
            }
            for hid, state, weight, _, snap in rows
        ]
    )
    units = pd.DataFrame(
        [
            {"tax_unit_id": hid * 10 + i, "household_id": hid, "income": income}
            for hid, _, _, incomes, _ in rows
            for i, income in enumerate(incomes)
        ]
    )
    return pool, units


@pytest.fixture()
def pool_and_units():
    rows = [
        # CA: one rich unit, one SNAP household; weight total 1,000.
        (1, "CA", 200.0, [2e6], False),
        (2, "CA", 300.0, [40_000.0], True),
        (3, "CA", 500.0, [10_000.0, 0.0], False),
        # TX (nearest): one rich unit; weight total 4,000.
        (11, "TX", 1_000.0, [3e6], False),
        (12, "TX", 1_000.0, [20_000.0], True),
        (13, "TX", 2_000.0, [50_000.0], False),
        # NY (next): three rich households; weight total 500.
        (21, "NY", 100.0, [4e6], False),
        (22, "NY", 100.0, [5e6], True),
        (23, "NY", 100.0, [6e6], False),
        (24, "NY", 200.0, [30_000.0], True),
        # WY: nothing rich, no SNAP.
        (31, "WY", 50.0, [1_000.0], False),
    ]
    return pool_of(rows)


def test_a_short_band_borrows_from_the_nearest_state_first(pool_and_units):
    pool, units = pool_and_units
    sample = pool[pool["state_fips"] == 6]
    borrowed, report = borrow_for_support(
        sample, pool, units, "CA", [RICH], ["TX", "NY", "WY"], min_support=3, seed=0
    )
    # CA has one rich unit; TX's only one comes first, then one of NY's three.
    assert len(borrowed) == 2
    from_tx = borrowed[borrowed["borrowed_from_state_fips"] == 48]
    from_ny = borrowed[borrowed["borrowed_from_state_fips"] == 36]
    assert from_tx["household_id"].tolist() == [11]
    assert len(from_ny) == 1 and from_ny["household_id"].iloc[0] in {21, 22, 23}
    assert (borrowed["state_fips"] == 6).all()
    # Weights scale by the two states' household-weight totals (CA 1,000).
    assert from_tx["household_weight"].iloc[0] == pytest.approx(1_000.0 * 1_000.0 / 4_000.0)
    assert from_ny["household_weight"].iloc[0] == pytest.approx(100.0 * 1_000.0 / 500.0)
    # The pool itself is untouched.
    assert pool.loc[pool["household_id"] == 11, "state_fips"].item() == 48
    assert pool.loc[pool["household_id"] == 11, "household_weight"].item() == 1_000.0
    (row,) = report.to_dict("records")
    assert row == {
        "need": "AGI agi_1m_plus",
        "own_support": 1,
        "min_support": 3,
        "households_borrowed": 2,
        "borrowed_from": "TX (1), NY (1)",
        "still_short": 0,
    }


def test_no_borrowing_when_the_state_has_support(pool_and_units):
    pool, units = pool_and_units
    sample = pool[pool["state_fips"] == 6]
    borrowed, report = borrow_for_support(
        sample, pool, units, "CA", [RICH, SNAP], ["TX", "NY"], min_support=1, seed=0
    )
    assert borrowed.empty
    assert "borrowed_from_state_fips" in borrowed.columns
    assert report["own_support"].tolist() == [1, 1]
    assert report["households_borrowed"].tolist() == [0, 0]
    assert report["borrowed_from"].tolist() == ["", ""]
    assert report["still_short"].tolist() == [0, 0]


def test_still_short_when_no_similar_state_can_help(pool_and_units):
    pool, units = pool_and_units
    sample = pool[pool["state_fips"] == 6]
    borrowed, report = borrow_for_support(
        sample, pool, units, "CA", [RICH], ["WY"], min_support=4, seed=0
    )
    assert borrowed.empty
    (row,) = report.to_dict("records")
    assert row["own_support"] == 1
    assert row["households_borrowed"] == 0
    assert row["borrowed_from"] == ""
    assert row["still_short"] == 3


def test_partial_help_reports_what_is_still_missing(pool_and_units):
    pool, units = pool_and_units
    sample = pool[pool["state_fips"] == 6]
    borrowed, report = borrow_for_support(
        sample, pool, units, "CA", [RICH], ["WY", "TX", "NY"], min_support=10, seed=0
    )
    # Every rich unit outside CA (1 in TX, 3 in NY) is taken; WY has none.
    assert sorted(borrowed["household_id"]) == [11, 21, 22, 23]
    (row,) = report.to_dict("records")
    assert row["borrowed_from"] == "TX (1), NY (3)"
    assert row["still_short"] == 10 - 1 - 4


def test_a_household_is_borrowed_once_across_needs(pool_and_units):
    pool, units = pool_and_units
    sample = pool[pool["state_fips"] == 6]
    borrowed, report = borrow_for_support(
        sample, pool, units, "CA", [RICH, SNAP], ["NY"], min_support=4, seed=0
    )
    assert borrowed["household_id"].is_unique
    # RICH takes all three rich NY households (22 receives SNAP too); SNAP can take only 24.
    assert sorted(borrowed["household_id"]) == [21, 22, 23, 24]
    assert report["households_borrowed"].tolist() == [3, 1]


def test_a_household_borrowed_for_one_need_counts_toward_the_next(pool_and_units):
    pool, units = pool_and_units
    pool = pool[pool["household_id"].isin([1, 2, 3, 22, 24])]
    sample = pool[pool["state_fips"] == 6]
    borrowed, report = borrow_for_support(
        sample, pool, units, "CA", [RICH, SNAP], ["NY"], min_support=2, seed=0
    )
    # 22 is rich and on SNAP: borrowed for RICH, it also gives SNAP its second household.
    assert borrowed["household_id"].tolist() == [22]
    assert report["households_borrowed"].tolist() == [1, 0]
    assert report["own_support"].tolist() == [1, 1]  # the state's own records, as reported


def test_a_household_with_several_supporting_units_counts_each(pool_and_units):
    pool, units = pool_and_units
    extra_pool, extra_units = pool_of([(41, "TX", 500.0, [2e6, 7e6, 9e6], False)])
    pool = pd.concat([pool, extra_pool], ignore_index=True)
    units = pd.concat([units, extra_units], ignore_index=True)
    sample = pool[pool["state_fips"] == 6]
    borrowed, report = borrow_for_support(
        sample, pool, units, "CA", [RICH], ["TX", "NY"], min_support=5, seed=0
    )
    # TX's households 11 (one unit) and 41 (three) cover the four missing units.
    assert sorted(borrowed["household_id"]) == [11, 41]
    assert report["still_short"].item() == 0
    assert report["borrowed_from"].item() == "TX (2)"


def test_borrowing_is_deterministic_for_a_seed(pool_and_units):
    pool, units = pool_and_units
    sample = pool[pool["state_fips"] == 6]

    def run(seed: int) -> list[int]:
        borrowed, _ = borrow_for_support(
            sample, pool, units, "CA", [RICH], ["NY"], min_support=2, seed=seed
        )
        return borrowed["household_id"].tolist()

    assert run(7) == run(7)
    draws = {tuple(run(seed)) for seed in range(20)}
    assert all(len(d) == 1 and d[0] in {21, 22, 23} for d in draws)
    assert len(draws) > 1  # the seed, not the pool order, picks the household


# ------------------------------------------------------------------ build_local_seed

# tiny_scaffold puts household h in states[h % 4]: CA (6) gets h = 1 mod 4, never a
# multiple of 50, so none of the scaffold's $5m earners; AL and NY get all of them.
STATES = (1, 6, 36, 48)


def local_targets() -> TargetSet:
    shapes = {
        "CA": (0.4, 0.4, 0.2),
        "NY": (0.4, 0.4, 0.2),  # CA's twin: borrowed from first
        "AL": (0.6, 0.35, 0.05),
        "TX": (0.9, 0.09, 0.01),
    }
    return TargetSet(
        (
            *shaped_states(shapes, {}),
            returns_target("CA", "agi_1_50k", 1e6),
            snap_target("CA", 1e9),
            national_agi(1e12),
        )
    )


@pytest.fixture(scope="module")
def scaffold():
    return tiny_scaffold(households=400, seed=2, states=STATES)


def test_local_seed_is_the_states_sample_plus_borrowed_support(scaffold):
    target_set = local_targets()
    assert similar_states(target_set, "CA")[0] == "NY"
    frame, report = build_local_seed(
        scaffold, "CA", 6, households=60, seed=5, target_set=target_set, min_support=3
    )
    household = frame.tables["household"]
    assert (household["state_fips"] == 6).all()
    assert household["household_id"].is_unique
    own = household[household["borrowed_from_state_fips"] == 0]
    borrowed = household[household["borrowed_from_state_fips"] != 0]
    scaffold_households = scaffold.tables["household"].set_index("household_id")
    assert len(own) == 60
    assert (scaffold_households.loc[own["household_id"], "state_fips"] == 6).all()
    assert len(borrowed) == report["households_borrowed"] > 0
    assert set(borrowed["borrowed_from_state_fips"]) == {36}
    assert (scaffold_households.loc[borrowed["household_id"], "state_fips"] == 36).all()

    totals = scaffold.tables["household"].groupby("state_fips")["household_weight"].sum()
    original = scaffold_households.loc[borrowed["household_id"], "household_weight"].to_numpy()
    assert np.allclose(borrowed["household_weight"], original * totals[6] / totals[36])

    # Persons and tax units come with their households, borrowed ones included.
    for entity in ("tax_unit", "person"):
        ids = set(frame.tables[entity]["household_id"])
        assert ids == set(household["household_id"])

    support = {row["need"]: row for row in report["support"]}
    assert list(support) == [
        "AGI agi_1_50k",
        "AGI agi_50k_1m",
        "AGI agi_1m_plus",
        "SNAP households",
    ]
    rich = support["AGI agi_1m_plus"]
    assert rich["own_support"] == 0
    assert rich["households_borrowed"] == len(borrowed)
    assert rich["borrowed_from"] == f"NY ({len(borrowed)})"
    assert rich["still_short"] == 0
    assert support["AGI agi_1_50k"]["own_support"] >= 3
    assert support["AGI agi_1_50k"]["households_borrowed"] == 0
    assert support["SNAP households"]["own_support"] == int(own["receives_snap"].sum())
    assert report["state"] == "CA"

    # The rich band is now supported in the seed itself.
    units = frame.tables["tax_unit"].copy()
    units["income"] = tax_unit_income(units, frame.tables["person"])
    rich_units = units[units["income"] >= 1e6]
    assert len(rich_units) >= 3
    assert set(rich_units["household_id"]) == set(borrowed["household_id"])


def test_local_seed_of_a_state_the_scaffold_lacks_is_refused():
    small = tiny_scaffold(households=40, states=(1, 36))
    with pytest.raises(ValueError, match="no households in CA"):
        build_local_seed(small, "CA", 6, 20, 0, local_targets(), 3)
