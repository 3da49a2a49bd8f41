import numpy as np
import pandas as pd
import pytest

from microplex_assets.seed.canonical import canonical_households
from microplex_assets.seed.sampling import SamplingDesign, allocate, stratified_sample
from microplex_assets.seed.seed import build_seed
from tests.frames import tiny_scaffold


@pytest.fixture(scope="module")
def households() -> pd.DataFrame:
    return canonical_households(tiny_scaffold(households=2000, seed=3, states=tuple(range(1, 31))))


def test_sample_has_requested_size_and_keeps_weighted_total(households):
    sample, report = stratified_sample(households, SamplingDesign(households=400, seed=1))
    assert len(sample) == 400 == report["households_out"]
    assert sample["household_id"].is_unique
    assert sample["household_weight"].sum() == pytest.approx(households["household_weight"].sum())


def test_every_state_is_represented_even_in_tiny_samples(households):
    sample, _ = stratified_sample(households, SamplingDesign(households=60, seed=1))
    assert set(sample["state_fips"]) == set(households["state_fips"])


def test_top_incomes_and_rare_recipients_are_kept_with_their_weights(households):
    sample, report = stratified_sample(households, SamplingDesign(households=400, seed=1))
    richest = households.nlargest(5, "household_income")
    kept = sample.set_index("household_id").loc[richest["household_id"]]
    assert (kept["sampling_stratum"] == "certainty").all()
    original = richest.set_index("household_id")["household_weight"]
    assert np.allclose(kept["household_weight"], original)
    ssi = households[households["receives_ssi"]]
    assert ssi["household_id"].isin(sample["household_id"]).all()
    assert report["certainty_by_reason"]["receives_ssi"] == len(ssi)


def test_sampling_is_deterministic_for_a_seed(households):
    first, _ = stratified_sample(households, SamplingDesign(households=300, seed=7))
    again, _ = stratified_sample(households, SamplingDesign(households=300, seed=7))
    other, _ = stratified_sample(households, SamplingDesign(households=300, seed=8))
    assert first["household_id"].tolist() == again["household_id"].tolist()
    assert first["household_id"].tolist() != other["household_id"].tolist()


def test_allocation_sums_to_total_and_respects_floor_and_capacity():
    sizes = pd.Series([1000, 10, 3, 1], index=list("abcd"))
    allocation = allocate(sizes, 100, minimum=2)
    assert allocation.sum() == 100
    assert (allocation >= np.minimum(sizes, 2)).all()
    assert (allocation <= sizes).all()
    with pytest.raises(ValueError, match="cannot give 2"):
        allocate(sizes, 3, minimum=2)


def test_national_state_cell_is_the_national_sample_restricted():
    scaffold = tiny_scaffold(households=800, seed=5)
    national, _ = build_seed(scaffold, households=200, seed=2)
    state, report = build_seed(scaffold, households=200, seed=2, state_fips=6)
    expected = national.tables["household"].query("state_fips == 6")
    assert state.tables["household"]["household_id"].tolist() == expected["household_id"].tolist()
    assert np.allclose(state.tables["household"]["household_weight"], expected["household_weight"])
    assert set(state.tables["person"]["household_id"]) == set(expected["household_id"])
    assert report["households_in_state"] == len(expected)


def test_income_bracket_comparison_shows_weighted_totals_kept():
    scaffold = tiny_scaffold(households=800, seed=5)
    _, report = build_seed(scaffold, households=200, seed=2)
    table = pd.DataFrame(report["by_income_bracket"])
    assert table["scaffold_records"].sum() == 800
    assert table["seed_records"].sum() == 200
    assert table["seed_weighted_m"].sum() == pytest.approx(table["scaffold_weighted_m"].sum())
