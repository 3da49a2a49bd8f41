"""Family-structure inputs (stage 6): the separated head of a married-filing-separately unit,
own children on head and spouse; and what PolicyEngine makes of them (filing status, parent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from microplex_assets.candidate.backends import run_backend
from microplex_assets.entities.build import build_entity_bundle
from microplex_assets.entities.family import add_family_inputs
from microplex_assets.publication.h5_export import h5_arrays, write_policyengine_h5
from tests.frames import tiny_scaffold


def test_separated_heads_and_own_children_from_the_tax_units():
    person = pd.DataFrame(
        {
            "tax_unit_id": [1, 1, 1, 1, 2, 2, 3],
            "role": ["head", "spouse", "dependent", "dependent", "head", "dependent", "head"],
            "age": [40, 38, 7, 19, 35, 12, 50],
        }
    )
    status = pd.Series([2, 3, 3], index=[1, 2, 3])
    counts = add_family_inputs(person, status)
    assert person["is_separated"].tolist() == [False] * 4 + [True, False, True]
    # the 19-year-old dependent is not a child under 18; dependents get no count
    assert person["own_children_in_household"].tolist() == [1, 1, 0, 0, 1, 0, 0]
    assert counts == {"separated_heads": 2, "parents": 3}


def scaffold_with_a_separate_filer():
    """The tiny scaffold with one childless single unit turned married-filing-separately."""
    frame = tiny_scaffold(households=40)
    units, person = frame.tables["tax_unit"], frame.tables["person"]
    dependents = person[person["role"] == "dependent"]["tax_unit_id"].unique()
    single = units[(units["filing_status"] == 1) & ~units["tax_unit_id"].isin(dependents)]
    chosen = int(single["tax_unit_id"].iloc[0])
    units.loc[units["tax_unit_id"] == chosen, "filing_status"] = 3
    return frame, chosen


def test_family_inputs_land_in_policyengine(tmp_path: Path, pe_system):
    from policyengine_us import Microsimulation

    frame, separate_unit = scaffold_with_a_separate_filer()
    bundle = build_entity_bundle(run_backend("seed_passthrough", frame))
    arrays, report = h5_arrays(bundle, pe_system)
    assert {"is_separated", "own_children_in_household"} <= set(report.exported["person"])
    assert arrays["own_children_in_household"].dtype == np.dtype(
        pe_system.variables["own_children_in_household"].dtype
    )
    path = tmp_path / "family.h5"
    write_policyengine_h5(bundle, path, pe_system)
    simulation = Microsimulation(dataset=str(path))
    person = bundle.person
    tax_unit_ids = simulation.calculate("tax_unit_id", 2024).to_numpy(dtype=int)
    status = pd.Series(
        simulation.calculate("filing_status", 2024).to_numpy(), index=tax_unit_ids
    ).map(lambda value: getattr(value, "name", str(value)))
    assert status[separate_unit] == "SEPARATE"
    assert (status.drop(separate_unit) != "SEPARATE").all()
    is_parent = simulation.calculate("is_parent", 2024).to_numpy(dtype=bool)
    person_ids = simulation.calculate("person_id", 2024).to_numpy(dtype=int)
    expected = person.set_index("person_id")["own_children_in_household"] > 0
    assert is_parent.tolist() == expected.reindex(person_ids).tolist()
    assert is_parent.any()
    district = simulation.calculate("congressional_district_geoid", 2024).to_numpy(dtype=int)
    state = simulation.calculate("state_fips", 2024).to_numpy(dtype=int)
    assert (district // 100 == state).all()
    takes_up = simulation.calculate("takes_up_eitc", 2024).to_numpy(dtype=bool)
    assert len(takes_up) == len(bundle.tables["tax_unit"]) and 0 < takes_up.sum() < len(takes_up)
