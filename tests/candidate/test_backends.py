import numpy as np
import pandas as pd
import pytest

from microplex_assets.candidate.backends import (
    BORROWED_FROM_STATE,
    SOURCE_HOUSEHOLD,
    SupportError,
    allocate_draws,
    bootstrap,
    enforce_support,
    run_backend,
)
from microplex_assets.seed.canonical import canonical_households
from tests.frames import tiny_scaffold

STATES = (1, 6, 36, 48)


@pytest.fixture()
def seed():
    return tiny_scaffold(households=120, states=STATES)


def _weighted_total(frame):
    return frame.tables["household"]["household_weight"].sum()


def test_bootstrap_keeps_weighted_totals_overall_and_per_state(seed):
    candidate = run_backend("bootstrap", seed, random_seed=3)
    assert _weighted_total(candidate) == pytest.approx(_weighted_total(seed), rel=1e-12)
    by_state = candidate.tables["household"].groupby("state_fips")["household_weight"].sum()
    expected = seed.tables["household"].groupby("state_fips")["household_weight"].sum()
    assert np.allclose(by_state.reindex(expected.index), expected, rtol=1e-12)
    assert len(candidate.tables["household"]) == len(seed.tables["household"])
    assert candidate.provenance["backend"] == "bootstrap"


def test_bootstrap_renumbers_ids_and_keeps_links_valid(seed):
    candidate = run_backend("bootstrap", seed, random_seed=3, size=200)
    candidate.validate()
    for entity in ("household", "tax_unit", "person"):
        ids = candidate.tables[entity][f"{entity}_id"]
        assert ids.tolist() == list(range(1, len(ids) + 1)), entity
    household = candidate.tables["household"]
    assert len(household) == 200
    assert household[SOURCE_HOUSEHOLD].isin(seed.tables["household"]["household_id"]).all()
    assert household[SOURCE_HOUSEHOLD].duplicated().any()  # with replacement
    # each copy carries its source's persons, in the source's state, under one tax unit tree
    person = candidate.tables["person"]
    tax_unit = candidate.tables["tax_unit"]
    unit_household = tax_unit.set_index("tax_unit_id")["household_id"]
    assert (person["household_id"].to_numpy() == unit_household[person["tax_unit_id"]]).all()
    source_sizes = seed.tables["person"].groupby("household_id").size()
    copy_sizes = person.groupby("household_id").size()
    expected = source_sizes[household.set_index("household_id")[SOURCE_HOUSEHOLD]].to_numpy()
    assert (copy_sizes[household["household_id"]].to_numpy() == expected).all()
    source_state = seed.tables["household"].set_index("household_id")["state_fips"]
    assert (household["state_fips"].to_numpy() == source_state[household[SOURCE_HOUSEHOLD]]).all()


def test_bootstrap_is_deterministic_and_differs_from_passthrough(seed):
    first = run_backend("bootstrap", seed, random_seed=7)
    again = run_backend("bootstrap", seed, random_seed=7)
    other = run_backend("bootstrap", seed, random_seed=8)
    for entity in first.tables:
        assert first.tables[entity].equals(again.tables[entity]), entity
    drawn = first.tables["household"][SOURCE_HOUSEHOLD].sort_values().tolist()
    assert drawn != other.tables["household"][SOURCE_HOUSEHOLD].sort_values().tolist()
    passthrough = run_backend("seed_passthrough", seed)
    assert drawn != passthrough.tables["household"]["household_id"].sort_values().tolist()


def test_bootstrap_keeps_every_state_even_when_small():
    seed = tiny_scaffold(households=40, states=STATES)
    household = seed.tables["household"]
    household.loc[household["state_fips"] == 36, "household_weight"] = 1e-3  # nearly no weight
    candidate = bootstrap(seed, seed_value=1, size=12)
    enforce_support(candidate, STATES)  # does not raise
    assert set(candidate.tables["household"]["state_fips"]) == set(STATES)


