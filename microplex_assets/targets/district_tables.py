"""District targets: ACS 2024 people by age x sex, households and SNAP households per
congressional district, as ``Target`` s whose geography is the district key (``CA-12``).

Provider ``district_tables`` (``district_table_targets``, the registry's provider
signature) and ``district_targets(key, year, system)`` for one district. Not among the
registry's default providers: scoring a district target needs a household-level district
(see "Scoring" below), which the build does not record yet.

Semantics, per district (the same as the state targets they must add up to):
- ``census/population_by_age_sex/<band>/<sex>/district/<key>``: ``person_count`` of people
  with ``age`` in the band and ``is_female`` 0 (male) or 1 (female); S0101 C03/C05 rows
  002-019, 36 per district; they sum to S0101_C01_001E;
- ``census/households/count/district/<key>``: ``household_count`` (S2201_C01_001E);
- ``census/snap_households/count/district/<key>``: households with ``snap`` > 0 (the SPM
  units' SNAP summed to the household; S2201_C03_001E counts households that received
  SNAP at some time in the past 12 months, so it is a household, not an SPM-unit, count).
Counts are brought to the build year with population growth, as the state counts are.

Median 2-bedroom rent (ACS 5-year 2023) is carried too but is not a target: a median is
not a weighted sum of records (the calibration matrix is linear in the weights), and the
table has 118th-Congress boundaries, which AL, GA, LA, NY and NC redrew for the 119th.
``district_rent`` gives it as a check a district shard's housing costs can be compared to.

Scoring (proposal, not wired): ``record_contributions`` filters a state target by
``state_fips``; a district target needs the same mask on the household's district. The
recorded assignment (``geography.district_assignment.assign_districts``) gives it; the
H5 should carry it as policyengine-us 2.68's ``congressional_district_geoid`` household
input (the Census GEOID, ``District.geoid``: 612, 5600, 1198), so the mask is
``values("congressional_district_geoid", entity) == parse_district(geography).geoid``,
computed by PolicyEngine like ``state_fips`` and mapped to the target's entity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from microplex_assets.geography.districts import (
    District,
    UnknownDistrictError,
    district_from_geoid,
    parse_district,
)
from microplex_assets.targets.aggregate_uprating import POPULATION_INDEX, Uprater
from microplex_assets.targets.carried import DATA_DIR, carried_table
from microplex_assets.targets.common import Skipped
from microplex_assets.targets.district_sources import (
    AGE_SEX_COLUMNS,
    FEMALE_BANDS,
    HOUSEHOLDS,
    MALE_BANDS,
    RENT_COLUMNS,
    SNAP_COLUMNS,
    SNAP_HOUSEHOLDS,
)
from microplex_assets.targets.model import Target, TargetFilter
from microplex_assets.targets.state_tables import PEOPLE, Table, _age_band

PROVIDER = "district_tables"
AGE_SEX_FILE = "district_age_sex_acs_S0101_2024.csv"
SNAP_FILE = "district_snap_acs_S2201_2024.csv"
RENT_FILE = "district_median_2br_rent_2023.csv"
AGE_SEX_GROUP = "census/population_by_age_sex_by_district"
HOUSEHOLDS_GROUP = "census/households_by_district"
SNAP_GROUP = "census/snap_households_by_district"
# States whose 119th-Congress districts differ from the 118th's (the rent table's).
REDRAWN_FOR_119TH = ("AL", "GA", "LA", "NY", "NC")
SEXES = (("male", MALE_BANDS, 0.0), ("female", FEMALE_BANDS, 1.0))


def _district(row: pd.Series, table: Table) -> District | None:
    """The district of a row (GEOID from ``state`` + ``congressional district``), or None
    with a skip record outside the 50 states + DC (Puerto Rico's 7298)."""
    geoid = int(row["state"]) * 100 + int(row["congressional district"])
    try:
        district = district_from_geoid(geoid)
    except UnknownDistrictError:
        table.skipped.append(
            Skipped(
                PROVIDER,
                table.entry["table"],
                f"row {row['GEO_ID']}",
                "outside the 50 states and DC the build covers",
            )
        )
        return None
    if row["GEO_ID"] != district.geo_id:
        raise ValueError(f"{table.entry['file']}: {row['GEO_ID']} is not {district.geo_id}")
    return district


def _rows(frame: pd.DataFrame, keys: set[str] | None) -> pd.DataFrame:
    frame = frame.astype({"state": str, "congressional district": str})
    frame["state"] = frame["state"].str.zfill(2)
    frame["congressional district"] = frame["congressional district"].str.zfill(2)
    if keys is None:
        return frame
    geoids = {parse_district(key).geoid for key in keys}
    code = frame["state"].astype(int) * 100 + frame["congressional district"].astype(int)
    return frame[code.isin(geoids)]


def age_sex_targets(frame: pd.DataFrame, table: Table) -> list[Target]:
    """People by district x sex x 5-year age band (36 per district)."""
    targets = []
    for _, row in frame.iterrows():
        district = _district(row, table)
        for sex, bands, female in SEXES if district else ():
            for column, label in bands.items():
                low, high, band = _age_band(label)
                targets.append(
                    table.target(
                        f"census/population_by_age_sex/{band}/{sex}/district/{district.key}",
                        float(row[column]),
                        POPULATION_INDEX,
                        column,
                        geography=district.key,
                        group=AGE_SEX_GROUP,
                        filters=(
                            TargetFilter("age", low, high),
                            TargetFilter("is_female", female, female + 1.0),
                        ),
                        **PEOPLE,
                    )
                )
    return targets


def household_targets(frame: pd.DataFrame, table: Table) -> list[Target]:
    """Households and SNAP-receiving households by district."""
    targets = []
    for _, row in frame.iterrows():
        district = _district(row, table)
        if district is None:
            continue
        common = dict(aggregation="count", entity="household", geography=district.key)
        targets.append(
            table.target(
                f"census/households/count/district/{district.key}",
                float(row[HOUSEHOLDS]),
                POPULATION_INDEX,
                HOUSEHOLDS,
                variable="household_count",
                scope="population",
                family="population",
                group=HOUSEHOLDS_GROUP,
                **common,
            )
        )
        targets.append(
            table.target(
                f"census/snap_households/count/district/{district.key}",
                float(row[SNAP_HOUSEHOLDS]),
                POPULATION_INDEX,
                SNAP_HOUSEHOLDS,
                variable="snap",
                scope="recipient",
                family="snap",
                group=SNAP_GROUP,
                **common,
            )
        )
    return targets


def district_table_targets(
    year: int,
    system: Any,
    skipped: list[Skipped] | None = None,
    data_dir: Path = DATA_DIR,
    districts: set[str] | None = None,
) -> list[Target]:
    """Every district target (or those of ``districts``, keys), resolved to ``year``."""
    skipped = [] if skipped is None else skipped
    uprater = Uprater(system, year)
    targets: list[Target] = []
    for name, columns, build in (
        (AGE_SEX_FILE, AGE_SEX_COLUMNS, age_sex_targets),
        (SNAP_FILE, SNAP_COLUMNS, household_targets),
    ):
        frame, entry = carried_table(name, columns, data_dir)
        table = Table(entry, uprater, skipped, PROVIDER)
        targets.extend(build(_rows(frame, districts), table))
    return targets


def district_targets(district_key: str, year: int, system: Any) -> list[Target]:
    """The targets of one district (any accepted key form), resolved to ``year``; an
    unknown district is refused with UnknownDistrictError naming it."""
    key = parse_district(district_key).key
    return district_table_targets(year, system, districts={key})


def district_rent(district_key: str, data_dir: Path = DATA_DIR) -> dict[str, Any]:
    """Median 2-bedroom rent of a district (ACS 5-year 2023, 118th-Congress boundaries),
    the national median, their ratio and the source; ``boundaries_changed`` is True in
    the states that redrew their districts for the 119th Congress."""
    district = parse_district(district_key)
    frame, entry = carried_table(RENT_FILE, RENT_COLUMNS, data_dir)
    row = frame[
        (frame["state_fips"] == district.state_fips)
        & (frame["district"] == int(district.census_code))
    ]
    if len(row) != 1:
        raise ValueError(f"{entry['file']}: {len(row)} rows for {district.key}")
    rent, national = (
        float(row["median_2br_rent"].iloc[0]),
        float(row["national_median_2br_rent"].iloc[0]),
    )
    return {
        "district": district.key,
        "median_2br_rent": rent,
        "national_median_2br_rent": national,
        "ratio_to_national": rent / national,
        "boundaries_changed": district.state in REDRAWN_FOR_119TH,
        "source": {
            "agency": entry["agency"],
            "table": entry["table"],
            "year": int(entry["year"]),
            "file": entry["file"],
            "sha256": entry["sha256"],
        },
    }
