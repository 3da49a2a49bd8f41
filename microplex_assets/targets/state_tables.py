"""State tables (IRS SOI state data, Census, USDA, CMS) and the SOI EITC table as targets.

One function per carried table; each gives every target of one table the same ``group``
per family (a held-out split moves a whole table). State geography is the postal code;
rows outside the 50 states + DC (Puerto Rico) are reported as skipped. IRS SOI facts are
filer-only like the national SOI tables; Census facts cover the whole population.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from microplex_assets.geography.states import STATE_FIPS
from microplex_assets.targets.aggregate_uprating import (
    CBO_AGI,
    CPI_U,
    POPULATION_INDEX,
    AggregateIndex,
    Uprater,
    total_index,
)
from microplex_assets.targets.common import (
    Skipped,
    agi_band_filters,
    band_label,
    state_from_geo_id,
)
from microplex_assets.targets.model import Target, TargetFilter

PROVIDER = "reference_tables"
AGI_INDEX = total_index(CBO_AGI, "CBO projection of total AGI")
SNAP_INDEX = total_index("calibration.gov.cbo.snap", "CBO SNAP outlays")
EITC_INDEX = AggregateIndex(CPI_U, True, "CPI-U x population (EITC parameters are indexed)")

AGI_STATE_COLUMNS = (
    "GEO_ID",
    "GEO_NAME",
    "AGI_LOWER_BOUND",
    "AGI_UPPER_BOUND",
    "VALUE",
    "IS_COUNT",
    "VARIABLE",
)
AGE_BANDS = (
    "0-4",
    "5-9",
    "10-14",
    "15-19",
    "20-24",
    "25-29",
    "30-34",
    "35-39",
    "40-44",
    "45-49",
    "50-54",
    "55-59",
    "60-64",
    "65-69",
    "70-74",
    "75-79",
    "80-84",
    "85+",
)
AGE_STATE_COLUMNS = ("GEO_ID", "GEO_NAME", *AGE_BANDS)
POPULATION_COLUMNS = ("state", "population", "population_under_5")
HOUSEHOLDS_COLUMNS = ("state_fips", "households")
SNAP_COLUMNS = ("GEO_ID", "Households", "Cost")
EITC_STATE_COLUMNS = ("GEO_ID", "Returns", "Amount")
EITC_CHILDREN_COLUMNS = ("count_children", "agi_lower", "agi_upper", "returns", "amount")
MEDICAID_COLUMNS = ("state", "enrollment")

PEOPLE = dict(
    variable="person_count",
    aggregation="count",
    entity="person",
    scope="population",
    family="population",
)
RETURNS = dict(
    variable="tax_unit_is_filer",
    aggregation="count",
    entity="tax_unit",
    scope="filer",
    family="returns",
)


@dataclass(frozen=True)
class Table:
    """One carried table being turned into targets at one build year."""

    entry: dict[str, Any]  # SOURCES.json entry plus ``file``
    uprater: Uprater
    skipped: list[Skipped]
    provider: str = PROVIDER  # the registry provider the targets are recorded under

    @property
    def year(self) -> int:
        return int(str(self.entry["year"]).strip())

    def target(
        self, name: str, reported: float, index: AggregateIndex, column: str, **fields: Any
    ) -> Target:
        """A target worth ``reported`` x the factor from the table's year to the build year."""
        source = {
            "provider": self.provider,
            "agency": self.entry["agency"],
            "table": self.entry["table"],
            "year": self.year,
            "file": self.entry["file"],
            "column": column,
            "reported_value": float(reported),
        }
        source.update(self.uprater.record(index, self.year))
        fields.setdefault("geography", "US")
        return Target(
            name=name,
            value=float(reported) * source["uprating_factor"],
            period=self.uprater.year,
            source=source,
            **fields,
        )

    def state(self, code: Any) -> str:
        """Postal code of a state code or GEO_ID ("" and a skip record outside the 51)."""
        state = str(code) if str(code) in STATE_FIPS else state_from_geo_id(str(code))
        if state is None:
            self.skipped.append(
                Skipped(
                    self.provider,
                    self.entry["table"],
                    f"row {code}",
                    "outside the 50 states and DC the build covers",
                )
            )
            return ""
        return state


