"""The tax-record donor contract shared by the IRS SOI PUF loader and the synthetic donor.

A tax-record donor is an ObservationFrame whose ``tax_unit`` table has one row per
return: id, weight, MARS filing status, head/spouse ages, dependents, AGI (for
banding and evidence) and the amounts below, each named as the policyengine-us person
input it becomes on the tax unit's head. Donor integration (stage 4) reads only this
contract, so a real PUF and the embedded synthetic donor are interchangeable.
"""

from __future__ import annotations

import pandas as pd

from microplex_assets.constants import AGI  # the donor's AGI column (part of the contract)
from microplex_assets.sources.frame import ObservationFrame, SourceFormatError

TAX_UNIT_TABLE = "tax_unit"
ID = "tax_unit_id"
WEIGHT = "tax_unit_weight"
FILING_STATUS = (
    "filing_status"  # MARS: 1 single, 2 joint, 3 separate, 4 head of household, 5 widow(er)
)
FILING_STATUS_CODES: tuple[int, ...] = (1, 2, 3, 4, 5)
DEMOGRAPHICS: tuple[str, ...] = ("age_head", "age_spouse", "count_dependents")

# Amounts a tax-record donor carries, as policyengine-us person inputs (on the head).
TAX_RECORD_AMOUNTS: tuple[str, ...] = (
    "employment_income_before_lsr",
    "self_employment_income_before_lsr",
    "taxable_interest_income",
    "tax_exempt_interest_income",
    "qualified_dividend_income",
    "non_qualified_dividend_income",
    "long_term_capital_gains_before_response",
    "short_term_capital_gains",
    # Capital gain distributions reported without Schedule D (SOI's own column and
    # targets); PolicyEngine taxes them as long-term gains, but they have no holding period.
    "non_sch_d_capital_gains",
    "partnership_income",
    "s_corp_income",
    "rental_income",
    "estate_income",  # estate and trust net income (Schedule E part III)
    "taxable_private_pension_income",
    "taxable_ira_distributions",
    "unemployment_compensation",
    "charitable_cash_donations",
    "charitable_non_cash_donations",
    "real_estate_taxes",
    "home_mortgage_interest",
    "other_medical_expenses",
)
# Amounts that may be negative (losses); every other amount is >= 0.
SIGNED_AMOUNTS: frozenset[str] = frozenset(
    {
        "self_employment_income_before_lsr",
        "long_term_capital_gains_before_response",
        "short_term_capital_gains",
        "partnership_income",
        "s_corp_income",
        "rental_income",
        "estate_income",
    }
)
REQUIRED_COLUMNS: tuple[str, ...] = (ID, WEIGHT, FILING_STATUS, *DEMOGRAPHICS, AGI,
                                     *TAX_RECORD_AMOUNTS)  # fmt: skip


def validate_tax_records(frame: ObservationFrame) -> None:
    """Raise SourceFormatError naming the source and column where the contract is broken."""
    if TAX_UNIT_TABLE not in frame.tables:
        raise SourceFormatError(f"{frame.source}: tax-record donor has no '{TAX_UNIT_TABLE}' table")
    table = frame.tables[TAX_UNIT_TABLE]
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise SourceFormatError(f"{frame.source}: tax-record donor lacks columns {missing}")
    for column in REQUIRED_COLUMNS:
        if not pd.api.types.is_numeric_dtype(table[column]):
            raise SourceFormatError(f"{frame.source}: column '{column}' is not numeric")
        if table[column].isna().any():
            raise SourceFormatError(f"{frame.source}: column '{column}' has missing values")
    if (table[WEIGHT] <= 0).any():
        raise SourceFormatError(f"{frame.source}: '{WEIGHT}' must be positive")
    bad_status = ~table[FILING_STATUS].isin(FILING_STATUS_CODES)
    if bad_status.any():
        codes = sorted(table.loc[bad_status, FILING_STATUS].unique())
        raise SourceFormatError(
            f"{frame.source}: '{FILING_STATUS}' holds {codes}"
            f"; expected MARS codes {list(FILING_STATUS_CODES)}"
        )
    for column in TAX_RECORD_AMOUNTS:
        if column not in SIGNED_AMOUNTS and (table[column] < 0).any():
            raise SourceFormatError(f"{frame.source}: '{column}' must be non-negative")
    frame.validate()
