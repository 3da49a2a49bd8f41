"""More policyengine-us inputs from taxcalc's CPS file: deductions, benefits, receipt, disability.

``cps_taxcalc.load_taxcalc_cps`` builds households, tax units and persons; this module adds
the columns of the file that PolicyEngine reads and the loader used to drop, each checked
against policyengine-us 2.68's variable metadata (entity, period, input or formula):

- tax-unit amounts the file carries as one number, put on one person (person inputs):
  ``vet_ben`` -> ``veterans_benefits``, ``e03150`` (deductible IRA contributions) ->
  ``traditional_ira_contributions_desired``, ``e20400`` (miscellaneous itemised deductions,
  the 2%-floor kind: mostly unreimbursed employee expenses) ->
  ``unreimbursed_business_employee_expenses``, all on the head;
- ``e03300`` (SEP/SIMPLE/Keogh contributions) -> ``self_employed_pension_contributions_desired``
  and ``e03270`` (self-employed health insurance deduction) -> ``health_insurance_premiums``,
  both on the unit's self-employed member (head, else spouse, with nonzero business or farm
  income). PolicyEngine caps both deductions at self-employment earnings
  (``self_employed_*_ald_person``); taxdata imputed these two columns to every CPS unit with
  PUF-fitted logit models (``taxdata/cps/impute.py``), so 43,378 of the 46,792 units with
  ``e03270`` have no self-employment income: their amounts are dropped and counted in
  provenance (``health_insurance_premiums`` of a non-self-employed person would become a
  medical expense, and replaces the modelled Medicare Part B premium);
- ``e03240`` -> ``domestic_production_ald`` (tax unit; PolicyEngine applies it before 2018);
- ``DSI`` -> ``claimed_as_dependent_on_another_return`` of the head (the unit is a dependent
  filer);
- receipt and coverage, on persons: the file's benefit columns are tax-unit sums over head,
  spouse and dependents (``taxdata/cps/taxunit.py``). Medicaid is valued at one amount per
  enrollee (7,204 in every row; Medicare 11,733), so ``round(mcaid_ben / 7,204)`` enrollees
  are recovered and placed on members under 19 first, then head, spouse and other
  dependents: ``receives_medicaid`` and ``has_medicaid_health_coverage_at_interview``. SSI
  recipients are ``round(ssi_ben / (12 x the individual federal benefit rate of the survey
  year))``, at least one, placed on members aged 65+ first, then head, spouse, dependents:
  ``receives_ssi``;
- disability: an SSI recipient under 65 who is not blind, and the head (18-61) of a unit whose
  Social Security goes to nobody aged 62+ (the loader's ``social_security_disability``; an
  SSDI worker), get ``is_disabled`` and ``meets_ssi_disability_criteria`` (SSI and SSDI use
  one definition of disability, 42 U.S.C. 1382c(a)(3) and 423(d)). Survivors under 62 with
  Social Security are counted as disabled too: the file does not split benefit types;
- ``e18400`` (state and local income tax) is kept as ``state_income_tax_reported``, a
  diagnostic: PolicyEngine computes state income tax and has no input for it;
- tenure: ``e18500 > 0`` is kept as the tax-unit flag ``home_owner_reported``. taxdata
  imputed real estate taxes as 0.75% of a modelled home value times ``home_owner``, which is
  1 for the non-dependent units of a household whose ASEC answer is "owned or being bought"
  (``H_TENURE == 1``; ``taxdata/cps/taxunit.py``, ``impute.py``), so the flag is that answer
  (stage 6 turns it into ``tenure_type`` and ``spm_unit_tenure_type``: ``entities/tenure.py``).

``pencon_p`` / ``pencon_s`` (DC pension contributions) and ``f2441`` are not used: the first
two are zero in every row of the shipped file, and ``f2441`` equals ``nu13`` in every row
(taxdata counts dependents under 13; PolicyEngine computes ``count_cdcc_eligible`` from ages).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.uprating import CPI_U

# Person inputs from tax-unit columns, on the head: variable -> column.
HEAD_INPUTS: dict[str, str] = {
    "veterans_benefits": "vet_ben",
    "traditional_ira_contributions_desired": "e03150",
    "unreimbursed_business_employee_expenses": "e20400",
}
# Person inputs on the unit's self-employed member (dropped where there is none).
SELF_EMPLOYED_INPUTS: dict[str, str] = {
    "self_employed_pension_contributions_desired": "e03300",
    "health_insurance_premiums": "e03270",
}
SELF_EMPLOYMENT_COLUMNS = {"head": ("e00900p", "e02100p"), "spouse": ("e00900s", "e02100s")}
TAX_UNIT_INPUTS: dict[str, str] = {"domestic_production_ald": "e03240"}
TAX_UNIT_DIAGNOSTICS: dict[str, str] = {"e18400": "state_income_tax_reported"}
HOME_OWNER = ("e18500", "home_owner_reported")  # real estate taxes > 0: ASEC owner
DEPENDENT_FILER = ("DSI", "claimed_as_dependent_on_another_return")
# Receipt flags (person inputs) and the reported counts behind them (tax-unit diagnostics).
MEDICAID = ("mcaid_ben", "medicaid_enrollees_reported")
MEDICARE = ("mcare_ben", "medicare_enrollees_reported")
SSI = ("ssi_ben", "ssi_recipients_reported")
MEDICAID_FLAGS = ("receives_medicaid", "has_medicaid_health_coverage_at_interview")
SSI_FLAG = "receives_ssi"
DISABILITY_FLAGS = ("is_disabled", "meets_ssi_disability_criteria")
# SSI federal benefit rate for an individual, $ a month (SSA, ssa.gov/oact/cola/SSI.html).
SSI_FEDERAL_BENEFIT_RATE: dict[int, float] = {2012: 698.0, 2013: 710.0, 2014: 721.0}
MEDICAID_CHILD_AGE = 19
AGED = 65
SSDI_AGES = (18, 62)

PERSON_INPUTS: tuple[str, ...] = (
    *HEAD_INPUTS,
    *SELF_EMPLOYED_INPUTS,
    DEPENDENT_FILER[1],
    *MEDICAID_FLAGS,
    SSI_FLAG,
    *DISABILITY_FLAGS,
)
TAX_UNIT_COLUMNS: tuple[str, ...] = (
    *TAX_UNIT_INPUTS,
    *TAX_UNIT_DIAGNOSTICS.values(),
    HOME_OWNER[1],
    MEDICAID[1],
    MEDICARE[1],
    SSI[1],
)
REQUIRED_COLUMNS: tuple[str, ...] = (
    *HEAD_INPUTS.values(),
    *SELF_EMPLOYED_INPUTS.values(),
    *(c for pair in SELF_EMPLOYMENT_COLUMNS.values() for c in pair),
    *TAX_UNIT_INPUTS.values(),
    *TAX_UNIT_DIAGNOSTICS,
    HOME_OWNER[0],
    DEPENDENT_FILER[0],
    MEDICAID[0],
    MEDICARE[0],
    SSI[0],
)
# Placement order within a tax unit: a lower key takes a reported count first.
PRIORITY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "medicaid": lambda age, line: np.where(age < MEDICAID_CHILD_AGE, 0, 1 + line),
    "ssi": lambda age, line: np.where(age >= AGED, -age, 1 + line),
}


def enrollee_counts(values: np.ndarray) -> tuple[np.ndarray, float]:
    """Enrollees per unit from an amount valued per enrollee: round(value / unit value),
    the unit value being the smallest positive amount (taxdata values each one equally)."""
    positive = values[values > 0]
    if not len(positive):
        return np.zeros(len(values), dtype=np.int64), 0.0
    each = float(positive.min())
    return np.round(values / each).astype(np.int64), each


def ssi_recipient_counts(amount: np.ndarray, source_year: np.ndarray) -> np.ndarray:
    """SSI recipients per unit: the amount over a year of the individual federal benefit
    rate of the survey year, rounded, and at least one where any SSI is reported."""
    monthly = np.array([SSI_FEDERAL_BENEFIT_RATE.get(int(y), np.nan) for y in source_year])
    if np.isnan(monthly[amount > 0]).any():
        years = sorted({int(y) for y in source_year[np.isnan(monthly)]})
        raise ValueError(f"no SSI federal benefit rate for survey years {years}")
    ratio = np.where(amount > 0, amount / np.where(np.isnan(monthly), 1.0, 12.0 * monthly), 0.0)
    return np.where(amount > 0, np.maximum(1, np.round(ratio)), 0).astype(np.int64)


def place_counts(
    person: pd.DataFrame, unit_index: np.ndarray, counts: np.ndarray, kind: str
) -> np.ndarray:
    """True for the first ``counts[unit]`` members of each unit in ``PRIORITY[kind]`` order
    (ties by line in the unit); a count above the unit's size flags everyone."""
    age = person["age"].to_numpy(dtype=float)
    line = person["line_in_tax_unit"].to_numpy(dtype=np.int64)
    key = PRIORITY[kind](age, line)
    order = np.lexsort((line, key, unit_index))
    rank = np.empty(len(person), dtype=np.int64)
    sorted_units = unit_index[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_units)) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    rank[order] = np.arange(len(order)) - first
    return rank < counts[unit_index]


