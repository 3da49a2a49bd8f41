"""Do a state's district targets add up to the state's own target? The residual per state.

A district shard calibrated to its district targets and a state shard calibrated to the
state's targets can only agree if the facts do. They come from different sources:
- population: ACS 2024 1-year S0101 districts vs the Census Vintage 2023 population
  estimate of the state (``population_by_state.csv``): a survey against the estimates
  program, one year apart;
- SNAP households: ACS 2024 S2201 households that received SNAP at some time in the
  past 12 months vs USDA FY2023 average monthly participating households
  (``snap_state.csv``): different definitions (a 12-month ever-received count against a
  monthly average, survey under-reporting against administrative counts).

So residuals are expected; this reports them, both as published (``reported_*``) and at
the build year (each side uprated as the registry uprates it), so the tolerance a
district shard is held to can be stated per state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from microplex_assets.geography.districts import parse_district
from microplex_assets.targets import state_tables
from microplex_assets.targets.aggregate_uprating import Uprater
from microplex_assets.targets.carried import DATA_DIR, carried_table
from microplex_assets.targets.district_tables import AGE_SEX_GROUP, SNAP_GROUP
from microplex_assets.targets.model import Target

# measure -> (district target group, state target name with {state})
MEASURES: dict[str, tuple[str, str]] = {
    "population": (AGE_SEX_GROUP, "census/population/count/state/{state}"),
    "snap_households": (SNAP_GROUP, "usda/snap/count/state/{state}"),
}
COLUMNS = (
    "state",
    "measure",
    "districts",
    "district_sum",
    "state_target",
    "relative_residual",
    "reported_district_sum",
    "reported_state",
    "reported_relative_residual",
    "district_source",
    "state_source",
)


def _label(target: Target) -> str:
    return f"{target.source['agency']} {target.source['table'][:60]} ({target.source['year']})"


def reconcile_district_totals(
    district_targets: Iterable[Target], state_targets: Iterable[Target]
) -> pd.DataFrame:
    """One row per state x measure (``MEASURES``): the sum of the state's district targets,
    the state target, and ``relative_residual`` = sum / state - 1 (at the targets' period;
    ``reported_*`` before uprating). States without both sides are left out."""
    by_name = {t.name: t for t in state_targets}
    rows: list[dict[str, Any]] = []
    district_targets = list(district_targets)
    for measure, (group, state_name) in MEASURES.items():
        sums: dict[str, list[Target]] = {}
        for target in district_targets:
            if target.group == group:
                sums.setdefault(parse_district(target.geography).state, []).append(target)
        for state, members in sorted(sums.items()):
            state_target = by_name.get(state_name.format(state=state))
            if state_target is None:
                continue
            total = sum(t.value for t in members)
            reported = sum(t.source["reported_value"] for t in members)
            state_reported = state_target.source["reported_value"]
            rows.append(
                {
                    "state": state,
                    "measure": measure,
                    "districts": len({t.geography for t in members}),
                    "district_sum": total,
                    "state_target": state_target.value,
                    "relative_residual": total / state_target.value - 1.0,
                    "reported_district_sum": reported,
                    "reported_state": state_reported,
                    "reported_relative_residual": reported / state_reported - 1.0,
                    "district_source": _label(members[0]),
                    "state_source": _label(state_target),
                }
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def state_totals(year: int, system: Any, data_dir: Path = DATA_DIR) -> list[Target]:
    """The registry's state population and SNAP household targets (the carried tables,
    built by ``state_tables`` as ``reference_tables`` builds them), resolved to ``year``."""
    uprater = Uprater(system, year)
    frame, entry = carried_table(
        "population_by_state.csv", state_tables.POPULATION_COLUMNS, data_dir
    )
    table = state_tables.Table(entry, uprater, [])
    targets = state_tables.population_state_targets(frame, table, set())
    frame, entry = carried_table("snap_state.csv", state_tables.SNAP_COLUMNS, data_dir)
    targets += state_tables.snap_state_targets(frame, state_tables.Table(entry, uprater, []))
    return targets


def residual_summary(table: pd.DataFrame, column: str = "relative_residual") -> pd.DataFrame:
    """Per measure: median and largest absolute residual, and the state it is in."""
    rows = []
    for measure, group in table.groupby("measure", sort=True):
        absolute = group[column].abs()
        worst = group.loc[absolute.idxmax()]
        rows.append(
            {
                "measure": measure,
                "states": len(group),
                "median_abs": float(absolute.median()),
                "worst_abs": float(absolute.max()),
                "worst_state": worst["state"],
                "worst_residual": float(worst[column]),
            }
        )
    return pd.DataFrame(rows)


def benchmarked_to_state(
    district_targets: Iterable[Target], state_targets: Iterable[Target], measure: str
) -> list[Target]:
    """The ``measure`` district targets scaled so each state's districts sum to the state
    target: the districts give the split, the state target the level. For SNAP, where
    the ACS falls 26% short of USDA's counts, this is what keeps a district shard
    consistent with its state shard. ``source`` records the factor and the state target.
    Targets of states without a state target are returned unscaled."""
    group, state_name = MEASURES[measure]
    by_name = {t.name: t for t in state_targets}
    chosen = [t for t in district_targets if t.group == group]
    sums: dict[str, float] = {}
    for target in chosen:
        state = parse_district(target.geography).state
        sums[state] = sums.get(state, 0.0) + target.value
    scaled = []
    for target in chosen:
        state = parse_district(target.geography).state
        state_target = by_name.get(state_name.format(state=state))
        if state_target is None:
            scaled.append(target)
            continue
        factor = state_target.value / sums[state]
        source = {**target.source, "benchmarked_to": state_target.name, "benchmark_factor": factor}
        scaled.append(replace(target, value=target.value * factor, source=source))
    return scaled
