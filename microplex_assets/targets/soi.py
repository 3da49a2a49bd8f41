"""IRS SOI national tables (soi_targets.csv) as filer-only tax-unit targets.

Each SOI column is mapped to the PolicyEngine variable that computes the same line of
the return. The rules, all visible in the target's filters:

- every SOI fact is about filed returns: scope ``filer``, entity ``tax_unit`` (person
  variables are summed over the tax unit's members);
- the AGI band is ``TargetFilter("adjusted_gross_income", low, high)``, the filing status
  ``TargetFilter("filing_status", equals=...)`` with PE enum names;
- "taxable returns" are returns with positive *total income tax* (SOI's definition: tax
  after non-refundable credits plus other taxes such as the NIIT, before refundable
  credits), which is PE's ``income_tax_before_refundable_credits > 0`` (``income_tax`` is
  after refundable credits and would drop taxable EITC/CTC filers);
- a count row for X counts returns with X: ``TargetFilter(X, nonzero=True)``; the SOI
  ``count`` variable counts returns (``tax_unit_is_filer``) in the band;
- SOI splits signed amounts into income (X > 0) and losses (X < 0), both reported as
  positive numbers. A loss row with value L becomes ``value = -L x factor`` with
  ``TargetFilter(X, high=0)``: exactly ``sum(X | X < 0)``; ``source`` keeps the
  reported value and ``sign: -1``.

The ``Full population`` column only marks the headline all-returns row of each column;
it changes nothing in the semantics (those rows are the unbounded-band, all-status,
all-returns facts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from microplex_assets.targets.aggregate_uprating import (
    CBO_AGI,
    CBO_INCOME_TAX,
    CPI_U,
    POPULATION_INDEX,
    AggregateIndex,
    Uprater,
    total_index,
    variable_index,
)
from microplex_assets.targets.common import Skipped, agi_band_filters, band_label
from microplex_assets.targets.filing_status import FILING_STATUS, STATUS_LABEL
from microplex_assets.targets.model import Target, TargetFilter

PROVIDER = "reference_tables"
AGENCY = "IRS Statistics of Income"
SOI_COLUMNS = (
    "Year", "SOI table", "XLSX column", "XLSX row", "Variable", "Filing status",
    "AGI lower bound", "AGI upper bound", "Count", "Taxable only", "Full population", "Value",
)  # fmt: skip

_NAMES = (
    "year", "table", "xlsx_column", "xlsx_row", "variable", "status",
    "low", "high", "is_count", "is_taxable", "full_population", "value",
)  # fmt: skip
_RENAME = dict(zip(SOI_COLUMNS, _NAMES, strict=True))

TAXABLE = TargetFilter("income_tax_before_refundable_credits", low=0.0, nonzero=True)
ITEMIZES = TargetFilter("tax_unit_itemizes", nonzero=True)
TAKES_STANDARD = TargetFilter("tax_unit_itemizes", low=0.0, high=1.0)  # False only

# Where one fact appears in several tables (AGI and return counts in 1.1 and 1.2, ...),
# the first table here is kept; the others are reported as skipped duplicates.
TABLE_PREFERENCE = ("Table 1.4", "Table 2.1", "Table 1.1", "Table 1.2", "Table 3.3", "Table 4.3")

_AGI = total_index(CBO_AGI, "CBO projection of total AGI")
_TAX = total_index(CBO_INCOME_TAX, "CBO projection of individual income tax receipts")
_PER_PERSON_CPI = AggregateIndex(CPI_U, True, "CPI-U x population (inflation-indexed)")


@dataclass(frozen=True)
class SoiVariable:
    """How one SOI column is computed in PolicyEngine.

    ``part``: "all" (the variable as is), "positive" (income side of a signed amount) or
    "negative" (loss side). ``index``: an explicit aggregate index, or the name of the
    variable whose PolicyEngine index to borrow ("" = ``pe`` itself).
    """

    pe: str
    family: str
    part: str = "all"
    index: AggregateIndex | str = ""
    filters: tuple[TargetFilter, ...] = ()
    note: str = ""
    count_skip: str = ""  # why count rows of this column cannot be expressed


_PSC_NOTE = (
    "SOI adds partnership and S-corporation net income (or loss) columns per return; PE "
    "nets the two in partnership_s_corp_income, so a return with income from one and a "
    "loss from the other differs"
)
_PSC_COUNT = (
    "SOI count is the sum of the partnership and S-corporation return counts (columns "
    "BP+BT / BR+BV), counting returns with both twice; no PE count equals it"
)
_PENSION = total_index(
    "calibration.gov.irs.soi.taxable_pension_income", "IRS SOI total taxable pensions"
)

SOI_VARIABLES: dict[str, SoiVariable] = {
    "adjusted_gross_income": SoiVariable("adjusted_gross_income", "agi", index=_AGI),
    "employment_income": SoiVariable(
        "irs_employment_income",
        "wages",
        index="employment_income",
        note="SOI salaries and wages = W-2 box 1 (after pre-tax deductions)",
    ),
    "business_net_profits": SoiVariable("self_employment_income", "self_employment", "positive"),
    "business_net_losses": SoiVariable("self_employment_income", "self_employment", "negative"),
    "partnership_and_s_corp_income": SoiVariable(
        "partnership_s_corp_income",
        "partnership_s_corp",
        "positive",
        "s_corp_income",
        note=_PSC_NOTE,
        count_skip=_PSC_COUNT,
    ),
    "partnership_and_s_corp_losses": SoiVariable(
        "partnership_s_corp_income",
        "partnership_s_corp",
        "negative",
        "s_corp_income",
        note=_PSC_NOTE,
        count_skip=_PSC_COUNT,
    ),
    "s_corporation_net_income": SoiVariable("s_corp_income", "partnership_s_corp", "positive"),
    "s_corporation_net_losses": SoiVariable("s_corp_income", "partnership_s_corp", "negative"),
    "capital_gains_gross": SoiVariable(
        "loss_limited_net_capital_gains",
        "capital_gains",
        "positive",
        "long_term_capital_gains",
        note="Form 1040 line 7 net capital gain",
    ),
    "capital_gains_losses": SoiVariable(
        "loss_limited_net_capital_gains",
        "capital_gains",
        "negative",
        "long_term_capital_gains",
        note="Form 1040 line 7 net capital loss (limited to $3,000)",
    ),
    "capital_gains_distributions": SoiVariable("non_sch_d_capital_gains", "capital_gains"),
    "taxable_interest_income": SoiVariable("taxable_interest_income", "interest"),
    "exempt_interest": SoiVariable("tax_exempt_interest_income", "interest"),
    "ordinary_dividends": SoiVariable(
        "ordinary_dividend_income", "dividends", index="qualified_dividend_income"
    ),
    "qualified_dividends": SoiVariable("qualified_dividend_income", "dividends"),
    "total_pension_income": SoiVariable("pension_income", "retirement_income", index=_PENSION),
    "taxable_pension_income": SoiVariable(
        "taxable_pension_income", "retirement_income", index=_PENSION
    ),
    "ira_distributions": SoiVariable("taxable_ira_distributions", "retirement_income"),
    "total_social_security": SoiVariable(
        "social_security",
        "social_security",
        index=total_index("calibration.gov.cbo.social_security", "CBO Social Security outlays"),
    ),
    "taxable_social_security": SoiVariable(
        "taxable_social_security",
        "social_security",
        index=total_index(
            "calibration.gov.cbo.income_by_source.taxable_social_security",
            "CBO projection of taxable Social Security",
        ),
    ),
    "unemployment_compensation": SoiVariable("unemployment_compensation", "unemployment"),
    "estate_income": SoiVariable("estate_income", "other", "positive"),
    "estate_losses": SoiVariable("estate_income", "other", "negative"),
    "rent_and_royalty_net_income": SoiVariable("rental_income", "other", "positive"),
    "rent_and_royalty_net_losses": SoiVariable("rental_income", "other", "negative"),
    "income_tax_before_credits": SoiVariable("income_tax_before_credits", "income_tax", index=_TAX),
    "tottax": SoiVariable(
        "income_tax_before_refundable_credits",
        "income_tax",
        index=_TAX,
        note="SOI total income tax: after non-refundable credits, plus NIIT and other taxes",
    ),
    "alternative_minimum_tax": SoiVariable("alternative_minimum_tax", "income_tax", index=_TAX),
    "taxable_income": SoiVariable("taxable_income", "income_tax", index=_AGI),
    "qualified_business_income_deduction": SoiVariable(
        "qualified_business_income_deduction", "deductions", index=_AGI
    ),
    "standard_deduction": SoiVariable(
        "standard_deduction",
        "deductions",
        index=_AGI,
        filters=(TAKES_STANDARD,),
        note="returns taking the standard deduction (PE computes it for itemizers too)",
    ),
    "itemized_deductions": SoiVariable(
        "itemized_taxable_income_deductions", "deductions", index=_AGI, filters=(ITEMIZES,)
    ),
    "charitable_contributions_deductions": SoiVariable(
        "charitable_deduction", "deductions", index=_AGI, filters=(ITEMIZES,)
    ),
    "interest_paid_deductions": SoiVariable(
        "interest_deduction", "deductions", index=_AGI, filters=(ITEMIZES,)
    ),
    "mortgage_interest_deductions": SoiVariable(
        "deductible_mortgage_interest", "deductions", index=_AGI, filters=(ITEMIZES,)
    ),
    "medical_expense_deductions_capped": SoiVariable(
        "medical_expense_deduction",
        "deductions",
        index=_AGI,
        filters=(ITEMIZES,),
        note="deduction after the AGI floor (the smaller SOI medical column)",
    ),
    "medical_expense_deductions_uncapped": SoiVariable(
        "itemized_medical_expenses",
        "deductions",
        index=_AGI,
        filters=(ITEMIZES,),
        note="medical expenses before the AGI floor",
    ),
    "state_and_local_tax_deductions": SoiVariable(
        "salt_deduction",
        "deductions",
        index=_AGI,
        filters=(ITEMIZES,),
        note="SALT deduction after the cap",
    ),
    "itemized_real_estate_tax_deductions": SoiVariable(
        "real_estate_taxes", "deductions", filters=(ITEMIZES,)
    ),
    "idpitgst": SoiVariable(
        "state_and_local_sales_or_income_tax",
        "deductions",
        index=_AGI,
        filters=(ITEMIZES,),
        note="SOI 'income or general sales tax' (before the SALT cap)",
    ),
    "education_tax_credits": SoiVariable(
        "education_tax_credits",
        "other",
        index=_PER_PERSON_CPI,
        note="non-refundable education credits (AOTC part and lifetime learning)",
    ),
    "refundable_american_opportunity_credit": SoiVariable(
        "refundable_american_opportunity_credit", "other", index=_PER_PERSON_CPI
    ),
}

_STATE_SPLIT = (
    "PE computes only the larger of state income and general sales tax "
    "(state_and_local_sales_or_income_tax), not which one a return deducted; the "
    "combined SOI column idpitgst is kept"
)
SOI_SKIPPED: dict[str, str] = {
    "income_tax_after_credits": (
        "no PE variable: SOI income tax after credits excludes the NIIT and other taxes "
        "that income_tax_before_refundable_credits includes; SOI total income tax (tottax) "
        "is kept instead"
    ),
    "itemized_taxes_paid_deductions": (
        "SOI taxes paid includes taxes PE does not model (foreign, personal property, "
        "other); the capped SALT deduction column is kept"
    ),
    "itemized_state_income_tax_deductions": _STATE_SPLIT,
    "itemized_general_sales_tax_deduction": _STATE_SPLIT,
    "other_income": "SOI other income (Schedule 1 total) has no single PE variable",
    "exemptions": "personal exemptions are zero from 2018 to 2025 (TCJA); only 2015 data",
    "count_of_exemptions": "personal exemptions are zero from 2018 to 2025 (TCJA); only 2015 data",
}


def select_fact_years(frame: pd.DataFrame, year: int) -> dict[str, int]:
    """Per SOI variable: the latest year <= the build year, else the nearest later one.

    ``frame`` has the renamed columns (``variable``, ``year``).
    """
    chosen: dict[str, int] = {}
    for variable, years in frame.groupby("variable")["year"]:
        available = sorted({int(y) for y in years})
        earlier = [y for y in available if y <= year]
        chosen[str(variable)] = earlier[-1] if earlier else available[0]
    return chosen


def _row_label(row: Any) -> str:
    return (
        f"{int(row.year)} {row.table} {row.variable} {row.status} "
        f"AGI [{row.low:g}, {row.high:g}) count={bool(row.is_count)} taxable={bool(row.is_taxable)}"
    )


def _key(row: Any) -> tuple[Any, ...]:
    return (
        row.variable,
        row.status,
        float(row.low),
        float(row.high),
        bool(row.is_count),
        bool(row.is_taxable),
    )


def _deduplicate(rows: list[Any], skipped: list[Skipped]) -> list[Any]:
    """One row per fact; later-preferred tables are reported as duplicates."""
    order = {table: i for i, table in enumerate(TABLE_PREFERENCE)}
    ranked = sorted(rows, key=lambda r: (order.get(r.table, len(order)), int(r.Index)))
    kept: dict[tuple[Any, ...], Any] = {}
    for row in ranked:
        key = _key(row)
        if key in kept:
            first = kept[key]
            gap = abs(float(row.value) - float(first.value)) / max(abs(float(first.value)), 1.0)
            skipped.append(
                Skipped(
                    PROVIDER,
                    f"IRS SOI {row.table}",
                    _row_label(row),
                    f"duplicate of {first.table} {first.xlsx_column}{first.xlsx_row} "
                    f"(kept; relative gap {gap:.2g})",
                )
            )
            continue
        kept[key] = row
    return sorted(kept.values(), key=lambda r: int(r.Index))


def _part_filters(spec: SoiVariable, count: bool) -> tuple[TargetFilter, ...]:
    if spec.part == "positive":
        return (TargetFilter(spec.pe, low=0.0, nonzero=True),)
    if spec.part == "negative":
        return (TargetFilter(spec.pe, high=0.0),)
    return (TargetFilter(spec.pe, nonzero=True),) if count else ()


def _skip_reason(row: Any, system: Any) -> str:
    """Why a row cannot become a target ("" when it can)."""
    variable = str(row.variable)
    if variable in SOI_SKIPPED:
        return SOI_SKIPPED[variable]
    if row.status not in FILING_STATUS:
        return f"unknown filing status {row.status!r}"
    if variable == "count":
        return ""
    spec = SOI_VARIABLES.get(variable)
    if spec is None:
        return "no PE mapping defined"
    if spec.pe not in system.variables:
        return f"PE lacks variable {spec.pe}"
    return spec.count_skip if bool(row.is_count) else ""


def soi_targets(
    frame: pd.DataFrame,
    entry: dict[str, Any],
    year: int,
    system: Any,
    uprater: Uprater,
    skipped: list[Skipped],
) -> list[Target]:
    """Targets from the SOI table rows of each variable's chosen fact year."""
    frame = frame.rename(columns=_RENAME)
    fact_years = select_fact_years(frame, year)
    current = frame[frame["year"].astype(int) == frame["variable"].map(fact_years)]
    rows: list[Any] = []
    for row in current.itertuples():
        reason = _skip_reason(row, system)
        if reason:
            skipped.append(Skipped(PROVIDER, f"IRS SOI {row.table}", _row_label(row), reason))
        else:
            rows.append(row)
    return [_target(row, entry, system, uprater) for row in _deduplicate(rows, skipped)]


