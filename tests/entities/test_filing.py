"""Voluntary filing (stage 6, ``entities/filing.py``): units with income withheld at source
file, others do not, and PolicyEngine then counts them as filers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex_assets.candidate.backends import run_backend
from microplex_assets.entities.build import build_entity_bundle
from microplex_assets.entities.filing import VOLUNTARY_FILING, add_voluntary_filing
from microplex_assets.publication.h5_export import write_policyengine_h5
from tests.frames import tiny_scaffold


def test_units_with_wages_or_a_pension_file_and_others_do_not():
    # unit 1: head's wages; 2: Social Security only; 3: the spouse's pension; 4: a spine
    # record without the columns (NaN); 5: a wage loss is not withheld income
    person = pd.DataFrame(
        {
            "tax_unit_id": [1, 2, 3, 3, 4, 5],
            "employment_income_before_lsr": [8_000.0, 0.0, 0.0, 0.0, np.nan, -500.0],
            "taxable_private_pension_income": [0.0, 0.0, 0.0, 6_000.0, np.nan, 0.0],
            "social_security_retirement": [0.0, 15_000.0, 0.0, 0.0, np.nan, 0.0],
        }
    )
    tax_unit = pd.DataFrame({"tax_unit_id": [1, 2, 3, 4, 5], "household_id": [1, 2, 3, 4, 4]})
    household = pd.DataFrame(
        {"household_id": [1, 2, 3, 4], "household_weight": [1.0, 3.0, 1.0, 5.0]}
    )
    summary = add_voluntary_filing(person, tax_unit, household)
    assert tax_unit[VOLUNTARY_FILING].tolist() == [True, False, True, False, False]
    assert summary["units"] == 2
    assert summary["weighted_share"] == pytest.approx(2 / 15, abs=1e-4)


def test_without_the_columns_nobody_files_voluntarily():
    person = pd.DataFrame({"tax_unit_id": [1, 2]})
    tax_unit = pd.DataFrame({"tax_unit_id": [1, 2], "household_id": [1, 2]})
    household = pd.DataFrame({"household_id": [1, 2], "household_weight": [1.0, 1.0]})
    summary = add_voluntary_filing(person, tax_unit, household)
    assert not tax_unit[VOLUNTARY_FILING].any() and summary["units"] == 0


def test_low_wage_units_become_filers_in_policyengine(tmp_path: Path, pe_system):
    """A wage earner under the filing threshold files only through this input; income tax
    is unchanged by it (no tax or credit amount reads it)."""
    from policyengine_us import Microsimulation

    frame = tiny_scaffold(households=60, states=(6,))
    person = frame.tables["person"]
    # a third of households without wages, a third with $3,000 (under the filing threshold)
    third = person["household_id"] % 3
    wages = person["employment_income_before_lsr"]
    person["employment_income_before_lsr"] = np.where(third == 0, 0.0, wages)
    person.loc[(third == 1) & (wages > 0), "employment_income_before_lsr"] = 3_000.0
    bundle = build_entity_bundle(run_backend("seed_passthrough", frame))
    units = bundle.tables["tax_unit"]
    assert units[VOLUNTARY_FILING].any() and not units[VOLUNTARY_FILING].all()
    path = tmp_path / "filing.h5"
    write_policyengine_h5(bundle, path, pe_system)
    simulation = Microsimulation(dataset=str(path))
    voluntary = simulation.calculate(VOLUNTARY_FILING, 2024).to_numpy(dtype=bool)
    filer = simulation.calculate("tax_unit_is_filer", 2024).to_numpy(dtype=bool)
    required = simulation.calculate("tax_unit_is_required_to_file", 2024).to_numpy(dtype=bool)
    assert voluntary.sum() == units[VOLUNTARY_FILING].sum()
    assert filer[voluntary].all()
    tax = simulation.calculate("income_tax", 2024).to_numpy()
    simulation_without = Microsimulation(dataset=str(path))
    simulation_without.set_input(VOLUNTARY_FILING, 2024, np.zeros_like(voluntary))
    filer_without = simulation_without.calculate("tax_unit_is_filer", 2024).to_numpy(dtype=bool)
    # some units file only because of the rule, and nothing else changes for them
    assert (filer & ~filer_without & ~required).any()
    assert simulation_without.calculate("income_tax", 2024).to_numpy() == pytest.approx(tax)
