"""Where a build's target loss sits: per family and split, and the worst targets.

    python benchmarks/family_losses.py [--work-dir DIR] [--year 2024] [--split validation]
                                       [--top 10]

Reads the matrix a national build saved (``--work-dir``, default the national US work
folder, as ``calibration_split.py``) and the weights of its two H5s: the calibrated
candidate (``policyengine_us_<year>.h5``) and the eCPS method's (``ecps_method_<year>.h5``),
beside the design weights. Prints each family's loss (``loss.target_loss``, the gates' loss)
with the protected-families gate's allowance, the loss per split and family, and the
targets of ``--split`` that carry most of the candidate's loss there with their relative
errors under each weighting.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibration_split import DEFAULT_WORK_DIR, build_weights, load_problem  # noqa: E402

from microplex_assets.calibration.loss import (  # noqa: E402
    count_normalisation,
    relative_errors,
    target_loss,
)
from microplex_assets.calibration.scorecard import (  # noqa: E402
    PROTECTED_FAMILIES,
    protected_allowed_loss,
)


def h5_weights(work_dir: Path, name: str, household_ids: np.ndarray) -> np.ndarray:
    """The weights of the work folder's H5 ``name`` in the matrix's household order."""
    weights = build_weights(work_dir, household_ids, name)
    if weights is None:
        raise SystemExit(f"{work_dir / name}: missing, or not the households of this matrix")
    return weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--split", default="validation")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    problem, _ = load_problem(args.work_dir)
    ids = problem.household_ids
    weights = {
        "design": problem.design,
        "candidate": h5_weights(args.work_dir, f"policyengine_us_{args.year}.h5", ids),
        "ecps_method": h5_weights(args.work_dir, f"ecps_method_{args.year}.h5", ids),
    }
    targets = problem.targets.reset_index(drop=True)
    values, national = targets["value"].to_numpy(), targets["is_national"].to_numpy()
    estimates = {name: problem.matrix @ w for name, w in weights.items()}

    def losses(mask: np.ndarray) -> dict[str, float]:
        return {n: target_loss(e[mask], values[mask], national[mask]) for n, e in estimates.items()}

    families = []
    for family in sorted(targets["family"].unique()):
        mask = (targets["family"] == family).to_numpy()
        row = {"family": family, "targets": int(mask.sum()), **losses(mask)}
        if family in PROTECTED_FAMILIES:
            row["allowed"] = protected_allowed_loss(row["ecps_method"])
        families.append(row)
    print(pd.DataFrame(families).to_markdown(index=False, floatfmt=".4g"))
    print("\nall kept:", {n: round(v, 4) for n, v in losses(np.ones(len(values), bool)).items()})
    by_split = [
        {"split": split, "family": family, "targets": len(part)}
        | losses(targets.index.isin(part.index))
        for (split, family), part in targets.groupby(["split", "family"])
    ]
    print("\n" + pd.DataFrame(by_split).to_markdown(index=False, floatfmt=".4g"))
    inside = (targets["split"] == args.split).to_numpy()
    norm = count_normalisation(national)
    table = targets.loc[inside, ["name", "value"]].copy()
    for name, estimate in estimates.items():
        table[name] = relative_errors(estimate, values)[inside]
    table["candidate share of split loss"] = (
        norm[inside] * table["candidate"] ** 2 / np.sum(norm[inside] * table["candidate"] ** 2)
    )
    worst = table.sort_values("candidate share of split loss", ascending=False).head(args.top)
    print(f"\n{args.split}: the targets carrying most of the candidate's loss (relative errors)")
    print(worst.to_markdown(index=False, floatfmt=".3g"))


if __name__ == "__main__":
    main()
