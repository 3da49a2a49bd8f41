"""A congressional district drawn for each household, given its drawn county.

The county draw (``counties.py``) picks a county within the state by population share; the
district is then drawn from P(district | county) = people(district, county) / people(county),
the same carried tables' (district, county) populations (ACS 2024 S0101 district population
x P(county | district)). The pair (district, county) so has the joint population share
P(district, county | state), and the county draws are unchanged. Like the county this is an
assignment, not an observation: the CPS scaffold knows only the state.

``congressional_district_geoid`` is policyengine-us's integer SSDD (state FIPS x 100 +
district; at-large states 00, DC 98 as the Census codes them), which the carried district
table already uses as ``cd_geoid``.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from microplex_assets.geography.counties import CountyMappingError, district_county_people

VARIABLE = "congressional_district_geoid"


def district_shares_by_county() -> pd.DataFrame:
    """``county_fips``, ``cd_geoid``, ``share`` (sums to 1 per county)."""
    rows = district_county_people()
    people = rows.groupby(["county_fips", "cd_geoid"], sort=True)["people"].sum()
    shares = (people / people.groupby(level="county_fips").transform("sum")).rename("share")
    return shares[shares > 0].reset_index()


def assign_districts(household: pd.DataFrame, seed: int) -> pd.Series:
    """One ``congressional_district_geoid`` (int) per household row, drawn within its
    ``county_fips`` from ``numpy.random.default_rng([seed, crc32(VARIABLE)])``.

    Raises naming any county the district table does not list.
    """
    counties = household["county_fips"].astype(str).to_numpy()
    draws = np.random.default_rng([int(seed), zlib.crc32(VARIABLE.encode())]).random(len(counties))
    shares = district_shares_by_county()
    by_county = {str(c): group for c, group in shares.groupby("county_fips", sort=True)}
    out = np.zeros(len(counties), dtype=np.int64)
    for county in np.unique(counties):
        group = by_county.get(str(county))
        if group is None:
            raise CountyMappingError(f"county_fips {county} has no congressional district shares")
        cumulative = np.cumsum(group["share"].to_numpy())
        cumulative[-1] = 1.0
        rows = counties == county
        picks = np.searchsorted(cumulative, draws[rows], side="right")
        out[rows] = group["cd_geoid"].to_numpy(dtype=np.int64)[picks]
    return pd.Series(out, index=household.index, name=VARIABLE)
