"""Target materialization on a real policyengine-us simulation of 40 small households."""

from __future__ import annotations

import numpy as np
import pytest

from microplex_assets.calibration.matrix import (
    materialize_targets,
    targets_for_geography,
)
from microplex_assets.calibration.simulation_arrays import SimulationArrays
from microplex_assets.targets.model import Target, TargetFilter, TargetSet
from microplex_resources.policyengine_runtime import policyengine_microsimulation

SOURCE = {"agency": "test", "table": "hand-made", "year": 2024}


def target(name: str, **fields) -> Target:
    defaults = dict(
        value=1e6,
        period=2024,
        variable="employment_income",
        aggregation="sum",
        entity="person",
        scope="population",
        geography="US",
        family="wages",
        group=name.split("/")[0],
        source=SOURCE,
    )
    return Target(name=name, **{**defaults, **fields})


@pytest.fixture(scope="module")
def arrays(tmp_path_factory, pe_system):
    from microplex_assets.candidate.backends import run_backend
    from microplex_assets.entities.build import build_entity_bundle
    from microplex_assets.publication.h5_export import write_policyengine_h5
    from tests.frames import tiny_scaffold

    bundle = build_entity_bundle(run_backend("seed_passthrough", tiny_scaffold(households=40)))
    path = tmp_path_factory.mktemp("matrix") / "candidate.h5"
    write_policyengine_h5(bundle, path, pe_system)
    return SimulationArrays(policyengine_microsimulation(path), 2024), bundle


def test_sum_target_matches_policyengine_weighted_total(arrays):
    sim_arrays, _ = arrays
    matrix = materialize_targets(sim_arrays, TargetSet((target("wages/all"),)))
    weights = sim_arrays.values("household_weight", "household")
    expected = float(sim_arrays.simulation.calculate("employment_income", 2024).sum())
    assert matrix.estimates(weights)[0] == pytest.approx(expected, rel=1e-5)


def test_state_and_age_filters_count_the_right_people(arrays):
    sim_arrays, bundle = arrays
    children_ny = target(
        "population/NY/children",
        aggregation="count",
        variable="age",
        family="population",
        geography="NY",
        filters=(TargetFilter("age", 0, 18),),
    )
    matrix = materialize_targets(sim_arrays, TargetSet((children_ny,)))
    person = bundle.person.merge(bundle.household[["household_id", "state_fips"]])
    expected = (
        ((person["state_fips"] == 36) & (person["age"] < 18)).groupby(person["household_id"]).sum()
    )
    dense = np.asarray(matrix.matrix.todense()).ravel()
    by_id = dict(zip(matrix.household_ids, dense, strict=True))
    assert {h: by_id[h] for h in expected.index} == {h: float(v) for h, v in expected.items()}


def test_recipient_count_and_dollar_sum_are_different_targets(arrays):
    sim_arrays, _ = arrays
    count = target(
        "ssi/recipients", variable="ssi", aggregation="count", scope="recipient", family="ssi"
    )
    value = target("ssi/value", variable="ssi", family="ssi")
    matrix = materialize_targets(sim_arrays, TargetSet((count, value)))
    assert list(matrix.targets.names) == ["ssi/recipients", "ssi/value"]
    count_row, value_row = (np.asarray(matrix.matrix[i].todense()).ravel() for i in range(2))
    ssi = sim_arrays.values("ssi", "person")
    assert count_row.sum() == (ssi > 0).sum()  # people, not dollars
    assert value_row.sum() == pytest.approx(ssi.sum(), rel=1e-6)


def test_filer_scope_counts_only_filing_tax_units(arrays):
    sim_arrays, _ = arrays
    filers = target(
        "returns/all",
        variable="adjusted_gross_income",
        aggregation="count",
        entity="tax_unit",
        scope="filer",
        family="returns",
    )
    everyone = target(
        "tax_units/all",
        variable="adjusted_gross_income",
        aggregation="count",
        entity="tax_unit",
        scope="tax_unit",
        family="returns",
    )
    matrix = materialize_targets(sim_arrays, TargetSet((filers, everyone)))
    totals = np.asarray(matrix.matrix.sum(axis=1)).ravel()
    assert totals[0] == sim_arrays.values("tax_unit_is_filer", "tax_unit").sum()
    assert totals[1] == len(sim_arrays.values("tax_unit_id", "tax_unit"))


