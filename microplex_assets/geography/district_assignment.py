"""Each household placed in a congressional district, drawn with published probabilities.

The CPS scaffold knows the state; ``counties.assign_counties`` draws a county within it.
A district is then drawn within the household's county:

    P(district | county) = P(county | district) x pop(district)
                           / sum over the county's districts of the same

from the two carried tables the county draw already uses (``county_cd_distributions.csv``
from policyengine-us-data, P(county | district); ``district_population_acs_S0101_2024.csv``,
ACS 2024 S0101 total population). Because the county draw uses the same products, a
household drawn county-then-district lands in district d of its state with probability
pop(d) / pop(state): the two draws agree with the district populations.

A household without a county (no ``county_fips`` column, a missing value, or one of the 37
counties the district table omits, e.g. Prince George's MD) is drawn from its state's
district population shares instead; the ``method`` column says which. This is an
assignment, not an observation: the frame is meant to be recorded with the shard.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

import numpy as np
import pandas as pd

from microplex_assets.geography.counties import CountyMappingError, district_county_people
from microplex_assets.geography.districts import (
    UnknownDistrictError,
    district_from_geoid,
    parse_district,
)
from microplex_assets.geography.states import CODE_BY_FIPS

STREAM = "congressional_district"  # names the draw's random stream (independent of counties)
ASSIGNMENT_COLUMNS = ("household_id", "state", "county_fips", "district", "probability", "method")


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(STREAM.encode())])


@lru_cache(maxsize=1)
def _people() -> pd.DataFrame:
    """(state_fips, county_fips, district, people): people of each district in each county,
    from the same checked table the county draw reads (``counties.district_county_people``;
    counties it cannot name are left out, so their households draw by state share)."""
    rows = district_county_people()
    keys = {g: district_from_geoid(g).key for g in rows["cd_geoid"].unique()}
    return rows.assign(district=rows["cd_geoid"].map(keys))[
        ["state_fips", "county_fips", "district", "people"]
    ]


def district_probabilities() -> pd.DataFrame:
    """P(district | county): ``state_fips``, ``county_fips``, ``district``, ``probability``
    (sums to 1 over each county's districts)."""
    rows = _people().groupby(["state_fips", "county_fips", "district"], as_index=False).sum()
    total = rows.groupby("county_fips")["people"].transform("sum")
    return rows.assign(probability=rows["people"] / total).drop(columns="people")


def district_shares_by_state() -> pd.DataFrame:
    """P(district | state) = pop(district) / pop(state): ``state_fips``, ``district``,
    ``probability`` (ACS 2024 S0101 total population)."""
    rows = _people().groupby(["state_fips", "district"], as_index=False)["people"].sum()
    total = rows.groupby("state_fips")["people"].transform("sum")
    return rows.assign(probability=rows["people"] / total).drop(columns="people")


def _draw(options: pd.DataFrame, draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cumulative = np.cumsum(options["probability"].to_numpy())
    cumulative[-1] = 1.0
    picks = np.searchsorted(cumulative, draws, side="right")
    return options["district"].to_numpy()[picks], options["probability"].to_numpy()[picks]


def assign_districts(household: pd.DataFrame, seed: int) -> pd.DataFrame:
    """One district per household row: ``household_id``, ``state``, ``county_fips`` (missing
    when unknown), ``district`` (``CA-12``), ``probability`` (of the drawn district given
    what was conditioned on) and ``method`` (``county`` or ``state_share``).

    ``household`` needs ``state_fips`` and may have ``county_fips`` (5-digit text) and
    ``household_id`` (else the row index). One uniform per row from a generator seeded
    with ``[seed, crc32("congressional_district")]``, in row order: fixed by the seed
    and the table, and independent of the county draw made with the same seed.
    """
    states = household["state_fips"].astype("int64").to_numpy()
    unknown = sorted({int(s) for s in states} - set(CODE_BY_FIPS))
    if unknown:
        raise CountyMappingError(f"state_fips {unknown} not among the 50 states and DC")
    if "county_fips" in household.columns:
        counties = np.array(
            [None if pd.isna(c) else str(c).zfill(5) for c in household["county_fips"]],
            dtype=object,
        )
    else:
        counties = np.full(len(states), None, dtype=object)
    draws = _rng(seed).random(len(states))
    district = np.empty(len(states), dtype=object)
    probability = np.zeros(len(states))
    method = np.full(len(states), "state_share", dtype=object)

    probabilities = district_probabilities()
    present = probabilities["county_fips"].isin(set(counties) - {None})
    by_county = {c: g for c, g in probabilities[present].groupby("county_fips", sort=True)}
    crossing = [
        (c, int(s))
        for c, s in zip(counties, states, strict=True)
        if c is not None and (not c.isdigit() or int(c[:2]) != int(s))
    ]
    if crossing:
        raise CountyMappingError(
            f"county_fips not a county of the household's state: {crossing[:5]}"
        )
    known = np.array([c in by_county for c in counties], dtype=bool)
    for county in sorted({c for c in counties[known]}):
        rows = counties == county
        district[rows], probability[rows] = _draw(by_county[county], draws[rows])
        method[rows] = "county"
    by_state = {s: g for s, g in district_shares_by_state().groupby("state_fips", sort=True)}
    for state in np.unique(states[~known]):
        rows = (states == state) & ~known
        district[rows], probability[rows] = _draw(by_state[int(state)], draws[rows])
    ids = household["household_id"] if "household_id" in household.columns else household.index
    return pd.DataFrame(
        {
            "household_id": np.asarray(ids),
            "state": [CODE_BY_FIPS[int(s)] for s in states],
            "county_fips": counties,
            "district": district,
            "probability": probability,
            "method": method,
        },
        index=household.index,
    )


def check_assignment(assignment: pd.DataFrame) -> pd.DataFrame:
    """A recorded assignment, checked: every district one of the 436 and in the row's
    state. Raises UnknownDistrictError naming the first bad district (and how many)."""
    missing = [c for c in ASSIGNMENT_COLUMNS if c not in assignment.columns]
    if missing:
        raise ValueError(f"district assignment lacks column(s) {missing}")
    for value in pd.unique(assignment["district"]):
        try:
            parse_district(value)
        except UnknownDistrictError as error:
            count = int((assignment["district"] == value).sum())
            raise UnknownDistrictError(f"{error} ({count} household row(s))") from None
    key_state = assignment["district"].map(lambda key: parse_district(key).state)
    wrong = assignment[key_state != assignment["state"]]
    if len(wrong):
        first = wrong.iloc[0]
        raise ValueError(
            f"{len(wrong)} household(s) placed outside their state, e.g. household "
            f"{first['household_id']} of {first['state']} in {first['district']}"
        )
    return assignment


def households_in_district(assignment: pd.DataFrame, district: str) -> pd.Series:
    """The ``household_id`` s placed in ``district`` (any accepted form: ``wy-00``); an
    unknown district is refused with UnknownDistrictError naming it."""
    key = parse_district(district).key
    return assignment.loc[assignment["district"] == key, "household_id"]


def district_geoids(household: pd.DataFrame, seed: int) -> pd.Series:
    """policyengine-us's ``congressional_district_geoid`` (state FIPS x 100 + the Census
    district code: at-large 00, DC 98) per household row, from ``assign_districts``."""
    keys = assign_districts(household, seed)["district"]
    geoid = {key: parse_district(key).geoid for key in keys.unique()}
    return keys.map(geoid).astype("int64").rename("congressional_district_geoid")
