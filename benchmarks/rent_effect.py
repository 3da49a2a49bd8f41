"""What renters' rent (``entities/rent.py``) changes in PolicyEngine, on a sample of an H5.

Two simulations of the same random households of a published H5: with its rents set to
zero (what every build before the rent imputation wrote) and as written. Prints SNAP
recipients, total and mean per recipient unit, the mean SNAP shelter deduction, HUD
housing assistance, SPM poverty and household net income, each weighted by the file's
own weights (totals scale with the sample: compare ratios). The H5 must carry
``pre_subsidy_rent``; ``--impute`` adds it as the build does to a file written before.

    .venv/bin/python benchmarks/rent_effect.py --h5 <policyengine_us_2024.h5> --households 2500
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from microplex_assets.entities.h5_combine import restrict_to_sample  # noqa: E402
from microplex_assets.entities.rent import RENT, monthly_rents  # noqa: E402
from microplex_resources.policyengine_runtime import policyengine_system  # noqa: E402

YEAR = 2024


def imputed_rent(simulation) -> np.ndarray:
    """The build's rule on a simulation's persons (renter householders, district median)."""
    by_district, national, _ = monthly_rents()
    geoid = pd.Series(np.asarray(simulation.calculate("congressional_district_geoid", YEAR,
                                                      map_to="person")).astype(int))  # fmt: skip
    tenure = np.asarray(simulation.calculate("tenure_type", YEAR, map_to="person")).astype(str)
    head = np.asarray(simulation.calculate("is_household_head", YEAR)).astype(bool)
    monthly = geoid.map(by_district).fillna(national).to_numpy()
    return np.where(head & (tenure == "RENTED"), 12 * monthly, 0.0)


def measure(path: Path, rent: str) -> dict[str, float]:
    """One simulation: ``rent`` is "zero", "as written" or "imputed"."""
    from policyengine_us import Microsimulation

    started = time.time()
    simulation = Microsimulation(dataset=str(path))
    persons = len(simulation.calculate("person_id", YEAR))
    if rent == "zero":
        simulation.set_input(RENT, YEAR, np.zeros(persons))
    elif rent == "imputed":
        simulation.set_input(RENT, YEAR, imputed_rent(simulation))
    snap = simulation.calculate("snap", YEAR)  # MicroSeries, weighted by spm_unit_weight
    recipients = (snap > 0).sum()
    shelter = simulation.calculate("snap_excess_shelter_expense_deduction", YEAR)
    poor = simulation.calculate("spm_unit_is_in_spm_poverty", YEAR, map_to="person")
    return {
        "rent $bn": simulation.calculate(RENT, YEAR).sum() / 1e9,
        "SNAP recipient units m": recipients / 1e6,
        "SNAP $bn": snap.sum() / 1e9,
        "SNAP per recipient unit $": snap.sum() / recipients,
        "shelter deduction per recipient $": shelter[snap > 0].sum() / recipients,
        "housing assistance $bn": simulation.calculate("housing_assistance", YEAR).sum() / 1e9,
        "SPM poverty rate": poor.mean(),
        "household net income $bn": simulation.calculate("household_net_income", YEAR).sum() / 1e9,
        "seconds": time.time() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--h5", type=Path, required=True)
    parser.add_argument("--households", type=int, default=2_500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--impute", action="store_true", help="the H5 predates the rents")
    args = parser.parse_args()
    system = policyengine_system()
    subset = Path(f"/tmp/rent_effect_{args.seed}.h5")
    restrict_to_sample(args.h5, subset, args.households, YEAR,
                       lambda name: system.variables[name].entity.key, args.seed)  # fmt: skip
    rows = {
        "no rent": measure(subset, "zero"),
        "rent": measure(subset, "imputed" if args.impute else "as written"),
    }
    table = pd.DataFrame(rows)
    table["ratio"] = table["rent"] / table["no rent"]
    print(f"{args.households} households of {args.h5} (seed {args.seed}):")
    print(table.to_markdown(floatfmt=".4g"))
    subset.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