def agi_state_targets(frame: pd.DataFrame, table: Table) -> list[Target]:
    """Returns (count) and AGI (sum) by state x AGI band."""
    targets = []
    for row in frame.itertuples(index=False):
        state = table.state(row.GEO_ID)
        if not state:
            continue
        if str(row.GEO_NAME) != state:
            raise ValueError(f"{table.entry['file']}: {row.GEO_ID} is {state}, not {row.GEO_NAME}")
        low, high = float(row.AGI_LOWER_BOUND), float(row.AGI_UPPER_BOUND)
        band, filters = band_label(low, high), agi_band_filters(low, high)
        if bool(row.IS_COUNT):
            targets.append(
                table.target(
                    f"irs_soi/returns/count/{band}/state/{state}",
                    row.VALUE,
                    POPULATION_INDEX,
                    "N1",
                    geography=state,
                    group="irs_soi/returns_by_state",
                    filters=filters,
                    **RETURNS,
                )
            )
        else:
            targets.append(
                table.target(
                    f"irs_soi/adjusted_gross_income/sum/{band}/state/{state}",
                    row.VALUE,
                    AGI_INDEX,
                    "A00100",
                    variable="adjusted_gross_income",
                    aggregation="sum",
                    entity="tax_unit",
                    scope="filer",
                    geography=state,
                    family="agi",
                    group="irs_soi/agi_by_state",
                    filters=filters,
                )
            )
    return targets


def _age_band(label: str) -> tuple[float, float, str]:
    if label.endswith("+"):
        return float(label[:-1]), math.inf, f"age_{label[:-1]}_plus"
    low, high = (int(x) for x in label.split("-"))
    return float(low), float(high + 1), f"age_{low}_{high}"


def age_state_targets(frame: pd.DataFrame, table: Table) -> list[Target]:
    """People by state x 5-year age band."""
    targets = []
    for _, row in frame.iterrows():
        state = table.state(row["GEO_ID"])
        for label in AGE_BANDS if state else ():
            low, high, band = _age_band(label)
            targets.append(
                table.target(
                    f"census/population_by_age/{band}/state/{state}",
                    row[label],
                    POPULATION_INDEX,
                    label,
                    geography=state,
                    group="census/population_by_age_by_state",
                    filters=(TargetFilter("age", low, high),),
                    **PEOPLE,
                )
            )
    return targets


def population_state_targets(
    frame: pd.DataFrame, table: Table, age_states: set[str]
) -> list[Target]:
    """State population; under-5 only for states the age table lacks (else a duplicate)."""
    targets = []
    for row in frame.itertuples(index=False):
        state = table.state(row.state)
        if not state:
            continue
        targets.append(
            table.target(
                f"census/population/count/state/{state}",
                row.population,
                POPULATION_INDEX,
                "population",
                geography=state,
                group="census/population_by_state",
                **PEOPLE,
            )
        )
        if state in age_states:
            table.skipped.append(
                Skipped(
                    PROVIDER,
                    table.entry["table"],
                    f"population_under_5 {state}",
                    "same fact as the age_state.csv 0-4 band (kept)",
                )
            )
            continue
        targets.append(
            table.target(
                f"census/population_by_age/age_0_4/state/{state}",
                row.population_under_5,
                POPULATION_INDEX,
                "population_under_5",
                geography=state,
                group="census/population_by_state",
                filters=(TargetFilter("age", 0.0, 5.0),),
                **PEOPLE,
            )
        )
    return targets


def state_count_and_sum_targets(
    frame: pd.DataFrame,
    table: Table,
    *,
    prefix: str,
    count: tuple[str, str, dict[str, Any]],
    amount: tuple[str, str, str, dict[str, Any]],
    common: dict[str, Any],
) -> list[Target]:
    """Per state, one recipient count and one amount target of the same program.

    count: (column, source column label, extra fields); amount: (column, uprating index,
    source column label, extra fields); common: fields both targets share.
    """
    targets = []
    count_column, count_label, count_fields = count
    amount_column, amount_index, amount_label, amount_fields = amount
    for row in frame.itertuples(index=False):
        state = table.state(row.GEO_ID)
        if not state:
            continue
        fields = {**common, "geography": state}
        targets.append(
            table.target(
                f"{prefix}/count/state/{state}",
                getattr(row, count_column),
                POPULATION_INDEX,
                count_label,
                aggregation="count",
                **count_fields,
                **fields,
            )
        )
        targets.append(
            table.target(
                f"{prefix}/sum/state/{state}",
                getattr(row, amount_column),
                amount_index,
                amount_label,
                aggregation="sum",
                **amount_fields,
                **fields,
            )
        )
    return targets


