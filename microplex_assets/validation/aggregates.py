"""Stage 9: weighted national aggregates of a dataset, computed by policyengine-us.

``Microsimulation.calculate`` returns microdf MicroSeries carrying the entity weights,
so ``.sum()`` is the weighted total and ``.count()``-style quantities use the weights too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

# quantity, PolicyEngine variable, unit
AGGREGATES: tuple[tuple[str, str, str], ...] = (
    ("population", "person_id", "people"),
    ("households", "household_id", "households"),
    ("income_tax", "income_tax", "USD"),
    ("snap", "snap", "USD"),
    ("ssi", "ssi", "USD"),
    ("eitc", "eitc", "USD"),
    ("employment_income", "employment_income", "USD"),
    ("household_net_income", "household_net_income", "USD"),
)


def national_aggregates(simulation: Any, year: int) -> pd.DataFrame:
    """One row per quantity: weighted total, unit and the number of nonzero records."""
    rows = []
    for quantity, variable, unit in AGGREGATES:
        values = simulation.calculate(variable, year)
        raw = np.asarray(pd.Series(values).to_numpy(), dtype=float)
        if unit == "USD":
            total = float(values.sum())
            nonzero = int((raw != 0).sum())
        else:  # counts: the weighted number of entities
            total = float(values.weights.sum())
            nonzero = int(len(raw))
        rows.append(
            {
                "quantity": quantity,
                "policyengine_variable": variable,
                "entity": simulation.tax_benefit_system.variables[variable].entity.key,
                "weighted_total": total,
                "unit": unit,
                "nonzero_records": nonzero,
            }
        )
    return pd.DataFrame(rows)


def format_aggregates_markdown(table: pd.DataFrame) -> str:
    """Markdown table in $bn for money and millions for counts."""
    shown = table.assign(
        value=[
            f"${total / 1e9:,.1f}bn" if unit == "USD" else f"{total / 1e6:,.2f}m"
            for total, unit in zip(table["weighted_total"], table["unit"], strict=True)
        ]
    )[["quantity", "policyengine_variable", "entity", "value", "nonzero_records"]]
    return shown.to_markdown(index=False)
