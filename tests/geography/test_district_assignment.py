"""Households placed in districts: fixed by the seed, following the published probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex_assets.geography.counties import assign_counties
from microplex_assets.geography.district_assignment import (
    ASSIGNMENT_COLUMNS,
    assign_districts,
    check_assignment,
    district_probabilities,
    district_shares_by_state,
    households_in_district,
)
from microplex_assets.geography.districts import UnknownDistrictError, districts_of_state


def households(states, n_each, *, seed=None):
    frame = pd.DataFrame({"state_fips": np.repeat(states, n_each)})
    frame.insert(0, "household_id", np.arange(len(frame)) + 1000)
    if seed is not None:
        frame["county_fips"] = assign_counties(frame, seed).to_numpy()
    return frame


def test_probabilities_sum_to_one_per_county_and_per_state():
    by_county = district_probabilities()
    assert np.allclose(by_county.groupby("county_fips")["probability"].sum(), 1.0, atol=1e-12)
    assert by_county["county_fips"].nunique() == 3106  # the counties the table lists
    by_state = district_shares_by_state()
    assert len(by_state) == 436
    assert np.allclose(by_state.groupby("state_fips")["probability"].sum(), 1.0, atol=1e-12)
    # Los Angeles County spans many districts; Wyoming's counties all lie in WY-01.
    assert (by_county["county_fips"] == "06037").sum() > 10
    assert (by_county.loc[by_county["state_fips"] == 56, "probability"] == 1.0).all()


def test_assignment_is_fixed_by_the_seed_and_recorded_as_a_frame():
    frame = households([6, 11, 36, 48, 56], 400, seed=3)
    first = assign_districts(frame, seed=7)
    assert list(first.columns) == list(ASSIGNMENT_COLUMNS)
    pd.testing.assert_frame_equal(first, assign_districts(frame, seed=7))
    assert (first["district"] != assign_districts(frame, seed=8)["district"]).mean() > 0.3
    assert first["household_id"].tolist() == frame["household_id"].tolist()
    assert (first["method"] == "county").all()
    assert (first.loc[first["state"] == "DC", "district"] == "DC-01").all()
    assert (first.loc[first["state"] == "WY", "probability"] == 1.0).all()
    check_assignment(first)  # every district one of the 436 and in its state


def test_a_household_without_a_county_is_drawn_from_its_states_shares():
    frame = households([24, 6, 36], 50, seed=0)
    frame.loc[frame.index[::2], "county_fips"] = None
    frame.loc[frame.index[1], "county_fips"] = "24033"  # Prince George's: not in the table
    placed = assign_districts(frame, seed=1)
    assert (placed["method"].iloc[::2] == "state_share").all()
    assert placed["method"].iloc[1] == "state_share"
    assert pd.isna(placed["county_fips"].iloc[0])
    shares = district_shares_by_state().set_index("district")["probability"]
    fallback = placed[placed["method"] == "state_share"]
    assert np.allclose(fallback["probability"], fallback["district"].map(shares))
    without = assign_districts(frame.drop(columns="county_fips"), seed=1)
    assert (without["method"] == "state_share").all()


def test_large_sample_follows_the_probabilities():
    """200,000 households of Los Angeles County: the standard error of a district share p
    is sqrt(p (1 - p) / n) <= 0.0011, so 0.005 is over 4 standard errors of the largest;
    the chi-square statistic of the 14-plus districts stays under its 0.999 quantile."""
    n = 200_000
    frame = pd.DataFrame({"state_fips": 6, "county_fips": ["06037"] * n})
    placed = assign_districts(frame, seed=0)
    expected = district_probabilities().query("county_fips == '06037'")
    expected = expected.set_index("district")["probability"]
    observed = placed["district"].value_counts(normalize=True)
    assert set(observed.index) <= set(expected.index)
    deviation = (observed.reindex(expected.index, fill_value=0.0) - expected).abs()
    assert deviation.max() < 0.005
    counts = placed["district"].value_counts().reindex(expected.index, fill_value=0)
    chi2 = float((((counts - n * expected) ** 2) / (n * expected)).sum())
    quantile_999 = {14: 36.1, 20: 45.3, 25: 52.6, 30: 59.7}
    dof = len(expected) - 1
    assert chi2 < quantile_999[min(k for k in quantile_999 if k >= dof)]


def test_county_then_district_gives_the_states_district_populations():
    """Drawing a county by population share and then a district within it lands in each
    district with probability pop(district) / pop(state): New York, 200,000 households."""
    frame = households([36], 200_000, seed=11)
    placed = assign_districts(frame, seed=11)
    shares = district_shares_by_state().query("state_fips == 36").set_index("district")
    observed = placed["district"].value_counts(normalize=True).reindex(shares.index)
    assert len(shares) == len(districts_of_state("NY")) == 26
    assert (observed - shares["probability"]).abs().max() < 0.003  # sd <= 0.0005


def test_a_district_outside_the_list_is_refused_naming_it():
    placed = assign_districts(households([6], 20, seed=0), seed=0)
    with pytest.raises(UnknownDistrictError, match=r"'CA-53'.*near matches: \['CA-52'"):
        households_in_district(placed, "CA-53")
    assert len(households_in_district(placed, "ca-12")) == (placed["district"] == "CA-12").sum()
    recorded = placed.copy()
    recorded.loc[recorded.index[:3], "district"] = "CA-53"
    with pytest.raises(UnknownDistrictError, match=r"'CA-53'.*\(3 household row\(s\)\)"):
        check_assignment(recorded)
    recorded = placed.copy()
    recorded.loc[recorded.index[0], "district"] = "NV-01"
    with pytest.raises(ValueError, match="outside their state.*of CA in NV-01"):
        check_assignment(recorded)


def test_a_county_outside_the_households_state_is_refused():
    frame = households([6], 3, seed=0)
    frame.loc[0, "county_fips"] = "36061"
    with pytest.raises(ValueError, match="36061"):
        assign_districts(frame, seed=0)


def test_geoids_lie_in_the_state_with_census_at_large_and_dc_codes() -> None:
    """What the entity build exports as ``congressional_district_geoid``."""
    from microplex_assets.geography import assign_counties
    from microplex_assets.geography.district_assignment import district_geoids

    household = pd.DataFrame({"state_fips": [6] * 2_000 + [2, 11, 56]})
    household["county_fips"] = assign_counties(household, seed=0).to_numpy()
    geoid = district_geoids(household, seed=0)
    assert geoid.dtype == "int64"
    assert (geoid // 100 == household["state_fips"]).all()
    assert geoid.iloc[-3:].tolist() == [200, 1198, 5600]
    assert geoid.equals(district_geoids(household, seed=0))
