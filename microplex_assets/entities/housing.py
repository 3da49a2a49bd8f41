"""Tenure (stage 6): ``tenure_type`` (household) and ``spm_unit_tenure_type``.

Who owns their home is the CPS respondent's answer: taxcalc's file has no tenure column,
but taxdata gave real estate taxes (``e18500``) exactly to the non-dependent units of
households that answered "owned or being bought" (``H_TENURE == 1``), so the loader keeps
``e18500 > 0`` as ``home_owner_reported`` (``sources/cps_taxcalc_inputs.py``). A household
owns when any of its tax units does; the others rent (the file cannot tell cash renters from
households living rent-free). Records without the flag (the top-wealth spine) own when a
member has real estate taxes or mortgage interest.

Why it matters: policyengine-us 2.68 defaults every SPM unit to ``RENTER``, so every
income-eligible homeowner was eligible for HUD housing assistance
(``is_eligible_for_housing_assistance``), and the SPM thresholds used the renter level.

Mortgage status is not in the file (taxdata's ``e19200`` is a modelled debt ratio, positive
for almost every owner), so owners are drawn with a mortgage at the published national share
(``data/housing_tenure.csv``, ACS 2019-2023: 0.612), weighted, by
``default_rng([seed, crc32("tenure_type")])``. The draw ignores age and income: no table of
mortgage status by age is carried.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.entities.demographics import carried_csv, stream
from microplex_assets.entities.takeup import anchored_take_up, weighted_share

TENURE_FILE = "housing_tenure.csv"
OWNER_FLAG = "home_owner_reported"
OWNER_AMOUNTS = ("real_estate_taxes", "home_mortgage_interest")
RENTED, OUTRIGHT, MORTGAGE = "RENTED", "OWNED_OUTRIGHT", "OWNED_WITH_MORTGAGE"
SPM_TENURE = {
    RENTED: "RENTER",
    OUTRIGHT: "OWNER_WITHOUT_MORTGAGE",
    MORTGAGE: "OWNER_WITH_MORTGAGE",
}


def mortgage_share() -> float:
    """The carried share of owner-occupied homes with a mortgage."""
    table, _ = carried_csv(TENURE_FILE, ("measure", "geography", "value"))
    row = table[(table["measure"] == "owners_with_mortgage_share") & (table["geography"] == "US")]
    return float(row["value"].iloc[0])


def household_owners(
    person: pd.DataFrame, tax_unit: pd.DataFrame, household_ids: np.ndarray
) -> tuple[np.ndarray, int]:
    """Owner flag per household (in ``household_ids`` order) and how many households had no
    CPS flag (owners there by real estate taxes or mortgage interest)."""
    if OWNER_FLAG in tax_unit.columns:
        flag = tax_unit[OWNER_FLAG]
        known = flag.notna().groupby(tax_unit["household_id"]).any()
        owns = flag.fillna(False).astype(bool).groupby(tax_unit["household_id"]).any()
    else:
        known = owns = pd.Series(dtype=bool)
    amounts = [c for c in OWNER_AMOUNTS if c in person.columns]
    paid = (person[amounts].fillna(0) > 0).any(axis=1) if amounts else person["age"] < 0
    by_amount = paid.groupby(person["household_id"]).any()
    ids = pd.Index(household_ids)
    has_flag = known.reindex(ids, fill_value=False).to_numpy(bool)
    owner = np.where(
        has_flag,
        owns.reindex(ids, fill_value=False).to_numpy(bool),
        by_amount.reindex(ids, fill_value=False).to_numpy(bool),
    )
    return owner, int((~has_flag).sum())


def add_tenure(
    person: pd.DataFrame,
    tax_unit: pd.DataFrame,
    household: pd.DataFrame,
    spm_unit: pd.DataFrame,
    seed: int,
) -> dict[str, Any]:
    """Add ``tenure_type`` to ``household`` and ``spm_unit_tenure_type`` to ``spm_unit`` in
    place (enum names); a summary back."""
    ids = household["household_id"].to_numpy()
    owner, without_flag = household_owners(person, tax_unit, ids)
    weight = household["household_weight"].to_numpy(dtype=float)
    share = mortgage_share()
    draws = stream(seed, "tenure_type").random(len(household))
    mortgaged, used = anchored_take_up(
        np.zeros(int(owner.sum()), dtype=bool),
        np.full(int(owner.sum()), share),
        draws[owner],
        weight[owner],
    )
    tenure = np.full(len(household), RENTED, dtype=object)
    tenure[np.flatnonzero(owner)] = np.where(mortgaged, MORTGAGE, OUTRIGHT)
    household["tenure_type"] = tenure
    by_household = pd.Series(tenure, index=ids)
    spm_household = person.groupby("spm_unit_id")["household_id"].first()
    spm_unit["spm_unit_tenure_type"] = (
        spm_unit["spm_unit_id"].map(spm_household).map(by_household).map(SPM_TENURE).to_numpy()
    )
    return {
        "owner_share": weighted_share(weight, owner),
        "with_mortgage_share_of_owners": weighted_share(weight[owner], mortgaged),
        "mortgage_probability": used.get("0"),
        "households_without_cps_flag": without_flag,
    }
