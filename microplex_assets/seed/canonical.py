"""Canonical household features every later stage conditions on (stage 4)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from microplex_assets.sources.frame import ObservationFrame

# Person income columns summed into household market-plus-transfer income for bracketing.
INCOME_COLUMNS: tuple[str, ...] = (
    "employment_income_before_lsr",
    "self_employment_income_before_lsr",
    "farm_income",
    "taxable_interest_income",
    "tax_exempt_interest_income",
    "qualified_dividend_income",
    "non_qualified_dividend_income",
    "taxable_private_pension_income",
    "tax_exempt_private_pension_income",
    "taxable_ira_distributions",
    "alimony_income",
    "unemployment_compensation",
    "long_term_capital_gains_before_response",
    "non_sch_d_capital_gains",
    "social_security_retirement",
    "social_security_disability",
)
INCOME_BRACKETS: tuple[float, ...] = (
    -np.inf, 0, 25_000, 50_000, 75_000, 100_000, 200_000, 500_000, 1_000_000, np.inf
)  # fmt: skip
INCOME_BRACKET_LABELS: tuple[str, ...] = (
    "<0", "0-25k", "25-50k", "50-75k", "75-100k", "100-200k", "200-500k", "500k-1m", "1m+"
)  # fmt: skip
AGE_GROUPS: tuple[int, ...] = (0, 25, 35, 45, 55, 65, 200)
AGE_GROUP_LABELS: tuple[str, ...] = ("<25", "25-34", "35-44", "45-54", "55-64", "65+")
# Reported-benefit columns on the tax-unit table that flag program recipients.
RECIPIENT_FLAGS: dict[str, str] = {
    "receives_ssi": "ssi_reported",
    "receives_snap": "snap_reported",
    "receives_tanf": "tanf_reported",
    "receives_housing": "housing_reported",
}


def canonical_households(frame: ObservationFrame) -> pd.DataFrame:
    """Household table with state, head age group, income, income bracket and recipient flags."""
    household = frame.tables["household"].copy()
    person = frame.tables["person"]
    income_cols = [c for c in INCOME_COLUMNS if c in person.columns]
    if not income_cols:
        raise ValueError(
            f"{frame.source}: person table has none of the income columns {INCOME_COLUMNS}"
        )
    income = person[income_cols].sum(axis=1).groupby(person["household_id"]).sum()
    household["household_income"] = household["household_id"].map(income).fillna(0.0)
    household["income_bracket"] = pd.cut(
        household["household_income"],
        bins=list(INCOME_BRACKETS),
        labels=list(INCOME_BRACKET_LABELS),
        right=False,
    ).astype(str)

    heads = person[person["role"] == "head"].sort_values(["household_id", "tax_unit_id"])
    head_age = heads.groupby("household_id")["age"].first()
    household["head_age"] = household["household_id"].map(head_age)
    household["age_group"] = pd.cut(
        household["head_age"], bins=list(AGE_GROUPS), labels=list(AGE_GROUP_LABELS), right=False
    ).astype(str)

    tax_unit = frame.tables["tax_unit"]
    for flag, column in RECIPIENT_FLAGS.items():
        if column in tax_unit.columns:
            receives = tax_unit.loc[tax_unit[column] > 0, "household_id"].unique()
            household[flag] = household["household_id"].isin(receives)
        else:
            household[flag] = False
    household.attrs["income_columns"] = income_cols
    return household
