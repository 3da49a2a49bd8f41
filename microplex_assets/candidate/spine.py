"""The fixed top-tail spine: top-wealth households appended after synthesis (stage 5).

Survey scaffolds and donors hold almost nobody with a billion dollars, yet the top 400
households carry a visible share of capital income. The spine turns a top-wealth list
(a real Forbes-style file, or the embedded list built from published aggregates) into
one household per entry: a married couple filing jointly, weight fixed at the list's
weight (1 each), income realized from net worth. These records are never donors, their
weights never move, and calibration fits the rest of the population to the targets
minus their contribution (``calibration/fixed_records.py``).

Income realization is an assumption stated here, not data: each unit's AGI is its net
worth times ``REALIZED_INCOME_YIELD``, split by ``AGI_COMPOSITION``, both set from the
IRS SOI series "The 400 Individual Income Tax Returns Reporting the Largest Adjusted
Gross Incomes Each Year, 1992-2014" (tax year 2014: about $127bn of AGI over 400
returns, average about $318m, with net capital gains well over half of it and
partnership/S-corp income, dividends, interest and wages the rest), against the Forbes
400 2014 total of about $2.29 trillion. The shares below are rounded from that table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.constants import FIXED_FLAG
from microplex_assets.sources.frame import ObservationFrame, SourceFormatError

REALIZED_INCOME_YIELD = 127.2e9 / 2.29e12  # top-400 AGI (2014) / Forbes 400 wealth (2014)
AGI_COMPOSITION: dict[str, float] = {
    "long_term_capital_gains_before_response": 0.57,
    "short_term_capital_gains": 0.01,
    "partnership_income": 0.12,
    "s_corp_income": 0.05,
    "qualified_dividend_income": 0.09,
    "non_qualified_dividend_income": 0.01,
    "taxable_interest_income": 0.05,
    "employment_income_before_lsr": 0.07,
    "rental_income": 0.01,
}
CHARITABLE_SHARE_OF_AGI = 0.10  # cash gifts, the top-400 table's order of magnitude
SPOUSE_AGE_GAP = 3
REQUIRED = ("household_id", "net_worth", "age_head", "state_fips", "household_weight")


def spine_households(top_wealth: ObservationFrame) -> pd.DataFrame:
    """The list's household table, checked: positive net worth and weights, known ages."""
    table = top_wealth.tables.get("household")
    if table is None:
        raise SourceFormatError(f"{top_wealth.source}: top-wealth list has no household table")
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise SourceFormatError(f"{top_wealth.source}: top-wealth list lacks columns {missing}")
    if (table["net_worth"] <= 0).any() or (table["household_weight"] <= 0).any():
        raise SourceFormatError(
            f"{top_wealth.source}: net_worth and household_weight must be positive"
        )
    return table.sort_values("net_worth", ascending=False).reset_index(drop=True)


