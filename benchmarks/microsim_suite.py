"""Benchmark the stage-9 microsimulation suite on a built H5 pair, outside Dagster.

Runs exactly what ``microsim_benchmarks`` runs (``benchmark_report``) on a candidate H5
and its eCPS-method twin (same records, eCPS-method weights), after the baseline
simulation the schema gate computes in a build (``household_net_income``,
``income_tax``, SPM poverty), which the suite then reuses. Prints per reform the
households simulated and seconds, the impacts table on both weight vectors, the
baseline levels, gate verdicts, peak RSS and wall time; writes JSON (rewritten after
every reform, so a stopped run still leaves its numbers).

    python benchmarks/microsim_suite.py [--households N] [--out benchmarks/results/x.json]

``--households N`` runs on a random sample of N households (seed 0) of both files,
weights scaled by (households in the file) / N so totals stay national-sized.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from microplex_assets.files import json_safe, write_json_atomic  # noqa: E402
from microplex_assets.simulation.memory import current_rss_gb, peak_rss_gb  # noqa: E402

# The work folder of the last `make build` (national|US): the gated H5, its eCPS twin, lots.
BUILD = ROOT / "dagster_home/artifacts/_work/national/US/latest"  # the last run's work folder
BASELINE_OUTPUTS = ("household_net_income", "income_tax", "person_in_poverty")


def Runtime() -> Any:  # noqa: N802 (kept: suite_reweight imports it by this name)
    """The build's PolicyEngine resource, used outside Dagster."""
    from microplex_resources.policyengine_runtime import PolicyEngineRuntime

    return PolicyEngineRuntime()


def sample_pair(
    candidate: Path, baseline: Path, year: int, households: int, work: Path
) -> tuple[Path, Path, float]:
    """Both files cut to the same random households; the weight scale that keeps totals."""
    from microplex_assets.entities.h5_combine import restrict_h5, restrict_to_sample
    from microplex_resources.policyengine_runtime import policyengine_system

    system = policyengine_system()
    with h5py.File(candidate, "r") as h5:
        file_households = len(h5["household_id"][str(year)])

    def entity_of(name: str) -> str:
        return system.variables[name].entity.key

    candidate_sample, baseline_sample = work / candidate.name, work / baseline.name
    chosen = restrict_to_sample(candidate, candidate_sample, households, year, entity_of)
    restrict_h5(baseline, baseline_sample, chosen, year, entity_of)
    return candidate_sample, baseline_sample, file_households / households


def table_text(report: dict[str, Any], runs: dict[str, dict[str, float]]) -> str:
    """The impacts as printed: one row per reform, our weights beside the eCPS method's."""
    rows = []
    for reform_id, by_label in report["impacts"].items():
        ours, ecps = by_label["candidate"], by_label["ecps_method"]
        rows.append(
            {
                "reform": reform_id,
                "households": runs[reform_id]["households"],
                "seconds": round(runs[reform_id]["seconds"], 1),
                "budget_bn_ours": ours["budget_impact_bn"],
                "budget_bn_ecps": ecps["budget_impact_bn"],
                "net_income_bn_ours": ours["household_net_income_change_bn"],
                "net_income_bn_ecps": ecps["household_net_income_change_bn"],
                "spm_pp_ours": ours["spm_poverty_rate_change_pp"],
                "spm_pp_ecps": ecps["spm_poverty_rate_change_pp"],
            }
        )
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        impacts = pd.DataFrame(rows).round(3).to_string(index=False)
    levels = pd.DataFrame(report["levels"]).round(4).to_string()
    gates = "\n".join(
        f"{name}: {'PASS' if gate.passed else 'FAIL'} ({gate.severity}) {gate.summary}"
        for name, gate in report["gates"].items()
    )
    return f"{impacts}\n\nbaseline levels:\n{levels}\n\ngates:\n{gates}"


