"""Program receipt and take-up inputs of the entity bundle (stage 6).

policyengine-us 2.68 computes SNAP, SSI, TANF, Medicaid, WIC and housing assistance from
eligibility and a take-up flag that defaults to true (``takes_up_*_if_eligible``), so a
file without take-up inputs gives every eligible unit the benefit. The taxcalc CPS reports
who received what (tax-unit amounts, turned into receipt flags and counts by
``sources/cps_taxcalc_inputs.py``). Here:

- receipt on the SPM unit, from any of its tax units reporting an amount:
  ``receives_snap`` and ``receives_tanf`` (SPM unit, month: PolicyEngine reads them for
  categorical eligibility, and ``is_tanf_enrolled`` for TANF's enrolled-family tests) and
  ``receives_housing_assistance`` (SPM unit, year: ``is_eligible_for_housing_assistance`` is
  ``receives_housing_assistance | (renter & income eligible)``);
- ``receives_wic`` (person, month): in a tax unit reporting WIC, its members under 5; where
  there are none, the first woman among head and spouse (a pregnant or postpartum woman),
  else the head;
- take-up, the eCPS's "reported recipients first" rule (policyengine-us-data
  ``prioritize_reported_recipients`` / ``assign_takeup_with_reported_anchors``): a unit
  reporting receipt takes up; every other unit takes up with probability p, chosen so the
  share taking up reaches the program's take-up rate, p = max(0, r W - R) / (W - R), with
  W the units and R the reporting units. Unlike the eCPS the shares are weighted (design
  weights): the seed keeps rare-program recipients with certainty, so counting records
  would overstate R. Rates (``data/take_up_rates.csv``, the eCPS's, with their sources):
  SNAP 0.82 and TANF 0.22 on SPM units, SSI 0.50 and Medicaid by state on persons
  (reported: ``receives_ssi``, ``receives_medicaid``). Draws come from
  ``numpy.random.default_rng([seed, crc32(variable)])``;
- except where the scaffold's receipt already *is* administrative participation: taxcalc's
  CPS file carries C-TAM benefits (PSLmodels/C-TAM), which impute SNAP and TANF recipients
  until the FY2014 USDA and HHS caseloads are reached, so drawing more takers among its
  non-recipients counts take-up twice. For that scaffold (``RECEIPT_IS_TAKE_UP``) SNAP and
  TANF take-up is the receipt itself. Measured on 2,500 households of the 40k build
  (2026-12-02, design weights scaled to the calibrated population): SNAP 80.8m people in
  39.0m units and $106bn with draws, 48.8m / 23.9m / $71bn with receipt (USDA FY2024: 41.7m
  people, 22.3m households, $93.7bn); TANF 2.32m units and $16.2bn with draws, 1.27m and
  $10.7bn with receipt (HHS: about 1m families). SSI and Medicaid keep the draws: PolicyEngine
  already finds fewer SSI recipients than SSA's count with them (0.81x);
- housing assistance is rationed (waiting lists), not an entitlement:
  ``takes_up_housing_assistance_if_eligible`` is the reported receipt itself;
- ``is_self_employed`` (person): nonzero self-employment or farm income, the condition for
  PolicyEngine's self-employed health insurance deduction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.entities.demographics import carried_csv, stream
from microplex_assets.partitions import STATE_FIPS

TAKE_UP_FILE = "take_up_rates.csv"
# SPM-unit receipt flags from tax-unit reported amounts.
SPM_RECEIPT: dict[str, str] = {
    "receives_snap": "snap_reported",
    "receives_tanf": "tanf_reported",
    "receives_housing_assistance": "housing_reported",
}
WIC_REPORTED = "wic_reported"
WIC_CHILD_AGE = 5
# take-up variable -> (entity, program in the rates table, reported-receipt column)
TAKE_UP: dict[str, tuple[str, str, str]] = {
    "takes_up_snap_if_eligible": ("spm_unit", "snap", "receives_snap"),
    "takes_up_tanf_if_eligible": ("spm_unit", "tanf", "receives_tanf"),
    "takes_up_ssi_if_eligible": ("person", "ssi", "receives_ssi"),
    "takes_up_medicaid_if_eligible": ("person", "medicaid", "receives_medicaid"),
}
# Scaffold source -> programs whose reported receipt is adjusted to administrative
# caseloads, so take-up is receipt (no draws); see the module docstring.
RECEIPT_IS_TAKE_UP: dict[str, frozenset[str]] = {"cps_taxcalc": frozenset({"snap", "tanf"})}
HOUSING_TAKE_UP = ("takes_up_housing_assistance_if_eligible", "receives_housing_assistance")
SELF_EMPLOYMENT = ("self_employment_income_before_lsr", "farm_income")
STATE_CODES = {fips: code for code, fips in STATE_FIPS.items()}


def take_up_rates() -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """Rates by program and state ("US" for national rates), and the SOURCES.json entry."""
    table, entry = carried_csv(TAKE_UP_FILE, ("program", "state", "rate", "reference"))
    if not table["rate"].between(0, 1).all():
        raise ValueError(f"{TAKE_UP_FILE}: rates outside [0, 1]")
    rates: dict[str, dict[str, float]] = {}
    for row in table.itertuples():
        rates.setdefault(str(row.program), {})[str(row.state)] = float(row.rate)
    return rates, entry


def anchored_take_up(
    reported: np.ndarray,
    rate: np.ndarray,
    draws: np.ndarray,
    weights: np.ndarray,
    groups: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """Reporters take up; the others with the probability that brings each group's
    weighted take-up share to its rate (or no one else where reporters already exceed it).

    Returns the flags and the probability used per group.
    """
    reported = np.asarray(reported, dtype=bool)
    groups = np.zeros(len(reported), dtype=np.int64) if groups is None else np.asarray(groups)
    result = reported.copy()
    used: dict[str, float] = {}
    for group in np.unique(groups):
        members = groups == group
        group_rates = np.unique(rate[members])
        if len(group_rates) != 1:
            raise ValueError(f"take-up group {group!r} has several rates {group_rates}")
        total = float(weights[members].sum())
        anchored = float(weights[members & reported].sum())
        rest = total - anchored
        p = max(0.0, group_rates[0] * total - anchored) / rest if rest > 0 else 0.0
        others = members & ~reported
        result[others] = draws[others] < p
        used[str(group)] = round(float(p), 6)
    return result, used


def wic_recipients(person: pd.DataFrame, tax_unit: pd.DataFrame) -> np.ndarray:
    """``receives_wic``: members under 5 of reporting units, else a woman head/spouse, else
    the head."""
    if WIC_REPORTED not in tax_unit.columns:
        return np.zeros(len(person), dtype=bool)
    reporting = tax_unit.loc[tax_unit[WIC_REPORTED] > 0, "tax_unit_id"]
    in_unit = person["tax_unit_id"].isin(reporting).to_numpy()
    child = in_unit & (person["age"].to_numpy(dtype=float) < WIC_CHILD_AGE)
    units = person["tax_unit_id"].to_numpy()
    has_child = pd.Series(child).groupby(units).transform("any").to_numpy()
    role = person["role"].astype(str).to_numpy()
    adult = in_unit & ~has_child & np.isin(role, ["head", "spouse"])
    woman = adult & person["is_female"].to_numpy(dtype=bool)
    first_woman = woman & ~pd.Series(woman).groupby(units).cumsum().gt(1).to_numpy()
    has_woman = pd.Series(woman).groupby(units).transform("any").to_numpy()
    head = adult & (role == "head") & ~has_woman
    return child | first_woman | head


def weighted_share(weights: np.ndarray, flags: np.ndarray) -> float | None:
    total = float(weights.sum())
    return round(float(weights @ np.asarray(flags, dtype=float)) / total, 4) if total else None


def add_program_inputs(
    person: pd.DataFrame,
    tax_unit: pd.DataFrame,
    spm_unit: pd.DataFrame,
    household: pd.DataFrame,
    seed: int,
    scaffold: str = "",
) -> dict[str, Any]:
    """Add the receipt, take-up and self-employment columns in place; a summary back.

    ``scaffold`` names the scaffold source (``cps_taxcalc``, ``cps_asec``, ...): it decides
    which programs take up by receipt alone (``RECEIPT_IS_TAKE_UP``).
    """
    receipt_only = RECEIPT_IS_TAKE_UP.get(scaffold, frozenset())
    weight = household.set_index("household_id")["household_weight"]
    person_weight = person["household_id"].map(weight).to_numpy(dtype=float)
    spm_of_unit = person.groupby("tax_unit_id")["spm_unit_id"].first()
    spm_ids = spm_unit["spm_unit_id"]
    spm_household = person.groupby("spm_unit_id")["household_id"].first().reindex(spm_ids)
    spm_weight = spm_household.map(weight).to_numpy(dtype=float)
    for flag, column in SPM_RECEIPT.items():
        if column in tax_unit.columns:
            units = tax_unit.loc[tax_unit[column] > 0, "tax_unit_id"]
            spm_unit[flag] = spm_ids.isin(spm_of_unit.reindex(units)).to_numpy()
        else:
            spm_unit[flag] = False
    person["receives_wic"] = wic_recipients(person, tax_unit)
    present = [c for c in SELF_EMPLOYMENT if c in person.columns]
    person["is_self_employed"] = (
        (person[present].to_numpy(dtype=float) != 0).any(axis=1) if present else False
    )

    rates, entry = take_up_rates()
    state = person["household_id"].map(household.set_index("household_id")["state_fips"])
    person_state = state.map(STATE_CODES).fillna("US").to_numpy()
    summary: dict[str, Any] = {
        "rates_source": entry["file"],
        "probabilities": {},
        "take_up_is_receipt": sorted(receipt_only),
    }
    for variable, (entity, program, reported_column) in TAKE_UP.items():
        table = person if entity == "person" else spm_unit
        weights = person_weight if entity == "person" else spm_weight
        reported = (
            table[reported_column].fillna(False).to_numpy(dtype=bool)
            if reported_column in table.columns
            else np.zeros(len(table), dtype=bool)
        )
        program_rates = rates[program]
        if set(program_rates) == {"US"}:
            groups = np.full(len(table), "US")
        else:
            groups = person_state if entity == "person" else None
            if groups is None:
                raise ValueError(f"{program}: state rates need a person-level take-up")
            missing = sorted(set(groups) - set(program_rates))
            if missing:
                raise ValueError(f"{TAKE_UP_FILE}: no {program} rate for {missing}")
        rate = np.array([program_rates[g] for g in groups])
        draws = stream(seed, variable).random(len(table))
        if program in receipt_only:
            flags, used = reported.copy(), {"receipt": 0.0}
        else:
            flags, used = anchored_take_up(reported, rate, draws, weights, groups)
        table[variable] = flags
        summary["probabilities"][variable] = used
        summary[variable] = {
            "reported_share": weighted_share(weights, reported),
            "take_up_share": weighted_share(weights, flags),
        }
    take_up, reported_column = HOUSING_TAKE_UP
    spm_unit[take_up] = spm_unit[reported_column].to_numpy(dtype=bool)
    summary["receipt_shares"] = {
        flag: weighted_share(spm_weight, spm_unit[flag].to_numpy(bool)) for flag in SPM_RECEIPT
    }
    return summary
