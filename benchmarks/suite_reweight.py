"""The benchmark suite's results on any weight vector, from a build's saved per-record results.

    python benchmarks/suite_reweight.py [--work-dir DIR] [--year 2024]
                                        [--weights NAME=PATH ...] [--run REFORM ...]

A reform's result per record does not depend on the weights, so a build's suite (saved
under ``<work folder>/microsim/suite_results`` by ``persist.save_suite``) scores every
weight vector a calibration experiment produces with no PolicyEngine simulation. Prints
per reform and weighting the budget impact and household net income change ($bn), and the
benchmark gate's rows against the eCPS method (delta, allowance, within). Weight vectors:
the work folder's candidate and eCPS-method H5s, plus ``--weights`` (``.npy`` in the saved
matrix's household order, as ``benchmarks/solver_variants.py --weights-dir`` writes).

``--run REFORM ...`` (for a build saved before the results were kept) simulates those
manifest reforms on the work folder's candidate H5 (the suite's own slicing, in this
process) and saves them under ``--work-dir``'s ``microsim/suite_results``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from calibration_split import DEFAULT_WORK_DIR  # noqa: E402

from microplex_assets.validation.microsim.benchmark_report import h5_weights  # noqa: E402
from microplex_assets.validation.microsim.gates import benchmark_deltas  # noqa: E402
from microplex_assets.validation.microsim.persist import (  # noqa: E402
    SUITE_RESULTS,
    load_suite,
    save_suite,
)


def run_reforms(work_dir: Path, year: int, reform_ids: list[str]) -> None:
    """Simulate ``reform_ids`` on the work folder's candidate H5 and save the results."""
    from microsim_suite import Runtime

    from microplex_assets.publication.capital_gains_lots import load_capital_gains_lots
    from microplex_assets.validation.microsim.indexation import policyengine_cpi_u
    from microplex_assets.validation.microsim.manifest import load_manifest
    from microplex_assets.validation.microsim.suite import run_suite

    manifest = load_manifest()
    manifest = replace(manifest, reforms=tuple(manifest.reform(r) for r in reform_ids))
    runtime = Runtime()
    h5 = work_dir / f"policyengine_us_{year}.h5"
    lots_path = work_dir / f"capital_gains_lots_{year}.parquet"
    context = {"cpi": policyengine_cpi_u(runtime.system())}
    if lots_path.exists():
        context["lots"] = load_capital_gains_lots(lots_path)
    suite = run_suite(
        manifest,
        runtime.microsimulation(h5),
        h5,
        year,
        work_dir / "microsim",
        runtime.reform_microsimulation,
        context,
        lambda message: print(message, flush=True),
        release=runtime.release,
        isolate=False,
        reform_system=runtime.reform_system,
    )
    print("saved in", save_suite(suite, work_dir / "microsim"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--weights", nargs="*", default=[], help="NAME=PATH of a .npy vector")
    parser.add_argument("--run", nargs="*", default=[], help="reform ids to simulate first")
    args = parser.parse_args()
    if args.run:
        run_reforms(args.work_dir, args.year, args.run)
    suite = load_suite(args.work_dir / "microsim" / SUITE_RESULTS)
    weights = {
        "candidate": h5_weights(args.work_dir / f"policyengine_us_{args.year}.h5", args.year),
        "ecps_method": h5_weights(args.work_dir / f"ecps_method_{args.year}.h5", args.year),
    }
    ids = np.load(args.work_dir / "target_matrix_household_ids.npy").astype(np.int64)
    for item in args.weights:
        label, path = item.split("=", 1)
        weights[label] = pd.Series(np.load(path), index=pd.Index(ids, name="household_id"))
    impacts = suite.impacts(weights)
    rows = [
        {
            "reform": reform_id,
            "weights": label,
            "budget_bn": result["budget_impact_bn"],
            "net_income_bn": result["household_net_income_change_bn"],
        }
        for reform_id, by_label in impacts.items()
        for label, result in by_label.items()
    ]
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".2f"))
    for label in weights:
        if label == "ecps_method":
            continue
        deltas = pd.DataFrame(benchmark_deltas(impacts, label, "ecps_method", {}))
        print(f"\n{label} vs ecps_method:")
        print(
            deltas[["reform", "output", "delta_bn", "allowed_bn", "within"]].to_markdown(
                index=False, floatfmt=".2f"
            )
        )


if __name__ == "__main__":
    main()
