"""Provider ``reference_tables``: public SOI / Census / USDA / CMS tables carried in ``data/``.

Reads only the copies under this package (never ``../shared``), each hash-checked
against ``data/SOURCES.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from microplex_assets.targets import soi, state_tables
from microplex_assets.targets.aggregate_uprating import Uprater
from microplex_assets.targets.carried import DATA_DIR, carried_table
from microplex_assets.targets.children import (
    CHILDREN_COLUMNS,
    CHILDREN_FILE,
    national_children_targets,
)
from microplex_assets.targets.common import Skipped
from microplex_assets.targets.model import Target

PROVIDER = "reference_tables"

# file -> (columns it must have, function turning it into targets)
TABLES: dict[str, tuple[tuple[str, ...], Any]] = {
    "agi_state.csv": (state_tables.AGI_STATE_COLUMNS, state_tables.agi_state_targets),
    "age_state.csv": (state_tables.AGE_STATE_COLUMNS, state_tables.age_state_targets),
    "snap_state.csv": (state_tables.SNAP_COLUMNS, state_tables.snap_state_targets),
    "eitc_state.csv": (state_tables.EITC_STATE_COLUMNS, state_tables.eitc_state_targets),
    "eitc_by_agi_and_children.csv": (
        state_tables.EITC_CHILDREN_COLUMNS,
        state_tables.eitc_children_targets,
    ),
    "medicaid_enrollment_2024.csv": (
        state_tables.MEDICAID_COLUMNS,
        state_tables.medicaid_state_targets,
    ),
}


def reference_table_targets(
    year: int,
    system: Any,
    skipped: list[Skipped] | None = None,
    data_dir: Path = DATA_DIR,
) -> list[Target]:
    """Every target the carried tables give, resolved to ``year``.

    ``skipped`` (if given) collects the rows left out, with reasons.
    """
    skipped = [] if skipped is None else skipped
    uprater = Uprater(system, year)
    frame, entry = carried_table("soi_targets.csv", soi.SOI_COLUMNS, data_dir)
    targets = soi.soi_targets(frame, entry, year, system, uprater, skipped)
    for name, (columns, build) in TABLES.items():
        frame, entry = carried_table(name, columns, data_dir)
        targets.extend(build(frame, state_tables.Table(entry, uprater, skipped)))
    age_states = {t.geography for t in targets if t.group == "census/population_by_age_by_state"}
    frame, entry = carried_table(
        "population_by_state.csv", state_tables.POPULATION_COLUMNS, data_dir
    )
    table = state_tables.Table(entry, uprater, skipped)
    targets.extend(state_tables.population_state_targets(frame, table, age_states))
    frame, entry = carried_table(
        "households_by_state_2024.csv", state_tables.HOUSEHOLDS_COLUMNS, data_dir
    )
    table = state_tables.Table(entry, uprater, skipped)
    targets.extend(state_tables.national_households_target(frame, table))
    frame, entry = carried_table(CHILDREN_FILE, CHILDREN_COLUMNS, data_dir)
    table = state_tables.Table(entry, uprater, skipped)
    targets.extend(national_children_targets(frame, table))
    return targets
