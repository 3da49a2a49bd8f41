"""County shares within each state, and a county drawn for each household.

policyengine-us 2.68 measures SPM poverty by county by default (``geography_kind=
"county"``): a ``Microsimulation(dataset=path)`` raises ``SPMInputError
SPM_GEOGRAPHY_REQUIRED`` for a file without ``county_fips``. The CPS scaffold knows the
state only, so each household gets a county drawn within its state, in proportion to the
county's population share there. This is an assignment, not an observation.

P(county | state) = sum over the state's districts of P(county | district) x pop(district)
/ pop(state), from two carried tables (``data/SOURCES.json``):
- ``county_cd_distributions.csv``: P(county | congressional district), counties named like
  ``BALDWIN_COUNTY_AL`` (policyengine-us-data 1.115.4);
- ``district_population_acs_S0101_2024.csv``: total population per district (ACS 2024
  1-year S0101, ``S0101_C01_001E``).

Known limitation of the district table (as published by policyengine-us-data): it lists
3,106 of the 3,143 counties of the 50 states and DC. The 37 it omits include Prince
George's, St. Mary's and Queen Anne's (MD), Dona Ana (NM) and O'Brien (IA) (names with an
apostrophe or a tilde) and a few others (Bryan GA, Manassas city VA, ...); each district's
probabilities still sum to 1, so their people are spread over the district's listed
counties (Maryland's 4th district is all Montgomery County). They are never drawn
(``attrs["counties_never_drawn"]``).

County names become five-digit FIPS codes through policyengine-us's own county table
(``policyengine_us/data/county_fips_2020.csv.gz``, the file ``county_helpers.
load_county_fips_dataset`` reads), keyed as ``county_helpers.map_county_string_to_enum``
keys a name: spaces, hyphens and apostrophes to ``_``, periods dropped, upper case, then
``_`` and the state code. The table is read from the installed package without importing
``policyengine_us`` (that import costs ~25 s and entity construction needs nothing else
from it).
"""

from __future__ import annotations

import importlib.util
import io
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.files import carried_file
from microplex_assets.geography.states import CODE_BY_FIPS, FIPS_CODES

DATA_DIR = Path(__file__).parent / "data"
SOURCES_FILE = "SOURCES.json"
COUNTY_CD_FILE = "county_cd_distributions.csv"
DISTRICT_POPULATION_FILE = "district_population_acs_S0101_2024.csv"
PE_COUNTY_TABLE = "county_fips_2020.csv.gz"
# Below this population-weighted share of matched (district, county) rows the mapping is
# broken (a renamed table, a changed key rule) rather than missing a few odd names.
MIN_MATCH_RATE = 0.99


class CountyMappingError(ValueError):
    """The carried geography tables or the county name mapping are not usable."""


def carried_csv(name: str, required: tuple[str, ...], **read_kwargs: Any) -> pd.DataFrame:
    """A carried table, checked against its ``SOURCES.json`` SHA256 and required columns."""
    path = DATA_DIR / name
    data, _ = carried_file(DATA_DIR, name, CountyMappingError, SOURCES_FILE)
    frame = pd.read_csv(io.BytesIO(data), **read_kwargs)
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise CountyMappingError(f"{path}: missing column(s) {missing}")
    return frame


def pe_county_table() -> pd.DataFrame:
    """policyengine-us's county table (state, county_name, county_fips as 5-digit text)."""
    spec = importlib.util.find_spec("policyengine_us")
    if spec is None or not spec.submodule_search_locations:
        raise CountyMappingError("policyengine_us is not installed: no county FIPS table")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / PE_COUNTY_TABLE
    if not path.is_file():
        raise CountyMappingError(f"{path}: policyengine-us county FIPS table not found")
    return pd.read_csv(path, compression="gzip", dtype={"county_fips": str}, encoding="utf-8")


def county_key(name: pd.Series, state: pd.Series) -> pd.Series:
    """``Baldwin County`` + ``AL`` -> ``BALDWIN_COUNTY_AL`` (policyengine-us's county key)."""
    key = (
        name.str.replace(" ", "_")
        .str.replace("-", "_")
        .str.replace(".", "", regex=False)
        .str.replace("'", "_")
        .str.strip()
        .str.upper()
    )
    return key + "_" + state


