"""Compose the benchmark report: suite runs, impacts per weighting, deltas, gates, evidence.

The runtime gate compares the suite's simulations on the candidate H5 with those on the
eCPS-method H5. The two files are written from the same records and differ only in
``household_weight`` (checked here byte for byte, variable by variable); PolicyEngine's
results per record do not depend on weights, so one simulation per reform *is* each
file's simulation, timed once. When the inputs differ (another record set, or the
pinned external H5), the baseline file gets its own suite run and its own timings.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from microplex_assets.files import file_sha256, json_safe, write_json_atomic
from microplex_assets.validation.aggregates import national_aggregates
from microplex_assets.validation.baseline_pass import (
    published_baseline,
    release_baselines,
    suite_context,
)
from microplex_assets.validation.microsim.gates import (
    BENCHMARKS_GATE,
    RUNTIME_GATE,
    SIZE_GATE,
    MicrosimGate,
    benchmark_deltas,
    benchmarks_gate,
    load_explanations,
    runtime_gate,
    size_gate,
)
from microplex_assets.validation.microsim.manifest import load_manifest
from microplex_assets.validation.microsim.outputs import impacts_table
from microplex_assets.validation.microsim.persist import save_suite
from microplex_assets.validation.microsim.report import decile_chart_png, impacts_markdown
from microplex_assets.validation.microsim.slices import CHUNK_HOUSEHOLDS
from microplex_assets.validation.microsim.suite import SuiteRun, run_suite
from microplex_resources.simulation_reuse import records_digest

CANDIDATE_LABEL = "candidate"
ECPS_LABEL = "ecps_method"
PINNED_LABEL = "pinned_h5"
REPORT_FILES = ("microsim_benchmarks.json", "microsim_benchmarks.md", "microsim_deciles.png")


def not_applicable(reason: str) -> dict[str, Any]:
    """The report of a cell the suite does not run on (its gates read 'not applicable')."""
    return {"skipped": reason}


def h5_weights(path: Path, year: int) -> pd.Series:
    with h5py.File(path, "r") as h5:
        ids = h5["household_id"][str(year)][...].astype(np.int64)
        weights = h5["household_weight"][str(year)][...].astype(float)
    return pd.Series(weights, index=pd.Index(ids, name="household_id"))


def suite_on(
    h5_path: Path,
    year: int,
    policyengine: Any,
    work_dir: Path,
    context: Mapping[str, Any],
    log: Callable[[str], None],
    aggregates: dict[str, Any] | None = None,
    isolate: bool | None = None,
    slice_households: int = CHUNK_HOUSEHOLDS,
) -> SuiteRun:
    """The suite on one H5. Its baseline is the file's sliced simulation (the schema
    gate's, by content hash; computed here for a file the gate did not see); the stage-9
    national aggregates are read from it into ``aggregates``."""
    manifest = load_manifest()
    baseline = published_baseline(
        h5_path, year, policyengine, context, work_dir / "baseline_slices", slice_households, log
    )
    if aggregates is not None:
        aggregates["table"] = national_aggregates(baseline, year)
        aggregates["h5_sha256"] = file_sha256(h5_path)
    return run_suite(
        manifest,
        baseline,
        h5_path,
        year,
        work_dir,
        policyengine.reform_microsimulation,
        context,
        log,
        release=release_baselines,
        chunk_households=slice_households,
        isolate=isolate,
        reform_system=policyengine.reform_system,
    )


def benchmark_report(
    *,
    h5_path: Path,
    baseline_h5: Path,
    year: int,
    weights: Mapping[str, pd.Series],
    lots: pd.DataFrame,
    pinned: dict[str, Any] | None,
    policyengine: Any,
    work_dir: Path,
    progress: Callable[[str], None] | None = None,
    tolerance: Mapping[str, float] | None = None,
    keep: dict[str, Any] | None = None,
    isolate: bool | None = None,
    slice_households: int = CHUNK_HOUSEHOLDS,
) -> dict[str, Any]:
    """Run the suite and return the report (JSON, markdown and chart written to work_dir).

    ``keep`` receives the candidate's ``SuiteRun`` (per-record results) under "suite";
    ``isolate=False`` runs reform slices in this process (``run_suite``)."""
    log = progress or (lambda message: None)
    manifest = load_manifest()
    context = suite_context(lots, policyengine.system())
    aggregates: dict[str, Any] = {}
    suite = suite_on(
        h5_path, year, policyengine, work_dir, context, log, aggregates, isolate, slice_households
    )
    if keep is not None:
        keep["suite"] = suite
    saved = save_suite(suite, work_dir)
    log(f"per-record suite results saved in {saved} (benchmarks/suite_reweight.py reads them)")
    impacts = suite.impacts(weights)
    levels = suite.levels(weights)
    candidate_seconds = list(suite.seconds().values())
    same_inputs = records_digest(h5_path) == records_digest(baseline_h5)
    if same_inputs:
        baseline_seconds = candidate_seconds
        runtime_note = (
            "both H5s hold the same records and inputs (only the weights differ): "
            "each reform's one simulation is each file's simulation"
        )
    else:
        log("baseline H5 holds other records: running the suite on it too")
        baseline_suite = suite_on(
            baseline_h5, year, policyengine, work_dir, context, log,
            isolate=isolate, slice_households=slice_households,
        )  # fmt: skip
        baseline_seconds = list(baseline_suite.seconds().values())
        for reform_id, by_label in baseline_suite.impacts(
            {ECPS_LABEL: weights[ECPS_LABEL]}
        ).items():
            impacts[reform_id][ECPS_LABEL] = by_label[ECPS_LABEL]
        runtime_note = "baseline H5 simulated separately"
    pinned_info = None
    if pinned:
        pinned_path = Path(pinned["path"])
        pinned_suite = suite_on(
            pinned_path, year, policyengine, work_dir, context, log,
            isolate=isolate, slice_households=slice_households,
        )  # fmt: skip
        pinned_weights = {PINNED_LABEL: h5_weights(pinned_path, year)}
        for reform_id, by_label in pinned_suite.impacts(pinned_weights).items():
            impacts[reform_id][PINNED_LABEL] = by_label[PINNED_LABEL]
        levels[PINNED_LABEL] = pinned_suite.levels(pinned_weights)[PINNED_LABEL]
        pinned_info = {
            "path": str(pinned_path),
            "sha256": file_sha256(pinned_path),
            "versions": pinned.get("versions"),
            "simulation_seconds": pinned_suite.seconds(),
        }
        del pinned_suite
        gc.collect()
    rows = benchmark_deltas(
        impacts, CANDIDATE_LABEL, ECPS_LABEL, load_explanations(), **(tolerance or {})
    )
    gates: dict[str, MicrosimGate] = {
        BENCHMARKS_GATE: benchmarks_gate(rows),
        RUNTIME_GATE: runtime_gate(candidate_seconds, baseline_seconds, runtime_note),
        SIZE_GATE: size_gate(h5_path.stat().st_size, baseline_h5.stat().st_size),
    }
    table = impacts_table(impacts)
    markdown = impacts_markdown(table)
    png = decile_chart_png(impacts, list(impacts))
    document = json_safe(
        {
            "manifest": {
                "version": manifest.version,
                "content_hash": manifest.content_hash,
                "reforms": [r.id for r in manifest.reforms],
            },
            "year": year,
            "datasets": {
                CANDIDATE_LABEL: {"h5": str(h5_path), "sha256": file_sha256(h5_path)},
                ECPS_LABEL: {"h5": str(baseline_h5), "sha256": file_sha256(baseline_h5)},
                **({PINNED_LABEL: pinned_info} if pinned_info else {}),
            },
            "same_records_as_baseline": same_inputs,
            "households_simulated": {k: r.households_simulated for k, r in suite.runs.items()},
            "simulation_seconds": suite.seconds(),
            "impacts": impacts,
            "baseline_levels": levels,
            "deltas": rows,
            "gates": {name: gate.as_dict() for name, gate in gates.items()},
        }
    )
    work_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "microsim_benchmarks.json": write_json_atomic(
            work_dir / "microsim_benchmarks.json", document
        ),
        "microsim_benchmarks.md": work_dir / "microsim_benchmarks.md",
        "microsim_deciles.png": work_dir / "microsim_deciles.png",
    }
    files["microsim_benchmarks.md"].write_text(markdown + "\n")
    files["microsim_deciles.png"].write_bytes(png)
    return {
        "manifest": document["manifest"],
        "document": document,
        "impacts": impacts,
        "levels": levels,
        "markdown": markdown,
        "decile_png": png,
        "simulation_seconds": document["simulation_seconds"],
        "gates": gates,
        "files": files,
        "aggregates": aggregates,
    }


def loss_record_summary(report: dict[str, Any]) -> dict[str, Any] | None:
    """What loss_record.json keeps of the report: per reform, the candidate's and the
    baseline's budget impact and net-income change, gate verdicts and the manifest hash."""
    if "skipped" in report:
        return {"skipped": report["skipped"]}
    reforms = []
    for reform_id, by_label in report["impacts"].items():
        entry = {"reform": reform_id}
        for label, impact in by_label.items():
            entry[label] = {
                "budget_impact_bn": impact["budget_impact_bn"],
                "household_net_income_change_bn": impact["household_net_income_change_bn"],
                "spm_poverty_rate_change_pp": impact["spm_poverty_rate_change_pp"],
            }
        reforms.append(entry)
    return json_safe(
        {
            "manifest_version": report["manifest"]["version"],
            "manifest_hash": report["manifest"]["content_hash"],
            "reforms": reforms,
            "gates": [gate.as_dict() for gate in report["gates"].values()],
        }
    )