def test_enum_filter_keeps_only_the_named_filing_statuses(arrays):
    sim_arrays, _ = arrays
    joint = target(
        "returns/joint",
        variable="adjusted_gross_income",
        aggregation="count",
        entity="tax_unit",
        scope="tax_unit",
        family="returns",
        filters=(TargetFilter("filing_status", equals=("JOINT",)),),
    )
    matrix = materialize_targets(sim_arrays, TargetSet((joint,)))
    statuses = sim_arrays.values("filing_status", "tax_unit").astype(str)
    assert matrix.matrix.sum() == (statuses == "JOINT").sum() > 0


def test_unscorable_targets_are_dropped_with_their_reason(arrays):
    sim_arrays, _ = arrays
    targets = TargetSet(
        (
            target("missing/var", variable="not_a_policyengine_variable"),
            target("absent/WY", geography="WY"),
            target("zero/value", value=0.0),
            target(
                "nobody/over_200",
                aggregation="count",
                variable="age",
                family="population",
                filters=(TargetFilter("age", 200, 300),),
            ),
            target("kept/wages"),
        )
    )
    matrix = materialize_targets(sim_arrays, targets)
    reasons = matrix.ledger.set_index("name")["reason"]
    assert reasons["missing/var"].startswith("variable missing: not_a_policyengine_variable")
    assert reasons["absent/WY"].startswith("geography absent")
    assert reasons["zero/value"].startswith("zero value")
    assert reasons["nobody/over_200"].startswith("no support")
    assert matrix.targets.names == ["kept/wages"]
    assert matrix.counts(loaded=5) == {
        "loaded": 5,
        "supported": 3,
        "kept": 1,
        "held_out": 0,
        "train": 1,
        "validation": 0,
        "test": 0,
    }


def test_a_state_cell_keeps_only_its_own_targets():
    targets = TargetSet(
        (target("a/US"), target("b/CA", geography="CA"), target("c/TX", geography="TX"))
    )
    assert targets_for_geography(targets, "CA").names == ["b/CA"]
    assert len(targets_for_geography(targets, "US")) == 3


def test_tax_unit_records_map_to_their_own_household_and_state(arrays):
    """PolicyEngine's group-to-group map_to divides a household value among its tax units;
    the matrix must not: every tax unit of a two-unit household belongs to that household."""
    sim_arrays, bundle = arrays
    person = bundle.person
    true_household = person.groupby("tax_unit_id")["household_id"].first()
    unit_ids = sim_arrays.values("tax_unit_id", "tax_unit")
    positions = sim_arrays.household_position("tax_unit")
    np.testing.assert_array_equal(
        sim_arrays.household_ids[positions], true_household.reindex(unit_ids).to_numpy()
    )
    multi = person.groupby("household_id")["tax_unit_id"].nunique()
    assert (multi > 1).any()  # the fixture has two-unit households, so this test bites
    state = bundle.household.set_index("household_id")["state_fips"]
    np.testing.assert_array_equal(
        sim_arrays.values("state_fips", "tax_unit"),
        state.reindex(true_household.reindex(unit_ids)).to_numpy(),
    )
    tax_unit_agi = sim_arrays.values("adjusted_gross_income", "tax_unit")
    household_agi = sim_arrays.values("adjusted_gross_income", "household")
    assert household_agi.sum() == pytest.approx(tax_unit_agi.sum())


def test_a_district_target_counts_the_households_placed_in_it(arrays):
    """District targets filter on the exported ``congressional_district_geoid`` (the
    recorded draw), so they count exactly the households placed there."""
    from microplex_assets.geography.districts import district_from_geoid

    sim_arrays, bundle = arrays
    placed = bundle.household["congressional_district_geoid"]
    geoid = int(placed.value_counts().index[0])
    key = district_from_geoid(geoid).key
    households = target(
        f"households/{key}",
        aggregation="count",
        variable="household_id",
        entity="household",
        family="households",
        geography=key,
    )
    matrix = materialize_targets(sim_arrays, TargetSet((households,)))
    assert matrix.estimates(np.ones(len(sim_arrays.household_ids)))[0] == (placed == geoid).sum()
    with pytest.raises(Exception, match="CA-99"):
        materialize_targets(sim_arrays, TargetSet((target("x/CA-99", geography="CA-99"),)))
