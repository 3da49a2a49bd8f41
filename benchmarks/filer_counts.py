"""Low-AGI tax units: how many exist, how many PolicyEngine counts as filers, and why.

policyengine-us 2.68 files a tax unit when it must (``tax_unit_is_required_to_file``),
when it is eligible for a refundable credit, or when ``would_file_taxes_voluntarily``
(default False; the build sets it for units with wages or taxable pensions,
``entities/filing.py``). SOI's return counts also hold people who file only to get
withheld tax back. On a random sample of an H5's households, weighted by the file's
weights scaled to the whole file, this prints per AGI band the tax units, the filers, the
filers with the voluntary input cleared (a second simulation of the sample), the required
filers, and the units with wages or taxable pensions with their filers, beside SOI's
all-returns and taxable-pension counts from the build's target ledger when given.

    .venv/bin/python benchmarks/filer_counts.py --h5 <policyengine_us_2024.h5> \\
        --households 3000 [--ledger <work folder>/target_ledger.csv]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from microplex_assets.entities.h5_combine import restrict_to_sample  # noqa: E402
from microplex_resources.policyengine_runtime import policyengine_system  # noqa: E402

YEAR = 2024
BANDS = {"agi_1_5k": (1, 5_000), "agi_5k_10k": (5_000, 10_000),
         "agi_10k_15k": (10_000, 15_000), "agi_15k_20k": (15_000, 20_000)}  # fmt: skip


def soi_counts(ledger: Path) -> pd.DataFrame:
    """SOI's all-returns and taxable-pension return counts per band, from a target ledger."""
    table = pd.read_csv(ledger).set_index("name")["value"]
    return (
        pd.DataFrame(
            {
                "SOI returns m": [table[f"irs_soi/returns/count/{b}/all_statuses"] for b in BANDS],
                "SOI pension returns m": [
                    table[f"irs_soi/taxable_pension_income/count/{b}/all_statuses"] for b in BANDS
                ],
            },
            index=list(BANDS),
        )
        / 1e6
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--h5", type=Path, required=True)
    parser.add_argument("--households", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ledger", type=Path)
    args = parser.parse_args()
    system = policyengine_system()
    import h5py
    from policyengine_us import Microsimulation

    with h5py.File(args.h5) as h5:
        file_households = len(h5["household_id"][str(YEAR)])
    subset = Path(f"/tmp/filer_counts_{args.seed}.h5")
    restrict_to_sample(args.h5, subset, args.households, YEAR,
                       lambda name: system.variables[name].entity.key, args.seed)  # fmt: skip
    simulation = Microsimulation(dataset=str(subset))

    def unit(variable: str) -> np.ndarray:
        return np.asarray(simulation.calculate(variable, YEAR, map_to="tax_unit"))

    without = Microsimulation(dataset=str(subset))
    voluntary = np.asarray(without.calculate("would_file_taxes_voluntarily", YEAR))
    without.set_input("would_file_taxes_voluntarily", YEAR, np.zeros_like(voluntary))
    filer_without = np.asarray(without.calculate("tax_unit_is_filer", YEAR)).astype(bool)
    del without
    weight = unit("tax_unit_weight") * file_households / args.households
    agi, filer = unit("adjusted_gross_income"), unit("tax_unit_is_filer").astype(bool)
    required = unit("tax_unit_is_required_to_file").astype(bool)
    pension, wages = unit("taxable_pension_income") > 0, unit("employment_income") > 0
    rows = {}
    for band, (low, high) in BANDS.items():
        inside = (agi >= low) & (agi < high)

        def m(mask: np.ndarray, inside: np.ndarray = inside) -> float:
            return float(weight[inside & mask].sum() / 1e6)

        rows[band] = {
            "units m": m(np.ones_like(inside)),
            "filers m": m(filer),
            "filers without voluntary m": m(filer_without),
            "required m": m(required),
            "with wages m": m(wages),
            "of them filers m": m(wages & filer),
            "with pension m": m(pension),
            "of them filers m ": m(pension & filer),
            "wages or pension, not filing m": m((wages | pension) & ~filer),
        }
    table = pd.DataFrame(rows).T
    if args.ledger:
        table = table.join(soi_counts(args.ledger))
    print(f"{args.households} households of {args.h5} (seed {args.seed}), scaled to the file:")
    print(table.to_markdown(floatfmt=".2f"))
    subset.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
