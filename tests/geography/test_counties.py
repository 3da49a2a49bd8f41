import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from microplex_assets.geography.counties import (
    DATA_DIR,
    SOURCES_FILE,
    CountyMappingError,
    assign_counties,
    county_shares_by_state,
    pe_county_table,
)
from microplex_assets.geography.states import STATE_FIPS


@pytest.fixture(scope="module")
def shares():
    return county_shares_by_state()


def test_shares_sum_to_one_in_every_state_and_dc(shares):
    totals = shares.groupby("state_fips")["share"].sum()
    assert sorted(totals.index) == sorted(STATE_FIPS.values())
    assert np.allclose(totals, 1.0, atol=1e-12)
    assert (shares["share"] > 0).all()
    assert not shares.duplicated(["state_fips", "county_fips"]).any()


def test_every_county_name_maps_to_a_policyengine_fips(shares):
    assert shares.attrs["match_rate"] == 1.0
    assert shares.attrs["population_match_rate"] == 1.0
    assert shares.attrs["unmatched_counties"] == 0
    # The district table omits a few counties (apostrophe names among them): never drawn.
    assert "24033" in shares.attrs["counties_never_drawn"]  # Prince George's, MD
    assert len(shares.attrs["counties_never_drawn"]) == 37


def test_dc_is_one_county_and_at_large_states_have_their_counties(shares):
    dc = shares[shares["state_fips"] == 11]
    assert dc["county_fips"].tolist() == ["11001"] and dc["share"].tolist() == [1.0]
    counts = shares.groupby("state_fips").size()
    assert counts[10] == 3  # Delaware: one district, three counties
    assert counts[6] == 58  # California


def test_fips_are_five_digit_strings_in_their_state(shares):
    fips = shares["county_fips"]
    assert fips.map(type).eq(str).all()
    assert fips.str.fullmatch(r"\d{5}").all()
    assert (fips.str[:2] == shares["state_fips"].map("{:02d}".format)).all()


def test_carried_files_match_their_sources_entry():
    sources = json.loads((DATA_DIR / SOURCES_FILE).read_text())
    for name, entry in sources.items():
        digest = hashlib.sha256((DATA_DIR / name).read_bytes()).hexdigest()
        assert digest == entry["sha256"], name
        assert entry["source"] and entry["used_for"]
    assert county_shares_by_state().attrs["sources"] == {
        name: sources[name]["sha256"]
        for name in ("county_cd_distributions.csv", "district_population_acs_S0101_2024.csv")
    }


def households(states, n_each):
    return pd.DataFrame({"state_fips": np.repeat(states, n_each)})


def test_assignment_is_fixed_by_the_seed():
    frame = households([6, 11, 36, 48, 56], 400)
    first = assign_counties(frame, seed=7)
    assert first.equals(assign_counties(frame, seed=7))
    other = assign_counties(frame, seed=8)
    assert (first != other).mean() > 0.3
    assert (first[frame["state_fips"] == 11] == "11001").all()
    assert (first.str[:2] == frame["state_fips"].map("{:02d}".format)).all()
    assert first.index.equals(frame.index)


def test_large_sample_follows_the_shares(shares):
    draws = assign_counties(households([6], 200_000), seed=0)
    observed = draws.value_counts(normalize=True)
    expected = shares[shares["state_fips"] == 6].set_index("county_fips")["share"]
    deviation = (observed.reindex(expected.index, fill_value=0.0) - expected).abs()
    assert deviation.max() < 0.005
    assert set(observed.index) <= set(expected.index)
    largest = expected.nlargest(5).index
    assert deviation[largest].max() < 0.005


def test_state_without_shares_is_named():
    with pytest.raises(CountyMappingError, match=r"state_fips 72 \(not a state or DC\)"):
        assign_counties(households([6, 72], 3), seed=0)


def test_county_table_is_policyengines_and_every_county_has_an_spm_area(shares, pe_system):
    """The table read without importing policyengine_us is the one its helper loads, and
    PolicyEngine's county SPM geography resolves every county that can be drawn."""
    from policyengine_us.tools.geography.county_helpers import load_county_fips_dataset

    pd.testing.assert_frame_equal(pe_county_table(), load_county_fips_dataset())
    forecast = pe_system.spm_forecast_provider.forecast
    unresolved = []
    for fips in shares["county_fips"]:
        try:
            forecast.resolve_county(2024, fips)
        except ValueError:
            unresolved.append(fips)
    assert unresolved == []
