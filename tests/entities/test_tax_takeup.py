"""Take-up of programs the CPS file reports no receipt of: drawn at the carried published
rates (EITC by EITC children), on the right entity, deterministic for the seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex_assets.entities.takeup import take_up_rates
from microplex_assets.entities.tax_takeup import DRAWN, add_drawn_take_up, eitc_children


def frames(units: int = 60_000, seed: int = 3) -> tuple[pd.DataFrame, ...]:
    rng = np.random.default_rng(seed)
    household = pd.DataFrame(
        {"household_id": np.arange(1, units + 1), "household_weight": rng.uniform(100, 900, units)}
    )
    tax_unit = pd.DataFrame(
        {
            "tax_unit_id": np.arange(1, units + 1),
            "household_id": np.arange(1, units + 1),
            "eitc_children": rng.integers(0, 5, units),
        }
    )
    person = pd.DataFrame(
        {
            "person_id": np.arange(1, units + 1),
            "household_id": np.arange(1, units + 1),
            "tax_unit_id": np.arange(1, units + 1),
            "role": "head",
            "age": rng.integers(0, 90, units),
        }
    )
    return person, tax_unit, household


def test_carried_rates_have_the_new_programs():
    rates, entry = take_up_rates()
    assert [rates[f"eitc_{k}"]["US"] for k in range(4)] == [0.65, 0.86, 0.85, 0.85]
    assert rates["aca"] == {"US": 0.672} and rates["dc_ptc"] == {"US": 0.32}
    assert rates["head_start"] == {"US": 0.3} and rates["early_head_start"] == {"US": 0.09}
    assert "eitc.yaml" in entry["original_sha256"]


def test_weighted_shares_reach_the_rates_by_entity_and_eitc_children():
    person, tax_unit, household = frames()
    summary = add_drawn_take_up(person, tax_unit, household, seed=5)
    weight = household["household_weight"].to_numpy()
    children = np.minimum(tax_unit["eitc_children"].to_numpy(), 3)
    flags = tax_unit["takes_up_eitc"].to_numpy(bool)
    for group, rate in enumerate([0.65, 0.86, 0.85, 0.85]):
        members = children == group
        share = weight[members] @ flags[members] / weight[members].sum()
        assert share == pytest.approx(rate, abs=0.015)
    rates = {"aca": 0.672, "dc_ptc": 0.32, "head_start": 0.3, "early_head_start": 0.09}
    for variable, (entity, program) in DRAWN.items():
        table = tax_unit if entity == "tax_unit" else person
        assert variable in table.columns and table[variable].dtype == bool
        assert summary[variable]["take_up_share"] == pytest.approx(rates[program], abs=0.01)
    again = frames()
    add_drawn_take_up(*again, seed=5)
    assert again[1]["takes_up_eitc"].equals(tax_unit["takes_up_eitc"])


def test_eitc_children_fall_back_to_dependents_under_19():
    person = pd.DataFrame(
        {
            "tax_unit_id": [1, 1, 1, 2, 2],
            "role": ["head", "dependent", "dependent", "head", "dependent"],
            "age": [40, 10, 20, 50, 18],
        }
    )
    tax_unit = pd.DataFrame({"tax_unit_id": [1, 2]})
    assert eitc_children(person, tax_unit).tolist() == [1, 1]
    tax_unit["eitc_children"] = [2, np.nan]
    assert eitc_children(person, tax_unit).tolist() == [2, 1]