def verify_against_whole_file(
    h5: Path, year: int, reform_id: str, suite_values: pd.Series, context: dict[str, Any]
) -> dict[str, Any]:
    """The reform on every household of ``h5`` (a user's ``Microsimulation(reform=)``,
    Medicaid state aggregates from the full baseline as the suite sets them): the largest
    per-household net-income gap to the suite's skipping result."""
    from microplex_assets.validation.microsim.manifest import load_manifest
    from microplex_assets.validation.microsim.reforms import parametric_reform
    from microplex_assets.validation.microsim.suite import STATE_AGGREGATE_INPUTS
    from microplex_resources.policyengine_runtime import (
        policyengine_reform_microsimulation,
        policyengine_system,
    )

    reform = load_manifest().reform(reform_id)
    if reform.kind != "parametric":
        raise ValueError("--verify takes a parametric reform")
    started = time.perf_counter()
    simulation = policyengine_reform_microsimulation(
        h5, parametric_reform(reform, policyengine_system())
    )
    for name, values in context["state_aggregates"].items():
        simulation.set_input(name, year, values)
    ids = np.asarray(simulation.calculate("household_id", year)).astype(np.int64)
    net = pd.Series(np.asarray(simulation.calculate("household_net_income", year)), index=ids)
    gap = (net.reindex(suite_values.index) - suite_values).abs()
    return {
        "reform": reform_id,
        "households": len(ids),
        "max_abs_net_income_gap": float(gap.max()),
        "households_over_1_cent": int((gap > 0.01).sum()),
        "seconds": round(time.perf_counter() - started, 1),
        "state_aggregates": list(STATE_AGGREGATE_INPUTS),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--h5", type=Path, default=BUILD / "policyengine_us_2024.h5")
    parser.add_argument("--baseline-h5", type=Path, default=BUILD / "ecps_method_2024.h5")
    parser.add_argument("--lots", type=Path, default=BUILD / "capital_gains_lots_2024.parquet")
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--households", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--verify",
        default=None,
        help="a parametric reform id: also simulate it on every household and compare",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="simulate reform slices in this process (the pre-fork path), not in children",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    stamp = dt.datetime.now(dt.UTC)
    label = f"{args.households}hh" if args.households else "full"
    out = args.out or ROOT / f"benchmarks/results/microsim_suite_{stamp:%Y-%m-%d}_{label}.json"
    events: list[dict[str, Any]] = []
    document: dict[str, Any] = {
        "started_utc": stamp.isoformat(timespec="seconds"),
        "inputs": {"h5": str(args.h5), "baseline_h5": str(args.baseline_h5)},
        "households_sample": args.households,
        "reform_slices": "in process" if args.in_process else "forked children",
        "events": events,
        "complete": False,
    }

    def log(message: str) -> None:
        elapsed = time.perf_counter() - started
        events.append(
            {
                "seconds": round(elapsed, 1),
                "rss_gb": round(peak_rss_gb(), 2),
                "current_rss_gb": round(current_rss_gb(), 2),
                "event": message,
            }
        )
        print(
            f"[{elapsed:7.1f}s peak {peak_rss_gb():5.2f} GB now {current_rss_gb():5.2f} GB] "
            f"{message}",
            flush=True,
        )
        write_json_atomic(out, json_safe(document))

    from microplex_assets.publication.capital_gains_lots import load_capital_gains_lots
    from microplex_assets.validation.microsim.benchmark_report import benchmark_report, h5_weights

    runtime = Runtime()
    runtime.system()
    log("policyengine-us imported")
    work = Path(tempfile.mkdtemp(prefix="microsim_suite_"))
    try:
        h5, baseline_h5, scale = args.h5, args.baseline_h5, 1.0
        if args.households:
            h5, baseline_h5, scale = sample_pair(h5, baseline_h5, args.year, args.households, work)
        document["weight_scale"] = scale
        weights = {
            "candidate": h5_weights(h5, args.year) * scale,
            "ecps_method": h5_weights(baseline_h5, args.year) * scale,
        }
        document["households"] = len(weights["candidate"])
        log(f"{len(weights['candidate']):,} households")
        # What the schema gate computes in a build; the suite reuses this simulation.
        t0 = time.perf_counter()
        simulation = runtime.microsimulation(h5)
        for name in BASELINE_OUTPUTS:
            simulation.calculate(name, args.year)
        state_aggregates = (
            {
                name: np.asarray(simulation.calculate(name, args.year), dtype=float)
                for name in (
                    "medicaid_slcsp_state_denominator",
                    "medicaid_slcsp_state_average_cost_index",
                )
            }
            if args.verify
            else {}
        )
        del simulation
        document["baseline_seconds"] = round(time.perf_counter() - t0, 1)
        log(f"baseline simulation (schema gate's) {document['baseline_seconds']}s")
        t0 = time.perf_counter()
        kept: dict[str, Any] = {}
        report = benchmark_report(
            h5_path=h5,
            baseline_h5=baseline_h5,
            year=args.year,
            weights=weights,
            lots=load_capital_gains_lots(args.lots),
            pinned=None,
            policyengine=runtime,
            work_dir=work / "report",
            progress=log,
            keep=kept,
            isolate=False if args.in_process else None,
        )
        suite_seconds = time.perf_counter() - t0
        runs = {
            reform_id: {"households": n, "seconds": report["simulation_seconds"][reform_id]}
            for reform_id, n in report["document"]["households_simulated"].items()
        }
        text = table_text(report, runs)
        print(text, flush=True)
        document.update(
            complete=True,
            manifest=report["manifest"],
            reforms=runs,
            suite_seconds=round(suite_seconds, 1),
            impacts=report["document"]["impacts"],
            baseline_levels=report["document"]["baseline_levels"],
            deltas=report["document"]["deltas"],
            gates=report["document"]["gates"],
            table=text,
            peak_rss_gb=round(peak_rss_gb(), 2),
            wall_seconds=round(time.perf_counter() - started, 1),
        )
        log(f"done: wall {document['wall_seconds']}s, peak RSS {document['peak_rss_gb']} GB")
        if args.verify:
            suite_values = kept["suite"].runs[args.verify].results.household["household_net_income"]
            check = verify_against_whole_file(
                h5, args.year, args.verify, suite_values, {"state_aggregates": state_aggregates}
            )
            document["verify"] = check
            log(f"verify {check}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