def snap_state_targets(frame: pd.DataFrame, table: Table) -> list[Target]:
    """SNAP households (SPM units receiving SNAP) and benefit cost by state."""
    return state_count_and_sum_targets(
        frame,
        table,
        prefix="usda/snap",
        count=("Households", "Households", {"scope": "recipient"}),
        amount=("Cost", SNAP_INDEX, "Cost", {"scope": "spm_unit"}),
        common=dict(variable="snap", entity="spm_unit", family="snap", group="usda/snap_by_state"),
    )


def eitc_state_targets(frame: pd.DataFrame, table: Table) -> list[Target]:
    """EITC returns and amount by state."""
    return state_count_and_sum_targets(
        frame,
        table,
        prefix="irs_soi/eitc",
        count=("Returns", "N59660", {"filters": (TargetFilter("eitc", nonzero=True),)}),
        amount=("Amount", EITC_INDEX, "A59660", {}),
        common=dict(
            variable="eitc",
            entity="tax_unit",
            scope="filer",
            family="eitc",
            group="irs_soi/eitc_by_state",
        ),
    )


def eitc_children_targets(frame: pd.DataFrame, table: Table) -> list[Target]:
    """National EITC returns and amount by AGI band x qualifying children (3 = 3 or more)."""
    targets = []
    for row in frame.itertuples(index=False):
        children = int(row.count_children)
        low, high = float(row.agi_lower), float(row.agi_upper)
        kids = TargetFilter(
            "eitc_child_count", float(children), math.inf if children >= 3 else float(children + 1)
        )
        label = "children_3_plus" if children >= 3 else f"children_{children}"
        filters = (*agi_band_filters(low, high), kids)
        common = dict(
            variable="eitc",
            entity="tax_unit",
            scope="filer",
            family="eitc",
            group="irs_soi/eitc_by_agi_and_children",
        )
        band = band_label(low, high)
        targets.append(
            table.target(
                f"irs_soi/eitc/count/{band}/{label}",
                row.returns,
                POPULATION_INDEX,
                "returns",
                aggregation="count",
                filters=(*filters, TargetFilter("eitc", nonzero=True)),
                **common,
            )
        )
        targets.append(
            table.target(
                f"irs_soi/eitc/sum/{band}/{label}",
                row.amount,
                EITC_INDEX,
                "amount",
                aggregation="sum",
                filters=filters,
                **common,
            )
        )
    return targets


def medicaid_state_targets(frame: pd.DataFrame, table: Table) -> list[Target]:
    """People enrolled in Medicaid (Medicaid only, no CHIP: ``medicaid_enrolled``) by state."""
    targets = []
    for row in frame.itertuples(index=False):
        state = table.state(row.state)
        if state:
            targets.append(
                table.target(
                    f"cms/medicaid_enrollment/count/state/{state}",
                    row.enrollment,
                    POPULATION_INDEX,
                    "enrollment",
                    variable="medicaid_enrolled",
                    aggregation="count",
                    entity="person",
                    scope="recipient",
                    geography=state,
                    family="medicaid",
                    group="cms/medicaid_enrollment_by_state",
                )
            )
    return targets


# The national household count's target name (calibration scales design weights to it).
NATIONAL_HOUSEHOLDS_TARGET = "census/households/count/US"


def national_households_target(frame: pd.DataFrame, table: Table) -> list[Target]:
    """The national household count (ACS S2201, the 50 states + DC): without it the
    weights set the number of households freely (145m against Census's 132m)."""
    fips = frame["state_fips"].astype(str).str.zfill(2)
    states = fips.map(lambda code: table.state(f"0400000US{code}"))
    if states.eq("").all():
        raise ValueError(f"{table.entry['file']}: no state rows in column state_fips")
    total = float(frame.loc[states.ne("").to_numpy(), "households"].sum())
    return [
        table.target(
            NATIONAL_HOUSEHOLDS_TARGET,
            total,
            POPULATION_INDEX,
            "households",
            variable="household_count",
            aggregation="count",
            entity="household",
            scope="population",
            family="population",
            group="census/households",
        )
    ]
