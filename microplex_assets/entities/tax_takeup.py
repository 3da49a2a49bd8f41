"""Take-up inputs for programs the CPS file reports no receipt of (stage 6).

policyengine-us 2.68 pays the EITC, the ACA premium tax credit, DC's property tax credit,
Head Start and Early Head Start to every eligible unit unless its take-up input says
otherwise (``takes_up_eitc``, ``takes_up_aca_if_eligible``, ``takes_up_dc_ptc``,
``takes_up_{head_start,early_head_start}_if_eligible``, all defaulting to true). The
taxcalc CPS reports none of these, so, as the eCPS does, each unit takes up with the
published rate (``data/take_up_rates.csv``, sources in ``data/SOURCES.json``): EITC by the
unit's EITC children (0, 1, 2, 3+: 0.65, 0.86, 0.85, 0.85), ACA 0.672 and the DC credit
0.32 on tax units, Head Start 0.30 and Early Head Start 0.09 on persons. With no reporters
``takeup.anchored_take_up`` draws everyone with the rate itself. Draws are independent of
eligibility, so the share among eligibles is the rate in expectation. Each variable has
its own generator, ``numpy.random.default_rng([seed, crc32(variable)])``.

Left out: ``is_wic_at_nutritional_risk`` (the eCPS's rates by WIC category cite no
source). ``would_file_taxes_voluntarily`` is set by a rule, not a rate: ``filing.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.entities.demographics import stream
from microplex_assets.entities.takeup import anchored_take_up, take_up_rates, weighted_share

# variable -> (entity, program in the rates table)
DRAWN: dict[str, tuple[str, str]] = {
    "takes_up_aca_if_eligible": ("tax_unit", "aca"),
    "takes_up_dc_ptc": ("tax_unit", "dc_ptc"),
    "takes_up_head_start_if_eligible": ("person", "head_start"),
    "takes_up_early_head_start_if_eligible": ("person", "early_head_start"),
}
EITC = ("takes_up_eitc", "eitc_", 3)  # variable, program prefix, top children group
EITC_CHILDREN = "eitc_children"
EITC_CHILD_AGE = 19


def eitc_children(person: pd.DataFrame, tax_unit: pd.DataFrame) -> np.ndarray:
    """EITC children per tax unit: the file's count (``eitc_children``, taxcalc ``EIC``), else
    the unit's dependents under 19 (records without the column, such as the spine's)."""
    role = person["role"].astype(str).to_numpy()
    young = (role == "dependent") & (person["age"].to_numpy(dtype=float) < EITC_CHILD_AGE)
    counted = pd.Series(young).groupby(person["tax_unit_id"].to_numpy()).sum()
    fallback = tax_unit["tax_unit_id"].map(counted).fillna(0)
    if EITC_CHILDREN in tax_unit.columns:
        return tax_unit[EITC_CHILDREN].fillna(fallback).to_numpy(dtype=np.int64)
    return fallback.to_numpy(dtype=np.int64)


def add_drawn_take_up(
    person: pd.DataFrame, tax_unit: pd.DataFrame, household: pd.DataFrame, seed: int
) -> dict[str, Any]:
    """Add the take-up columns above to ``person`` and ``tax_unit`` in place; a summary back."""
    rates, _ = take_up_rates()
    weight = household.set_index("household_id")["household_weight"]
    weights = {
        "person": person["household_id"].map(weight).to_numpy(dtype=float),
        "tax_unit": tax_unit["household_id"].map(weight).to_numpy(dtype=float),
    }
    tables = {"person": person, "tax_unit": tax_unit}
    summary: dict[str, Any] = {}
    variable, prefix, top = EITC
    groups = np.minimum(eitc_children(person, tax_unit), top)
    rate = np.array([rates[f"{prefix}{g}"]["US"] for g in groups])
    flags, used = anchored_take_up(
        np.zeros(len(tax_unit), dtype=bool),
        rate,
        stream(seed, variable).random(len(tax_unit)),
        weights["tax_unit"],
        groups,
    )
    tax_unit[variable] = flags
    summary[variable] = {"probability_by_children": used}
    for variable, (entity, program) in DRAWN.items():
        table = tables[entity]
        flags, used = anchored_take_up(
            np.zeros(len(table), dtype=bool),
            np.full(len(table), rates[program]["US"]),
            stream(seed, variable).random(len(table)),
            weights[entity],
        )
        table[variable] = flags
        summary[variable] = {"probability": used["0"]}
    for variable in (EITC[0], *DRAWN):
        entity = "tax_unit" if variable in tax_unit.columns else "person"
        summary[variable]["take_up_share"] = weighted_share(
            weights[entity], tables[entity][variable].to_numpy(bool)
        )
    return summary