def _target(row: Any, entry: dict[str, Any], system: Any, uprater: Uprater) -> Target:
    variable = str(row.variable)
    count = bool(row.is_count) or variable == "count"
    low, high = float(row.low), float(row.high)
    filters = list(agi_band_filters(low, high))
    if FILING_STATUS[row.status] is not None:
        filters.append(TargetFilter("filing_status", equals=FILING_STATUS[row.status]))
    if bool(row.is_taxable):
        filters.append(TAXABLE)
    source: dict[str, Any] = {
        "provider": PROVIDER,
        "agency": AGENCY,
        "table": f"Publication 1304 {row.table}",
        "year": int(row.year),
        "file": entry["file"],
        "cell": f"column {row.xlsx_column} row {row.xlsx_row}",
        "soi_variable": variable,
        "reported_value": float(row.value),
    }
    if variable == "count":
        pe, family, group_name, sign = "tax_unit_is_filer", "returns", "returns", 1.0
        index = POPULATION_INDEX
    else:
        spec = SOI_VARIABLES[variable]
        pe, family, group_name = spec.pe, spec.family, variable
        filters.extend(_part_filters(spec, count))
        filters.extend(spec.filters)
        sign = -1.0 if spec.part == "negative" and not count else 1.0
        if count:
            index = POPULATION_INDEX
        elif isinstance(spec.index, AggregateIndex):
            index = spec.index
        else:
            index = variable_index(system, spec.index or spec.pe)
        if spec.note:
            source["note"] = spec.note
        if sign < 0:
            source["sign"] = -1
            source["sign_note"] = (
                "SOI reports losses as positive amounts; value = -reported x factor "
                f"= sum of {pe} over tax units with {pe} < 0"
            )
    source.update(uprater.record(index, int(row.year)))
    value = sign * float(row.value) * source["uprating_factor"]
    aggregation = "count" if count else "sum"
    name = f"irs_soi/{group_name}/{aggregation}/{band_label(low, high)}/{STATUS_LABEL[row.status]}"
    if bool(row.is_taxable):
        name += "/taxable"
    assert math.isfinite(value)
    return Target(
        name=name,
        value=value,
        period=uprater.year,
        variable=pe,
        aggregation=aggregation,
        entity="tax_unit",
        scope="filer",
        geography="US",
        family=family,
        group=f"irs_soi/{group_name}",
        source=source,
        filters=tuple(filters),
    )
