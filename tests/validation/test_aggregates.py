import pytest

from microplex_assets.validation.aggregates import (
    AGGREGATES,
    format_aggregates_markdown,
    national_aggregates,
)
from microplex_resources.policyengine_runtime import policyengine_microsimulation


def test_aggregates_have_every_quantity_and_weighted_population(good_h5, bundle):
    simulation = policyengine_microsimulation(good_h5)
    table = national_aggregates(simulation, 2024).set_index("quantity")
    assert list(table.index) == [quantity for quantity, _, _ in AGGREGATES]
    household = bundle.household.set_index("household_id")["household_weight"]
    expected_people = bundle.person["household_id"].map(household).sum()
    assert table.loc["population", "weighted_total"] == pytest.approx(expected_people, rel=1e-5)
    assert table.loc["households", "weighted_total"] == pytest.approx(household.sum(), rel=1e-5)
    wages = (
        bundle.person["employment_income_before_lsr"] * bundle.person["household_id"].map(household)
    ).sum()
    assert table.loc["employment_income", "weighted_total"] == pytest.approx(wages, rel=1e-3)
    assert "$" in format_aggregates_markdown(table.reset_index())