def self_employed_line(cps: pd.DataFrame) -> np.ndarray:
    """Line (0 head, 1 spouse) of each unit's self-employed member, -1 where none."""
    head = sum(cps[c].to_numpy(float) for c in SELF_EMPLOYMENT_COLUMNS["head"]) != 0
    spouse = sum(cps[c].to_numpy(float) for c in SELF_EMPLOYMENT_COLUMNS["spouse"]) != 0
    spouse &= cps["MARS"].to_numpy() == 2
    return np.where(head, 0, np.where(spouse, 1, -1))


def add_cps_inputs(
    cps: pd.DataFrame,
    person: pd.DataFrame,
    tax_unit: pd.DataFrame,
    unit_index: np.ndarray,
    factor_array: Callable[..., np.ndarray],
) -> dict[str, Any]:
    """Add this module's columns to ``person`` and ``tax_unit`` in place; provenance back.

    ``unit_index`` is each person's row in ``cps``; ``factor_array(variable, columns,
    index=None)`` uprates with PolicyEngine's index for the variable (recorded by the
    loader), or CPI-U for the reported diagnostics.
    """
    line = person["line_in_tax_unit"].to_numpy(dtype=np.int64)
    weight = cps["_weight"].to_numpy(float)
    provenance: dict[str, Any] = {}
    for variable, column in HEAD_INPUTS.items():
        amount = cps[column].to_numpy(float) * factor_array(variable, [column])
        person[variable] = np.where(line == 0, amount[unit_index], 0.0)
    se_line = self_employed_line(cps)
    dropped: dict[str, dict[str, float]] = {}
    for variable, column in SELF_EMPLOYED_INPUTS.items():
        amount = cps[column].to_numpy(float) * factor_array(variable, [column])
        lost = (amount > 0) & (se_line < 0)
        dropped[variable] = {
            "units": int(lost.sum()),
            "weighted_amount_bn": round(float(amount[lost] @ weight[lost]) / 1e9, 3),
        }
        person[variable] = np.where(line == se_line[unit_index], amount[unit_index], 0.0)
    provenance["self_employed_inputs_dropped_without_self_employment"] = dropped
    for variable, column in TAX_UNIT_INPUTS.items():
        tax_unit[variable] = cps[column].to_numpy(float) * factor_array(variable, [column])
    for column, name in TAX_UNIT_DIAGNOSTICS.items():
        tax_unit[name] = cps[column].to_numpy(float) * factor_array(name, [column], CPI_U)
    tax_unit[HOME_OWNER[1]] = cps[HOME_OWNER[0]].to_numpy(float) > 0
    column, variable = DEPENDENT_FILER
    person[variable] = (line == 0) & (cps[column].to_numpy()[unit_index] > 0)

    medicaid, provenance["medicaid_value_per_enrollee"] = enrollee_counts(
        cps[MEDICAID[0]].to_numpy(float)
    )
    medicare, provenance["medicare_value_per_enrollee"] = enrollee_counts(
        cps[MEDICARE[0]].to_numpy(float)
    )
    ssi = ssi_recipient_counts(cps[SSI[0]].to_numpy(float), cps["FLPDYR"].to_numpy())
    for (_, name), counts in zip((MEDICAID, MEDICARE, SSI), (medicaid, medicare, ssi), strict=True):
        tax_unit[name] = counts
    on_medicaid = place_counts(person, unit_index, medicaid, "medicaid")
    for flag in MEDICAID_FLAGS:
        person[flag] = on_medicaid
    on_ssi = place_counts(person, unit_index, ssi, "ssi")
    person[SSI_FLAG] = on_ssi

    age = person["age"].to_numpy(dtype=float)
    retirement = person["social_security_retirement"].to_numpy(float) > 0
    unit_retired = np.bincount(unit_index, weights=retirement, minlength=len(cps)) > 0
    ssdi_head = (
        (line == 0)
        & (person["social_security_disability"].to_numpy(float) > 0)
        & ~unit_retired[unit_index]
        & (age >= SSDI_AGES[0])
        & (age < SSDI_AGES[1])
    )
    ssi_disabled = on_ssi & (age < AGED) & ~person["is_blind"].to_numpy(bool)
    for flag in DISABILITY_FLAGS:
        person[flag] = ssdi_head | ssi_disabled
    size = np.bincount(unit_index, minlength=len(cps))
    provenance.update(
        {
            "medicaid_enrollees": int(on_medicaid.sum()),
            "ssi_recipients": int(on_ssi.sum()),
            "counts_above_unit_size": {
                name: int((counts > size).sum())
                for (_, name), counts in zip(
                    (MEDICAID, MEDICARE, SSI), (medicaid, medicare, ssi), strict=True
                )
            },
            "disabled": {
                "ssi_recipients_under_65": int(ssi_disabled.sum()),
                "social_security_heads_18_61": int(ssdi_head.sum()),
            },
            "dependent_filers": int(person[variable].sum()),
            "home_owner_units": int(tax_unit[HOME_OWNER[1]].sum()),
        }
    )
    return provenance
