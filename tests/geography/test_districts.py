"""Congressional district drawn within the drawn county: inside the state, in proportion to
the district's share of the county's people, fixed by the seed."""

from __future__ import annotations

import pandas as pd
import pytest

from microplex_assets.geography import CountyMappingError, assign_counties, assign_districts
from microplex_assets.geography.counties import district_county_people
from microplex_assets.geography.districts import district_shares_by_county


def test_shares_sum_to_one_per_county_and_dc_is_1198():
    shares = district_shares_by_county()
    assert shares.groupby("county_fips")["share"].sum().sub(1).abs().max() < 1e-9
    assert shares[shares["county_fips"] == "11001"]["cd_geoid"].tolist() == [1198]


def test_districts_lie_in_the_county_state_and_follow_the_shares():
    household = pd.DataFrame({"state_fips": [6] * 100_000 + [2, 11, 56]})
    household["county_fips"] = assign_counties(household, seed=0).to_numpy()
    district = assign_districts(household, seed=0)
    assert district.dtype == "int64"
    assert (district // 100 == household["state_fips"]).all()
    assert district.iloc[-3:].tolist() == [200, 1198, 5600]  # at-large and DC codes
    la = household["county_fips"] == "06037"
    people = district_county_people()
    expected = people[people["county_fips"] == "06037"].set_index("cd_geoid")["people"]
    expected = expected / expected.sum()
    drawn = district[la].value_counts(normalize=True).reindex(expected.index).fillna(0)
    assert (drawn - expected).abs().max() < 0.02
    assert district.equals(assign_districts(household, seed=0))
    assert not district.equals(assign_districts(household, seed=1))


def test_unknown_county_is_named():
    with pytest.raises(CountyMappingError, match="99999"):
        assign_districts(pd.DataFrame({"county_fips": ["99999"]}), seed=0)
