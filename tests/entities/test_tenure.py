"""SPM tenure (stage 6): ownership from the CPS flag, mortgage status drawn by householder age,
and what PolicyEngine makes of it (``spm_unit_tenure_type`` and the SPM threshold)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex_assets.candidate.backends import run_backend
from microplex_assets.entities.build import build_entity_bundle
from microplex_assets.entities.demographics import carried_csv
from microplex_assets.entities.tenure import add_tenure
from microplex_assets.publication.h5_export import write_policyengine_h5
from tests.frames import tiny_scaffold


def tables(owner_flags: list[object], head_ages: list[int]):
    """One household per entry: two tax units (the flag on the first, False on the second,
    or no answer on both), each its own SPM unit; the first unit's head is the householder."""
    n = len(owner_flags)
    household = pd.DataFrame({"household_id": np.arange(1, n + 1), "household_weight": 1.0})
    tax_unit = pd.DataFrame(
        {
            "tax_unit_id": np.arange(1, 2 * n + 1),
            "household_id": np.repeat(household["household_id"], 2).to_numpy(),
            "home_owner_reported": [
                f for flag in owner_flags for f in (flag, None if flag is None else False)
            ],
        }
    )
    person = pd.DataFrame(
        {
            "household_id": tax_unit["household_id"],
            "tax_unit_id": tax_unit["tax_unit_id"],
            "spm_unit_id": tax_unit["tax_unit_id"],
            "age": [a for age in head_ages for a in (age, 30)],
            "is_household_head": [h for _ in range(n) for h in (True, False)],
        }
    )
    spm_unit = pd.DataFrame({"spm_unit_id": tax_unit["tax_unit_id"]})
    return person, tax_unit, spm_unit, household


def test_every_spm_unit_of_an_owning_household_owns_and_the_rest_rent():
    person, tax_unit, spm_unit, household = tables([True, False, None], [40, 40, 40])
    summary = add_tenure(person, tax_unit, spm_unit, household, seed=0)
    tenure = spm_unit["spm_unit_tenure_type"].tolist()
    # household 1: both units (the second reports no ownership itself) take its tenure
    assert tenure[0] == tenure[1] and tenure[0].startswith("OWNER_")
    assert tenure[2:] == ["RENTER"] * 4
    # household 3 has no ownership answer: left at PolicyEngine's default and counted
    assert summary["households_without_ownership_data"] == 1


def test_mortgage_status_follows_the_householders_age_at_the_carried_shares():
    n = 4_000
    person, tax_unit, spm_unit, household = tables([True] * n, [40] * (n // 2) + [70] * (n // 2))
    add_tenure(person, tax_unit, spm_unit, household, seed=3)
    head_units = spm_unit["spm_unit_tenure_type"].iloc[::2].to_numpy()
    free = head_units == "OWNER_WITHOUT_MORTGAGE"
    table, _ = carried_csv("mortgage_status_by_age.csv", ("min_age", "share_without_mortgage"))
    young, old = table.sort_values("min_age")["share_without_mortgage"].tolist()
    assert free[: n // 2].mean() == pytest.approx(young, abs=0.03)
    assert free[n // 2 :].mean() == pytest.approx(old, abs=0.03)
    again = spm_unit.copy()
    add_tenure(person, tax_unit, again, household, seed=3)
    assert again.equals(spm_unit)


def test_a_scaffold_without_the_flag_gets_no_tenure_column():
    person, tax_unit, spm_unit, household = tables([True], [40])
    summary = add_tenure(person, tax_unit.drop(columns="home_owner_reported"), spm_unit,
                         household, seed=0)  # fmt: skip
    assert "spm_unit_tenure_type" not in spm_unit.columns
    assert "not set" in summary["tenure"]


def test_tenure_lands_in_policyengine_and_lowers_the_free_and_clear_threshold(
    tmp_path: Path, pe_system
):
    from policyengine_us import Microsimulation

    frame = tiny_scaffold(households=60, states=(6,))
    units = frame.tables["tax_unit"]
    units["home_owner_reported"] = units["household_id"] % 2 == 0
    bundle = build_entity_bundle(run_backend("seed_passthrough", frame))
    bundle.household["county_fips"] = "06037"  # one county: thresholds differ by tenure only
    expected = bundle.tables["spm_unit"].set_index("spm_unit_id")["spm_unit_tenure_type"]
    assert set(expected) == {"RENTER", "OWNER_WITH_MORTGAGE", "OWNER_WITHOUT_MORTGAGE"}
    path = tmp_path / "tenure.h5"
    write_policyengine_h5(bundle, path, pe_system)
    simulation = Microsimulation(dataset=str(path))
    ids = simulation.calculate("spm_unit_id", 2024).to_numpy(dtype=int)
    tenure = simulation.calculate("spm_unit_tenure_type", 2024).to_numpy().astype(str)
    assert list(tenure) == expected.reindex(ids).tolist()
    # units of one composition: the free-and-clear threshold is well below the renter one
    person = bundle.person
    children = (person["age"] < 18).groupby(person["spm_unit_id"]).sum().reindex(ids)
    size = person.groupby("spm_unit_id").size().reindex(ids)
    table = pd.DataFrame(
        {
            "tenure": tenure,
            "threshold": simulation.calculate("spm_unit_spm_threshold", 2024).to_numpy(),
            "composition": list(zip(size, children, strict=True)),
        }
    )
    ratios = []
    for _, group in table.groupby("composition"):
        by_tenure = group.groupby("tenure")["threshold"].first()
        if {"RENTER", "OWNER_WITHOUT_MORTGAGE"} <= set(by_tenure.index):
            ratios.append(by_tenure["OWNER_WITHOUT_MORTGAGE"] / by_tenure["RENTER"])
    assert ratios and all(0.7 < r < 0.9 for r in ratios)


def test_ownership_flag_is_the_cps_households_answer_on_real_records(tmp_path, pe_system):
    """On real taxcalc households: the flag is e18500 > 0, and every tax unit of a household
    that is not a dependent filer gives the same answer (CPS h_tenure is a household item)."""
    from microplex_assets.sources.cps_taxcalc import load_taxcalc_cps, shipped_paths

    cps_path, weights_path = shipped_paths()
    cps, weights = pd.read_csv(cps_path), pd.read_csv(weights_path)
    several = cps.groupby(["FLPDYR", "h_seq"])["RECID"].transform("size") > 1
    keys = pd.concat([cps.groupby("FLPDYR").head(100), cps[several].head(150)])
    wanted = set(zip(keys["FLPDYR"], keys["h_seq"], strict=True))
    rows = np.array([k in wanted for k in zip(cps["FLPDYR"], cps["h_seq"], strict=True)])
    cps.loc[rows].to_csv(tmp_path / "cps.csv.gz", index=False, compression="gzip")
    weights.loc[rows].to_csv(tmp_path / "w.csv.gz", index=False, compression="gzip")
    frame = load_taxcalc_cps(2024, 0, pe_system, tmp_path / "cps.csv.gz", tmp_path / "w.csv.gz")
    units = frame.tables["tax_unit"].merge(
        cps.loc[rows, ["RECID", "e18500", "DSI"]], left_on="source_record_id", right_on="RECID"
    )
    assert (units["home_owner_reported"] == (units["e18500"] > 0)).all()
    answers = units[units["DSI"] == 0].groupby("household_id")["home_owner_reported"].nunique()
    assert (answers == 1).all()
    assert 0.4 < units["home_owner_reported"].mean() < 0.9
