"""``pre_subsidy_rent``: what renter households pay, from their district's ACS median (stage 6).

Why: taxcalc's CPS file has no rent, so every renter paid $0 and policyengine-us 2.68 gave
SNAP no shelter deduction (``housing_cost`` adds ``rent``), HUD assistance no rent to
subsidize and state renter credits nothing to credit. On a 2,500-household sample of build
fb7f1d9f's H5 the mean SNAP benefit per recipient unit rose 14% with the rents below, HUD
assistance went from $0 to about $50bn a year and SPM poverty fell 1.4 points
(``benchmarks/rent_effect.py``; README, "Renters pay rent").

What: each renter household's householder (``is_household_head``) pays 12 x the median
gross rent of 2-bedroom units in the household's congressional district (ACS 5-year
2023: the table the district checks carry, ``targets/data/district_median_2br_rent_2023.csv``),
the national median where the district has no row. One amount per district: no
distribution of rent over renters is carried, so size, income and bedrooms are not used;
gross rent includes utilities; 2023 dollars.
Renters are the households ``entities/tenure.py`` sets to ``RENTED`` from the scaffold's
ownership flag; households without ownership data (the top-wealth spine) pay none.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.entities.tenure import HOUSEHOLD_NAMES, RENTER
from microplex_assets.targets.carried import CarriedTableError, carried_table
from microplex_assets.targets.district_sources import RENT_COLUMNS
from microplex_assets.targets.district_tables import RENT_FILE

RENT = "pre_subsidy_rent"
RENTED = HOUSEHOLD_NAMES[RENTER]  # policyengine-us's household tenure name


def monthly_rents() -> tuple[pd.Series, float, dict[str, Any]]:
    """Median 2-bedroom gross rent by ``congressional_district_geoid``, the national
    median, and the file's SOURCES.json entry."""
    table, entry = carried_table(RENT_FILE, RENT_COLUMNS)
    national = table["national_median_2br_rent"].unique()
    if len(national) != 1 or not np.isfinite(national[0]) or national[0] <= 0:
        raise CarriedTableError(
            f"{entry['file']}: national_median_2br_rent must be one positive value, got "
            f"{national.tolist()[:5]}"
        )
    rents = table["median_2br_rent"].astype(float)
    if not (rents > 0).all():
        bad = table.loc[~(rents > 0), ["state_fips", "district"]].head(3).to_dict("records")
        raise CarriedTableError(f"{entry['file']}: median_2br_rent not positive at {bad}")
    geoid = table["state_fips"].astype(int) * 100 + table["district"].astype(int)
    return pd.Series(rents.to_numpy(), index=geoid.to_numpy()), float(national[0]), entry


def add_rent(
    person: pd.DataFrame, household: pd.DataFrame, known_tenure: np.ndarray
) -> dict[str, Any]:
    """Add ``pre_subsidy_rent`` to ``person`` in place (renter householders only); a
    summary back. ``household`` needs ``tenure_type`` (from ``add_tenure``) and
    ``congressional_district_geoid``; ``known_tenure`` marks the household rows whose
    tenure came from data (``tenure.ownership_known``): the others pay no rent."""
    if RENT in person.columns and person[RENT].fillna(0).gt(0).any():
        return {"rent": "observed: the survey source's rent kept"}
    if "tenure_type" not in household.columns or not known_tenure.any():
        return {"rent": "not set: no household's tenure comes from data"}
    by_district, national, entry = monthly_rents()
    renter = household["tenure_type"].eq(RENTED).to_numpy() & known_tenure
    geoid = household["congressional_district_geoid"].astype("int64")
    monthly = geoid.map(by_district)
    unmatched = int(monthly[renter].isna().sum())
    annual = np.where(renter, 12.0 * monthly.fillna(national).to_numpy(float), 0.0)
    household_rent = pd.Series(annual, index=household["household_id"].to_numpy())
    heads = person["is_household_head"].astype(bool).to_numpy()
    person[RENT] = np.where(
        heads, household_rent.reindex(person["household_id"]).fillna(0.0).to_numpy(), 0.0
    )
    weight = household["household_weight"].to_numpy(float)
    paid = annual > 0
    return {
        "source": entry["file"],
        "renter_households": int(paid.sum()),
        "renters_at_national_median": unmatched,
        "weighted_mean_annual_rent": round(
            float((weight * annual)[paid].sum() / max(weight[paid].sum(), 1e-9)), 0
        ),
    }