def test_allocation_sums_to_size_with_a_floor_of_one():
    draws = allocate_draws(pd.Series([1e6, 1.0, 3e6]), 10)
    assert draws.sum() == 10 and (draws >= 1).all() and draws.iloc[2] > draws.iloc[0]
    with pytest.raises(ValueError, match="cannot give one household to 3 states"):
        allocate_draws(pd.Series([1.0, 1.0, 1.0]), 2)


def test_existing_calls_still_work(seed):
    candidate = run_backend("seed_passthrough", seed)
    assert candidate.tables["household"].equals(seed.tables["household"])
    with pytest.raises(ValueError, match="keeps the seed's 120 households"):
        run_backend("seed_passthrough", seed, size=50)


def test_support_without_borrow_names_the_missing_state():
    candidate = run_backend("seed_passthrough", tiny_scaffold(households=40, states=(1, 6)))
    with pytest.raises(SupportError, match="36"):
        enforce_support(candidate, [1, 6, 36])
    with pytest.raises(SupportError, match=r"\{1: 20, 6: 20\}"):
        enforce_support(candidate, [1, 6], min_households=25)


def test_borrow_adds_records_to_an_empty_state_and_reports_them():
    candidate = run_backend("seed_passthrough", tiny_scaffold(households=40, states=(1, 6)))
    before = {e: len(t) for e, t in candidate.tables.items()}
    total = _weighted_total(candidate)
    report = enforce_support(candidate, [1, 6, 36], min_households=3, borrow=True)
    assert report["records_added"] == 3
    assert report["records_added_by_state"] == {36: 3}
    assert report["states_present"] == 3 and report["min_households_per_state"] == 3
    candidate.validate()
    household = candidate.tables["household"]
    added = household[household["state_fips"] == 36]
    assert len(added) == 3 and (added["household_weight"] == 1.0).all()
    assert added[BORROWED_FROM_STATE].isin([1, 6]).all()
    assert (added["household_id"] > 40).all() and household["household_id"].is_unique
    assert len(candidate.tables["person"]) > before["person"]
    assert _weighted_total(candidate) == pytest.approx(total + 3.0)
    assert candidate.provenance["borrowed_support"] == {36: 3}


def test_borrow_tops_up_a_thin_state_with_households_of_similar_income():
    frame = run_backend("seed_passthrough", tiny_scaffold(households=200))
    household = canonical_households(frame)
    thin = household[household["state_fips"] == 36].sort_values("household_id")
    keep = set(household["household_id"]) - set(thin["household_id"].iloc[1:])
    frame.tables["household"] = household
    frame.tables = {
        entity: table[table["household_id"].isin(keep)].reset_index(drop=True)
        for entity, table in frame.tables.items()
    }
    own = frame.tables["household"].query("state_fips == 36").iloc[0]
    report = enforce_support(frame, STATES, min_households=4, borrow=True)
    assert report["records_added_by_state"] == {36: 3}
    added = frame.tables["household"].query(f"{BORROWED_FROM_STATE} == {BORROWED_FROM_STATE}")
    assert (added["income_bracket"] == own["income_bracket"]).all()
    others = household[household["state_fips"] != 36]
    same_bracket = others[others["income_bracket"] == own["income_bracket"]]
    gaps = (same_bracket["household_income"] - own["household_income"]).abs().nsmallest(3)
    assert sorted((added["household_income"] - own["household_income"]).abs()) == sorted(gaps)
    assert added[SOURCE_HOUSEHOLD].isin(others["household_id"]).all()


def test_borrow_leaves_a_supported_candidate_alone(seed):
    candidate = run_backend("seed_passthrough", seed)
    report = enforce_support(candidate, STATES, borrow=True)
    assert report["records_added"] == 0 and report["records_added_by_state"] == {}
    assert candidate.tables["household"].equals(seed.tables["household"])