@lru_cache(maxsize=1)
def district_county_people() -> pd.DataFrame:
    """People per (district, county) pair: ``cd_geoid``, ``state_fips`` (int), ``county_fips``
    (5-digit str), ``people`` = P(county | district) x the district's ACS population.

    ``attrs`` carries the name-mapping statistics (match rates, unmatched county names).
    Both the county draw and the district draw (``districts.py``) read it.
    """
    county_cd = carried_csv(COUNTY_CD_FILE, ("cd_geoid", "county_name", "probability"))
    districts = carried_csv(
        DISTRICT_POPULATION_FILE, ("cd_geoid", "state_fips", "population"), dtype={"district": str}
    )
    population = districts.set_index("cd_geoid")["population"]
    no_population = sorted(set(county_cd["cd_geoid"]) - set(population.index))
    if no_population:
        raise CountyMappingError(f"districts without an ACS population: {no_population[:10]}")

    table = pe_county_table()
    fips_of = pd.Series(
        table["county_fips"].to_numpy(), index=county_key(table["county_name"], table["state"])
    )
    repeated = sorted(fips_of.index[fips_of.index.duplicated()])
    if repeated:
        raise CountyMappingError(f"policyengine-us county keys repeat: {repeated}")
    rows = county_cd.assign(
        district_population=county_cd["cd_geoid"].map(population).astype(float),
        county_fips=county_cd["county_name"].map(fips_of),
    )
    rows["people"] = rows["probability"] * rows["district_population"]
    matched = rows["county_fips"].notna()
    row_rate = float(matched.mean())
    population_rate = float(rows.loc[matched, "people"].sum() / rows["people"].sum())
    unmatched = sorted(rows.loc[~matched, "county_name"].unique())
    if population_rate < MIN_MATCH_RATE:
        raise CountyMappingError(
            f"only {population_rate:.1%} of district population maps to a policyengine-us "
            f"county ({len(unmatched)} county names unmatched, e.g. {unmatched[:10]})"
        )
    rows = rows[matched].copy()
    rows["state_fips"] = rows["cd_geoid"] // 100
    crossing = rows[rows["county_fips"].str[:2].astype(int) != rows["state_fips"]]
    if len(crossing):
        raise CountyMappingError(
            "counties mapped outside their district's state: "
            f"{crossing[['cd_geoid', 'county_name', 'county_fips']].head().to_dict('records')}"
        )
    rows = rows[["cd_geoid", "state_fips", "county_fips", "people"]].reset_index(drop=True)
    rows.attrs = {
        "match_rate": row_rate,
        "population_match_rate": population_rate,
        "unmatched_counties": len(unmatched),
        "unmatched_county_names": unmatched,
    }
    return rows


@lru_cache(maxsize=1)
def _county_shares() -> pd.DataFrame:
    rows = district_county_people()
    table = pe_county_table()
    people = rows.groupby(["state_fips", "county_fips"], sort=True)["people"].sum()
    shares = (people / people.groupby(level="state_fips").transform("sum")).rename("share")
    shares = shares[shares > 0].reset_index()
    shares["state_fips"] = shares["state_fips"].astype("int64")
    missing_states = sorted(set(FIPS_CODES) - set(shares["state_fips"]))
    if missing_states:
        raise CountyMappingError(
            "states without county shares: "
            + ", ".join(f"{CODE_BY_FIPS[s]} ({s:02d})" for s in missing_states)
        )
    in_states = table["county_fips"].str[:2].astype(int).isin(FIPS_CODES)
    never_drawn = sorted(set(table.loc[in_states, "county_fips"]) - set(shares["county_fips"]))
    shares.attrs = {
        **rows.attrs,
        "counties_never_drawn": never_drawn,
        "sources": {
            name: json.loads((DATA_DIR / SOURCES_FILE).read_text())[name]["sha256"]
            for name in (COUNTY_CD_FILE, DISTRICT_POPULATION_FILE)
        },
    }
    return shares


def county_shares_by_state() -> pd.DataFrame:
    """``state_fips`` (int), ``county_fips`` (5-digit str), ``share`` (sums to 1 per state).

    ``attrs`` carries the mapping's match rates, the unmatched county names (dropped),
    ``counties_never_drawn`` (policyengine-us counties of the 50 states and DC that the
    district table does not list) and the carried tables' SHA256.
    """
    shares = _county_shares()
    copy = shares.copy()
    copy.attrs = {
        key: list(value) if isinstance(value, list) else value
        for key, value in shares.attrs.items()
    }
    return copy


def assign_counties(household: pd.DataFrame, seed: int) -> pd.Series:
    """A five-digit ``county_fips`` per household, drawn within its state by population share.

    One uniform draw per household row from ``numpy.random.default_rng(seed)``, in row
    order, so the result is fixed by the seed and the household table. Raises naming any
    state that has no county shares.
    """
    states = household["state_fips"].astype("int64").to_numpy()
    draws = np.random.default_rng(seed).random(len(states))
    shares = _county_shares()
    by_state = {int(s): group for s, group in shares.groupby("state_fips", sort=True)}
    counties = np.empty(len(states), dtype=object)
    for state in np.unique(states):
        group = by_state.get(int(state))
        if group is None:
            raise CountyMappingError(
                f"state_fips {int(state)} ({CODE_BY_FIPS.get(int(state), 'not a state or DC')}) "
                "has no county shares"
            )
        cumulative = np.cumsum(group["share"].to_numpy())
        cumulative[-1] = 1.0
        rows = states == state
        picks = np.searchsorted(cumulative, draws[rows], side="right")
        counties[rows] = group["county_fips"].to_numpy()[picks]
    return pd.Series(counties, index=household.index, name="county_fips", dtype=object)
