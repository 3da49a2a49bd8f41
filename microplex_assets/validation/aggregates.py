"""Stage 9: weighted national aggregates of a dataset, computed by policyengine-us.

``Microsimulation.calculate`` returns microdf MicroSeries carrying the entity's weights
(projected from ``household_weight``), so ``.sum()`` is the weighted total and
``.count()`` the weighted number of records: the numbers a user of the H5 would get.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

# quantity, PolicyEngine variable, unit. Counts use the entity's id variable.
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
COLUMNS = [
    "quantity",
    "policyengine_variable",
    "entity",
    "weighted_total",
    "unit",
    "nonzero_records",
]


def national_aggregates(simulation: Any, year: int) -> pd.DataFrame:
    """One row per quantity: weighted total, unit and the number of nonzero records.

    Money is the weighted sum over the variable's entity (monthly programs such as
    SNAP and SSI summed over the year); counts are weighted record counts, so
    ``population`` equals the household weights summed over persons.
    """
    rows = []
    variables = simulation.tax_benefit_system.variables
    for quantity, variable, unit in AGGREGATES:
        values = simulation.calculate(variable, year)
        raw = pd.Series(values).to_numpy(dtype=float)  # unweighted, without microdf's warning
        if unit == "USD":
            total = float(values.sum())
            nonzero = int(np.count_nonzero(raw))
        else:
            total = float(values.count())
            nonzero = int(len(raw))
        rows.append(
            {
                "quantity": quantity,
                "policyengine_variable": variable,
                "entity": variables[variable].entity.key,
                "weighted_total": total,
                "unit": unit,
                "nonzero_records": nonzero,
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def format_value(total: float, unit: str) -> str:
    """$bn for money, millions for counts."""
    if unit == "USD":
        return f"${total / 1e9:,.1f}bn"
    return f"{total / 1e6:,.2f}m {unit}"


def format_aggregates_markdown(table: pd.DataFrame) -> str:
    """A Markdown table (no tabulate dependency) in $bn for money and millions for counts."""
    header = ["quantity", "variable", "entity", "value", "nonzero records"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.itertuples(index=False):
        cells = [
            row.quantity,
            f"`{row.policyengine_variable}`",
            row.entity,
            format_value(row.weighted_total, row.unit),
            f"{row.nonzero_records:,}",
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)
