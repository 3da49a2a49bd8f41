"""Renters' rent (stage 6, ``entities/rent.py``): the district's carried median on the
householder, nothing for owners or unknown tenure, and what PolicyEngine makes of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex_assets.candidate.backends import run_backend
from microplex_assets.entities.build import build_entity_bundle
from microplex_assets.entities.rent import RENT, add_rent, monthly_rents
from microplex_assets.publication.h5_export import write_policyengine_h5
from tests.frames import tiny_scaffold


def households(tenures: list[str], geoids: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One household per entry, each a householder and one other member."""
    n = len(tenures)
    household = pd.DataFrame(
        {
            "household_id": np.arange(1, n + 1),
            "household_weight": 1.0,
            "tenure_type": tenures,
            "congressional_district_geoid": geoids,
        }
    )
    person = pd.DataFrame(
        {
            "household_id": np.repeat(household["household_id"], 2).to_numpy(),
            "is_household_head": [h for _ in range(n) for h in (True, False)],
        }
    )
    return person, household


def test_renter_householders_pay_their_districts_median_and_nobody_else_pays():
    by_district, national, _ = monthly_rents()
    ca12, al01 = by_district.loc[612], by_district.loc[101]
    person, household = households(
        ["RENTED", "RENTED", "OWNED_OUTRIGHT", "RENTED", "RENTED"], [612, 101, 612, 9999, 612]
    )
    known = np.array([True, True, True, True, False])  # the last: no ownership data
    summary = add_rent(person, household, known)
    rent = person[RENT].to_numpy()
    assert rent[0::2].tolist() == pytest.approx([12 * ca12, 12 * al01, 0.0, 12 * national, 0.0])
    assert (rent[1::2] == 0).all()  # only the householder carries it
    assert summary["renter_households"] == 3 and summary["renters_at_national_median"] == 1
    assert ca12 > al01  # San Francisco above Alabama's first district: the file is the real one


def test_an_observed_rent_from_a_survey_is_kept():
    person, household = households(["RENTED"], [612])
    person[RENT] = [9_000.0, 0.0]
    summary = add_rent(person, household, np.array([True]))
    assert person[RENT].tolist() == [9_000.0, 0.0] and summary["rent"].startswith("observed")


def test_rent_reaches_policyengine_and_the_snap_shelter_deduction(tmp_path: Path, pe_system):
    from policyengine_us import Microsimulation

    frame = tiny_scaffold(households=60, states=(6,))
    units = frame.tables["tax_unit"]
    units["home_owner_reported"] = units["household_id"] % 2 == 0
    bundle = build_entity_bundle(run_backend("seed_passthrough", frame))
    renters = bundle.household["tenure_type"].eq("RENTED").to_numpy()
    assert renters.any() and not renters.all()
    path = tmp_path / "rent.h5"
    write_policyengine_h5(bundle, path, pe_system)
    simulation = Microsimulation(dataset=str(path))
    ids = simulation.calculate("household_id", 2024).to_numpy(dtype=int)
    paid = simulation.calculate("pre_subsidy_rent", 2024, map_to="household").to_numpy()
    expected = bundle.person.groupby("household_id")[RENT].sum().reindex(ids).to_numpy()
    assert paid == pytest.approx(expected)
    rented = bundle.household.set_index("household_id")["tenure_type"].reindex(ids).eq("RENTED")
    assert (paid[rented.to_numpy()] > 0).all() and (paid[~rented.to_numpy()] == 0).all()
    # housing_cost (what SNAP's shelter deduction reads) now holds the rent of renters
    housing = simulation.calculate("housing_cost", 2024, map_to="household").to_numpy()
    assert (housing[rented.to_numpy()] >= paid[rented.to_numpy()] - 1e-6).all()