def build_spine(
    top_wealth: ObservationFrame, id_offsets: dict[str, int], year: int
) -> ObservationFrame:
    """Spine households, tax units and persons with ids after ``id_offsets`` (max ids in
    use per entity), income realized from net worth."""
    wealthy = spine_households(top_wealth)
    n = len(wealthy)
    household_id = id_offsets["household"] + np.arange(1, n + 1, dtype=np.int64)
    tax_unit_id = id_offsets["tax_unit"] + np.arange(1, n + 1, dtype=np.int64)
    agi = wealthy["net_worth"].to_numpy(dtype=float) * REALIZED_INCOME_YIELD
    household = pd.DataFrame(
        {
            "household_id": household_id,
            "state_fips": wealthy["state_fips"].to_numpy(dtype=np.int64),
            "household_weight": wealthy["household_weight"].to_numpy(dtype=float),
            "net_worth": wealthy["net_worth"].to_numpy(dtype=float),
            FIXED_FLAG: True,
        }
    )
    tax_unit = pd.DataFrame(
        {
            "tax_unit_id": tax_unit_id,
            "household_id": household_id,
            "filing_status": 2,
            "tax_unit_weight": household["household_weight"].to_numpy(),
        }
    )
    head_age = wealthy["age_head"].fillna(70).to_numpy(dtype=np.int64)
    persons = []
    for line, role, age in ((0, "head", head_age), (1, "spouse", head_age - SPOUSE_AGE_GAP)):
        part = pd.DataFrame(
            {
                "household_id": household_id,
                "tax_unit_id": tax_unit_id,
                "family_position": 1,
                "role": role,
                "line_in_tax_unit": line,
                "age": np.clip(age, 18, 100),
                "is_blind": False,
            }
        )
        for variable, share in AGI_COMPOSITION.items():
            part[variable] = agi * share if role == "head" else 0.0
        part["charitable_cash_donations"] = agi * CHARITABLE_SHARE_OF_AGI if role == "head" else 0.0
        persons.append(part)
    person = pd.concat(persons).sort_values(["tax_unit_id", "line_in_tax_unit"])
    person.insert(0, "person_id", id_offsets["person"] + np.arange(1, 2 * n + 1))
    return ObservationFrame(
        source=f"spine<{top_wealth.source}>",
        year=year,
        tables={"household": household, "tax_unit": tax_unit, "person": person},
        links={"person": ["household", "tax_unit"], "tax_unit": ["household"]},
        provenance={
            "kind": top_wealth.provenance.get("kind", "unknown"),
            "list": top_wealth.provenance,
            "realized_income_yield": REALIZED_INCOME_YIELD,
            "agi_composition": AGI_COMPOSITION,
            "charitable_share_of_agi": CHARITABLE_SHARE_OF_AGI,
            "note": "income realized from net worth by the assumptions in candidate/spine.py",
        },
    )


def append_spine(
    candidate: ObservationFrame, top_wealth: ObservationFrame
) -> tuple[ObservationFrame, dict[str, Any]]:
    """The candidate with the spine appended (fixed flag set), and a report of it."""
    offsets = {
        entity: int(candidate.tables[entity][f"{entity}_id"].max())
        for entity in ("household", "tax_unit", "person")
    }
    spine = build_spine(top_wealth, offsets, candidate.year)
    tables = {}
    for entity, table in candidate.tables.items():
        extra = spine.tables.get(entity)
        if extra is None:
            tables[entity] = table
            continue
        base = table.copy()
        if entity == "household":
            base[FIXED_FLAG] = False
        combined = pd.concat([base, extra], ignore_index=True)
        for column in combined.columns:
            if column in base.columns and column in extra.columns:
                continue
            if pd.api.types.is_bool_dtype(base.get(column, extra.get(column))):
                combined[column] = combined[column].fillna(False).astype(bool)
            elif pd.api.types.is_numeric_dtype(combined[column]):
                combined[column] = combined[column].fillna(0)
            else:
                combined[column] = combined[column].fillna("")
        tables[entity] = combined
    frame = ObservationFrame(
        source=candidate.source,
        year=candidate.year,
        tables=tables,
        links=candidate.links,
        provenance={**candidate.provenance, "spine": spine.provenance},
    )
    frame.validate()
    head = spine.tables["person"]
    head = head[head["role"] == "head"]
    weights = spine.tables["household"]["household_weight"].to_numpy()
    report = {
        "records": int(len(spine.tables["household"])),
        "kind": spine.provenance["kind"],
        "weight_total": float(weights.sum()),
        "net_worth_total": float(spine.tables["household"]["net_worth"] @ weights),
        "realized_agi_total": float(head[list(AGI_COMPOSITION)].sum(axis=1).to_numpy() @ weights),
        "long_term_capital_gains_total": float(
            head["long_term_capital_gains_before_response"].to_numpy() @ weights
        ),
        "states": int(spine.tables["household"]["state_fips"].nunique()),
    }
    return frame, report
