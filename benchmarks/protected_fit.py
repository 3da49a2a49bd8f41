"""Protected-family fit against weight health on the matrix a national build saved.

    python benchmarks/protected_fit.py [--work-dir DIR] [--out PATH]

Fits the national solver (train targets fitted, validation choosing the epoch, test never
shown, spine fixed: ``calibration_split.fit_solver``'s path with fit weights) under a grid
of KL penalties and protected-family boosts (``fit_weights.family_fit_weights``), and the
eCPS method as the protected-families gate's baseline. Prints per setting the split
losses, ESS share, max ratio, share within 10% and which protected families fail the gate
(family loss above eCPS's + max(5%, 0.005)); writes JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from calibration_diagnosis import fit_build  # noqa: E402
from calibration_split import DEFAULT_WORK_DIR, evaluate, load_problem  # noqa: E402

from microplex_assets.calibration.loss import target_loss  # noqa: E402
from microplex_assets.calibration.scorecard import (  # noqa: E402
    PROTECTED_FAMILIES,
    protected_allowed_loss,
)
from microplex_assets.calibration.solver_config import SolverConfig, ecps_method_config  # noqa: E402

BUILD_BEFORE = SolverConfig(  # the national solver as 2026-12-02's build ran it
    l0_lambda=0.0,
    train_loss_floor=1e-3,
    train_target_cap=5e-3,
    init_noise_sd=0.1,
    kl_penalty=0.3,
    min_ess_share=0.25,
    max_weight_ratio=50.0,
)
# (label, KL penalty, protected boost, ESS floor in selection, design scaled to the household
# count); boost 0 = plain objective
GRID = (
    ("before: KL 0.3, plain", 0.3, 0.0, 0.25, False),
    ("KL 0.3, balanced x10", 0.3, 10.0, 0.25, False),
    ("KL 1.0, balanced x10", 1.0, 10.0, 0.25, False),
    ("scaled, KL 1.0, balanced x10 (default until the family-limit refits)", 1.0, 10.0, 0.25, True),
    ("KL 1.0, balanced x30, no ESS floor", 1.0, 30.0, 0.0, False),
    ("KL 1.0, balanced x100, no ESS floor", 1.0, 100.0, 0.0, False),
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    problem, note = load_problem(args.work_dir)
    targets = problem.targets
    print(note, problem.matrix.shape, flush=True)

    def fit(config: SolverConfig, boost: float, with_validation: bool = True, scale=False):
        """The build's path (``calibration_diagnosis.fit_build``): optionally the free
        design weights put on the household count first, then the solver with family
        fit weights boosted ``boost`` times (0: plain objective)."""
        config = replace(config, scale_to_household_count=scale)
        if boost > 0:
            config = replace(config, balance_families=True, protected_boost=boost)
        return fit_build(problem, config, with_validation=with_validation)

    def family_losses(weights: np.ndarray) -> dict[str, float]:
        estimates = problem.matrix @ weights
        out = {}
        for family in PROTECTED_FAMILIES:
            mask = (targets["family"] == family).to_numpy()
            if mask.any():
                out[family] = target_loss(
                    estimates[mask], problem.values[mask], problem.is_national[mask]
                )
        return out

    started = time.perf_counter()
    ecps_weights, _ = fit(ecps_method_config(), 0.0, with_validation=False)
    ecps = {**evaluate(problem, ecps_weights), "seconds": time.perf_counter() - started}
    ecps["families"] = family_losses(ecps_weights)
    rows = {"eCPS method": ecps}
    for label, kl, boost, ess, scale in GRID:
        config = replace(BUILD_BEFORE, kl_penalty=kl, min_ess_share=ess)
        started = time.perf_counter()
        weights, result = fit(config, boost, scale=scale)
        record = {**evaluate(problem, weights), "seconds": time.perf_counter() - started}
        record["chosen_epoch"] = int(result.best_epoch)
        record["families"] = family_losses(weights)
        record["failing_families"] = [
            family
            for family, loss in record["families"].items()
            if loss > protected_allowed_loss(ecps["families"][family])
        ]
        rows[label] = record
        print(
            f"{label}: train {record['train_loss']:.4g} validation "
            f"{record['validation_loss']:.4g} test {record['test_loss']:.4g} ESS "
            f"{record['ess_share']:.1%} ratio {record['max_ratio']:.0f} within10 "
            f"{record['within_10pct']:.1%} failing {record['failing_families']}",
            flush=True,
        )
    print("\n| setting | train | validation | test | ESS | failing protected families |")
    print("|:--|--:|--:|--:|--:|:--|")
    for label, r in rows.items():
        failing = ", ".join(r.get("failing_families", [])) or "-"
        print(
            f"| {label} | {r['train_loss']:.4g} | {r['validation_loss']:.4g} | "
            f"{r['test_loss']:.4g} | {r['ess_share']:.1%} | {failing} |"
        )
    out = args.out or ROOT / f"benchmarks/results/protected_fit_{dt.date.today()}.json"
    keep = ("group_mse",)
    payload = {
        "work_dir": str(args.work_dir),
        "matrix_shape": list(problem.matrix.shape),
        "rows": {k: {a: b for a, b in v.items() if a not in keep} for k, v in rows.items()},
    }
    out.write_text(json.dumps(payload, indent=1, default=float))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
