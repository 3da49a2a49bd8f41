"""``spm_unit_tenure_type``: owner with mortgage, owner without, renter (stage 6).

Why: policyengine-us 2.68 prices each SPM threshold by tenure and defaults every unit to
RENTER. The BLS 2023 thresholds for two adults and two children are $37,482 for renters,
$36,915 for owners with a mortgage and $30,870 for owners without one
(bls.gov/pir/spm/spm_thresholds_2023.htm), so a file without tenure measures every owner
without a mortgage (most of the aged) against a threshold about 21% too high.

Ownership is observed. Taxcalc's CPS carries ``e18500``, which taxdata sets to an imputed
home value x 0.0075 for the tax units of households that own their home (CPS
``h_tenure == 1``, dependent filers excepted; taxdata ``cps/taxunit.py`` ``home_owner``,
``cps/impute.py`` ``realest``) and to zero for everyone else; the source keeps it as the
tax-unit flag ``home_owner_reported`` (on the whole file 63.9% of households, against a
2012-14 CPS homeownership rate of about 65%). The Census SPM unit takes its household's
tenure, so every SPM unit of a household where any tax unit reports ownership is an owner;
units of other households rent (subsidized housing included).

Mortgage status is not in the file (taxdata's ``e19200`` is a modelled mortgage interest
that 97% of owners receive, not an answer), so it is drawn per owner household from the
householder's age at the Census ACS shares of owner-occupied homes owned free and clear:
``data/mortgage_status_by_age.csv`` (sources in ``data/SOURCES.json``), one uniform draw per
household from ``default_rng([seed, crc32("spm_unit_tenure_type")])``.

A household whose tax units carry no ownership column at all (the top-wealth spine, other
scaffolds) is left to PolicyEngine's default and counted in the summary.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.entities.demographics import carried_csv, stream

OWNER_FLAG = "home_owner_reported"
TENURE = "spm_unit_tenure_type"
HOUSEHOLD_TENURE = "tenure_type"
# policyengine-us's household enum names for the SPM unit's three tenures.
HOUSEHOLD_NAMES = {
    "OWNER_WITH_MORTGAGE": "OWNED_WITH_MORTGAGE",
    "OWNER_WITHOUT_MORTGAGE": "OWNED_OUTRIGHT",
    "RENTER": "RENTED",
}
MORTGAGE_FILE = "mortgage_status_by_age.csv"
MORTGAGE_COLUMNS = ("min_age", "max_age", "share_without_mortgage")
WITH_MORTGAGE = "OWNER_WITH_MORTGAGE"
WITHOUT_MORTGAGE = "OWNER_WITHOUT_MORTGAGE"
RENTER = "RENTER"


def shares_without_mortgage(ages: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """P(owned free and clear | owner, householder age) and the SOURCES.json entry."""
    table, entry = carried_csv(MORTGAGE_FILE, MORTGAGE_COLUMNS)
    shares = np.full(len(ages), np.nan)
    for row in table.itertuples():
        inside = (ages >= row.min_age) & (ages <= row.max_age)
        shares[inside] = float(row.share_without_mortgage)
    if np.isnan(shares).any():
        missing = sorted(set(ages[np.isnan(shares)].astype(int).tolist()))[:5]
        raise ValueError(f"{MORTGAGE_FILE}: no row for householder ages {missing}")
    return shares, entry


def ownership_known(tax_unit: pd.DataFrame, household: pd.DataFrame) -> np.ndarray:
    """Per household row: whether any of its tax units reports ownership either way (the
    others, such as the top-wealth spine, take PolicyEngine's default tenure)."""
    if OWNER_FLAG not in tax_unit.columns:
        return np.zeros(len(household), dtype=bool)
    flags = tax_unit[OWNER_FLAG]
    known = flags.notna().groupby(tax_unit["household_id"].to_numpy()).any()
    return known.reindex(household["household_id"].to_numpy(), fill_value=False).to_numpy()


def add_tenure(
    person: pd.DataFrame,
    tax_unit: pd.DataFrame,
    spm_unit: pd.DataFrame,
    household: pd.DataFrame,
    seed: int,
) -> dict[str, Any]:
    """Add ``spm_unit_tenure_type`` to ``spm_unit`` and ``tenure_type`` to ``household`` in
    place; a summary back.

    ``person`` needs ``household_id``, ``tax_unit_id``, ``spm_unit_id``, ``age`` and
    ``is_household_head``; ``tax_unit`` may carry ``home_owner_reported``.
    """
    if OWNER_FLAG not in tax_unit.columns:
        return {"tenure": "not set: the scaffold's tax units carry no home_owner_reported"}
    flags = tax_unit.set_index("tax_unit_id")[OWNER_FLAG]
    owns = flags.fillna(False).astype(bool).groupby(tax_unit["household_id"].to_numpy()).any()
    households = household["household_id"].to_numpy()
    known = ownership_known(tax_unit, household)
    owner = owns.reindex(households, fill_value=False).to_numpy() & known

    heads = person.loc[person["is_household_head"].astype(bool), ["household_id", "age"]]
    head_age = heads.set_index("household_id")["age"].reindex(households).to_numpy(float)
    share, entry = shares_without_mortgage(np.nan_to_num(head_age, nan=0.0))
    free_and_clear = stream(seed, TENURE).random(len(households)) < share
    tenure = np.where(owner, np.where(free_and_clear, WITHOUT_MORTGAGE, WITH_MORTGAGE), RENTER)
    by_household = pd.Series(tenure, index=households)
    # households without ownership data take PolicyEngine's own default (renter), as
    # their SPM units do below, and are counted in the summary
    household[HOUSEHOLD_TENURE] = (
        pd.Series(np.where(known, tenure, RENTER)).map(HOUSEHOLD_NAMES).to_numpy()
    )

    spm_household = person.groupby("spm_unit_id")["household_id"].first()
    spm_household = spm_household.reindex(spm_unit["spm_unit_id"]).to_numpy()
    spm_unit[TENURE] = by_household.reindex(spm_household).to_numpy()
    unknown = ~pd.Series(known, index=households).reindex(spm_household).to_numpy(bool)
    spm_unit.loc[unknown, TENURE] = RENTER  # PolicyEngine's own default, counted below
    weight = household["household_weight"].to_numpy(float)
    total = float(weight[known].sum()) or 1.0
    return {
        "source": entry["file"],
        "households_without_ownership_data": int((~known).sum()),
        "weighted_household_shares": {
            name: round(float(weight[known & (tenure == name)].sum()) / total, 4)
            for name in (WITH_MORTGAGE, WITHOUT_MORTGAGE, RENTER)
        },
    }
