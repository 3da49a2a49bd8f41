"""National children by the age groups child benefits use (Census population projections).

Why a family of its own: the state-by-5-year-age targets (ACS) are about 900 terms of the
population family, so each weighs little in the fitted objective, and their bands
(0-4, 5-9, 10-14, 15-19) cut across the ages child benefits turn on (under 6, under 18).
On build 1f862116 the fitted weights held about 77m children against the Census
Bureau's 71.5m for 2024, and every child too many is a child a child-benefit reform pays:
the ARPA child tax credit cost $113bn on our weights against $103bn on the eCPS method's
(README, "Calibration a user can trust, measured"). Two national targets, under 6 and
6-17, in a family the fit balances like any program's, pin the count child benefits scale
with.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from microplex_assets.targets.aggregate_uprating import POPULATION_INDEX
from microplex_assets.targets.model import Target, TargetFilter
from microplex_assets.targets.state_tables import Table

CHILDREN_FILE = "census_children_by_age_2022_2040.csv"
CHILD_AGES = tuple(range(18))
CHILDREN_COLUMNS = ("year", "total_population", *(f"age_{a}" for a in CHILD_AGES))
CHILDREN_GROUP = "census/children_by_age"
CHILDREN_FAMILY = "children"
# (label, first age, first age past the group): ARPA's under-6 and 6-17 credit amounts.
AGE_GROUPS: tuple[tuple[str, int, int], ...] = (("age_0_5", 0, 6), ("age_6_17", 6, 18))


def national_children_targets(frame: pd.DataFrame, table: Table) -> list[Target]:
    """People under 6 and aged 6-17 in the build year (one projection row per year).

    ``table`` is a ``state_tables.Table`` over the carried file; the row of the build year
    is read as is (a projection for that year: no uprating). A build year outside the
    file's years raises naming the file, the year and the years it holds.
    """
    year = table.uprater.year
    rows = frame[frame["year"].astype(int) == int(year)]
    if len(rows) != 1:
        raise ValueError(
            f"{table.entry['file']}: {len(rows)} rows for year {year} in column year; "
            f"expected one (the file holds {int(frame['year'].min())}-{int(frame['year'].max())})"
        )
    row = rows.iloc[0]
    at_year = replace(table, entry={**table.entry, "year": int(year)})
    targets = []
    for label, low, high in AGE_GROUPS:
        columns = [f"age_{a}" for a in range(low, high)]
        targets.append(
            at_year.target(
                f"census/children/{label}/US",
                float(row[columns].sum()),
                POPULATION_INDEX,
                f"{columns[0]}..{columns[-1]}",
                variable="person_count",
                aggregation="count",
                entity="person",
                scope="population",
                family=CHILDREN_FAMILY,
                group=CHILDREN_GROUP,
                filters=(TargetFilter("age", float(low), float(high)),),
            )
        )
    return targets
