"""The fixed top-tail spine: top-wealth households appended after synthesis (stage 5).

Survey scaffolds and donors hold almost nobody with a billion dollars, yet the top 400
households carry a visible share of capital income. The spine turns a top-wealth list
(the real Forbes 400 by default, or a Forbes-style CSV) into one household per member,
weight fixed at the list's weight (1 each). These records are never donors, their
weights never move, and calibration fits the rest of the population to the targets minus
their contribution (``calibration/fixed_records.py``).

Income comes with the list (stage 2, ``sources/top_tail_income.py``: each member's
composition drawn from a real SCF 2022 top-tail record) and sits on the head.
Household shape, from the list's fields:

* a spouse person (``SPOUSE_AGE_GAP`` years younger, no income) where ``is_married``;
  filing status joint (2), else head of household (4) with dependents, else single (1);
* ``children`` become dependents only when the head is under ``CHILD_HEAD_MAX_AGE``: the
  list gives a count, not ages, and the children of older members are adults who neither
  live with them nor are claimed. Child k (0-based) is aged head age - 30 - 2k, clipped
  to 0-17 (an assumption);
* cash gifts to charity: ``CHARITABLE_SHARE_OF_AGI`` of positive income, the order of
  magnitude of the IRS SOI top-400 table (an assumption, not donor data).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.constants import FIXED_FLAG
from microplex_assets.sources.frame import ObservationFrame, SourceFormatError
from microplex_assets.sources.top_tail_income import GAINS, INCOME_COLUMNS

CHARITABLE_SHARE_OF_AGI = 0.10  # cash gifts, the top-400 table's order of magnitude
SPOUSE_AGE_GAP = 3
CHILD_HEAD_MAX_AGE = 50
PARENT_AGE_AT_FIRST_CHILD, CHILD_SPACING = 30, 2
REQUIRED = (
    "household_id",
    "net_worth",
    "age_head",
    "state_fips",
    "household_weight",
    "is_married",
    "children",
    *INCOME_COLUMNS,
)


def spine_households(top_wealth: ObservationFrame) -> pd.DataFrame:
    """The list's household table, checked: positive net worth and weights, income present."""
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


def dependent_ages(head_age: int, children: int) -> list[int]:
    """Ages of the dependents a member's ``children`` count stands for (module rule)."""
    if head_age >= CHILD_HEAD_MAX_AGE:
        return []
    first = head_age - PARENT_AGE_AT_FIRST_CHILD
    return [int(np.clip(first - CHILD_SPACING * k, 0, 17)) for k in range(children)]


def spine_persons(wealthy: pd.DataFrame, household_id: np.ndarray, tax_unit_id: np.ndarray):
    """Person rows: head (all income), spouse where married, minor dependents."""
    rows = []
    for i, member in enumerate(wealthy.itertuples(index=False)):
        age = int(member.age_head)
        roles = [("head", age)]
        if member.is_married:
            roles.append(("spouse", age - SPOUSE_AGE_GAP))
        roles += [("dependent", a) for a in dependent_ages(age, int(member.children))]
        for line, (role, person_age) in enumerate(roles):
            rows.append(
                {
                    "household_id": household_id[i],
                    "tax_unit_id": tax_unit_id[i],
                    "family_position": 1,
                    "role": role,
                    "line_in_tax_unit": line,
                    "age": int(np.clip(person_age, 0 if role == "dependent" else 18, 100)),
                    "is_blind": False,
                    "_member": i,
                }
            )
    person = pd.DataFrame(rows)
    head = (person["role"] == "head").to_numpy()
    for column in INCOME_COLUMNS:
        values = wealthy[column].to_numpy(dtype=float)[person["_member"]]
        person[column] = np.where(head, values, 0.0)
    positive = wealthy[list(INCOME_COLUMNS)].clip(lower=0).sum(axis=1).to_numpy()
    person["charitable_cash_donations"] = np.where(
        head, positive[person["_member"]] * CHARITABLE_SHARE_OF_AGI, 0.0
    )
    return person.drop(columns="_member")


def build_spine(
    top_wealth: ObservationFrame, id_offsets: dict[str, int], year: int
) -> ObservationFrame:
    """Spine households, tax units and persons with ids after ``id_offsets`` (max ids in
    use per entity), income as the list carries it."""
    wealthy = spine_households(top_wealth)
    n = len(wealthy)
    household_id = id_offsets["household"] + np.arange(1, n + 1, dtype=np.int64)
    tax_unit_id = id_offsets["tax_unit"] + np.arange(1, n + 1, dtype=np.int64)
    household = pd.DataFrame(
        {
            "household_id": household_id,
            "state_fips": wealthy["state_fips"].to_numpy(dtype=np.int64),
            "household_weight": wealthy["household_weight"].to_numpy(dtype=float),
            "net_worth": wealthy["net_worth"].to_numpy(dtype=float),
            FIXED_FLAG: True,
        }
    )
    person = spine_persons(wealthy, household_id, tax_unit_id)
    dependents = person[person["role"] == "dependent"].groupby("tax_unit_id").size()
    has_dependents = pd.Series(tax_unit_id).map(dependents).fillna(0).to_numpy() > 0
    married = wealthy["is_married"].to_numpy(dtype=bool)
    tax_unit = pd.DataFrame(
        {
            "tax_unit_id": tax_unit_id,
            "household_id": household_id,
            "filing_status": np.where(married, 2, np.where(has_dependents, 4, 1)),
            "tax_unit_weight": household["household_weight"].to_numpy(),
        }
    )
    person.insert(0, "person_id", id_offsets["person"] + np.arange(1, len(person) + 1))
    return ObservationFrame(
        source=f"spine<{top_wealth.source}>",
        year=year,
        tables={"household": household, "tax_unit": tax_unit, "person": person},
        links={"person": ["household", "tax_unit"], "tax_unit": ["household"]},
        provenance={
            "kind": top_wealth.provenance.get("kind", "unknown"),
            "list": top_wealth.provenance,
            "charitable_share_of_agi": CHARITABLE_SHARE_OF_AGI,
            "child_head_max_age": CHILD_HEAD_MAX_AGE,
            "note": "income from SCF top-tail donors (sources/top_tail_income.py); "
            "household shape by the rules in candidate/spine.py",
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
        "persons": int(len(spine.tables["person"])),
        "married": int((spine.tables["tax_unit"]["filing_status"] == 2).sum()),
        "dependents": int((spine.tables["person"]["role"] == "dependent").sum()),
        "realized_income_total": float(head[list(INCOME_COLUMNS)].sum(axis=1).to_numpy() @ weights),
        "long_term_capital_gains_total": float(head[GAINS].to_numpy() @ weights),
        "states": int(spine.tables["household"]["state_fips"].nunique()),
        "states_imputed": int(
            top_wealth.tables["household"].get("state_imputed", pd.Series(dtype=bool)).sum()
        ),
        "income_donors": top_wealth.provenance.get("income", {}).get("matches", {}),
    }
    return frame, report
