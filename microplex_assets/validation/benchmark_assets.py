"""Stage 9 asset: the frozen microsimulation benchmark suite, gated before publication.

``microsim_benchmarks`` scores every manifest reform on the gated work H5 (the schema
gate's simulation is the baseline, reused by content hash), aggregates the same records
with the candidate's and the eCPS method's weights, and writes the eCPS-method H5 the way
the eCPS is written (every record, zero weights kept) so the size gate compares two real
files. Its three blocking checks stop ``published_dataset``, which carries the report.
"""

import time
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    MetadataValue,
)

from microplex_assets.calibration.weights import CalibrationRun
from microplex_assets.constants import SUITE_SLICE_HOUSEHOLDS
from microplex_assets.entities.bundle import EntityBundle
from microplex_assets.gate_checks import blocking_gate_check
from microplex_assets.partitions import product_geography_partitions
from microplex_assets.plots import png_markdown
from microplex_assets.publication.capital_gains_lots import load_capital_gains_lots
from microplex_assets.publication.h5_export import write_policyengine_h5
from microplex_assets.publication.weighting import weighted_bundle
from microplex_assets.stage_asset import context_cell, stage_asset, stage_metadata, table_metadata
from microplex_assets.validation.microsim.benchmark_report import (
    CANDIDATE_LABEL,
    ECPS_LABEL,
    benchmark_report,
    not_applicable,
)
from microplex_assets.validation.microsim.gates import (
    BENCHMARKS_GATE,
    RUNTIME_GATE,
    SIZE_GATE,
    MicrosimGate,
)
from microplex_resources.artifact_store import ArtifactStore
from microplex_resources.policyengine_runtime import PolicyEngineRuntime


@stage_asset("validation", partitions_def=product_geography_partitions)
def microsim_benchmarks(
    context: AssetExecutionContext,
    run_profile: dict[str, Any],
    dataset_h5: dict[str, Any],
    entity_bundle: EntityBundle,
    calibrated_weights: CalibrationRun,
    ecps_baseline_weights: CalibrationRun,
    policyengine: PolicyEngineRuntime,
    artifact_store: ArtifactStore,
) -> dict[str, Any]:
    """The frozen reform suite (SSI asset limit, ARPA CTC, ARPA childless EITC, capital
    gains indexed to inflation, a broad standard-deduction change) on the gated H5:
    budget impact and components, household net income change, winners and losers, SPM
    poverty change and deciles per reform, for the candidate's and the eCPS method's
    weights on the same records; the runtime and artifact-size gates beside them."""
    cell = context_cell(context)
    settings = run_profile.get("microsim_benchmarks", {"enabled": cell.product == "national"})
    if not settings.get("enabled", False):
        report = not_applicable(f"benchmark suite runs on national|US, not {cell.label}")
        context.add_output_metadata(stage_metadata("validation", summary=report["skipped"]))
        return report
    year = int(run_profile["year"])
    work = artifact_store.work_dir(cell.product, cell.geography)
    h5_path = Path(dataset_h5["path"])
    baseline_h5 = work / f"ecps_method_{year}.h5"
    write_policyengine_h5(
        weighted_bundle(entity_bundle, ecps_baseline_weights.weights),
        baseline_h5,
        policyengine.system(),
    )
    started = time.perf_counter()
    report = benchmark_report(
        h5_path=h5_path,
        baseline_h5=baseline_h5,
        year=year,
        weights={
            CANDIDATE_LABEL: calibrated_weights.weights,
            ECPS_LABEL: ecps_baseline_weights.weights,
        },
        lots=load_capital_gains_lots(Path(dataset_h5["lots_path"])),
        pinned=run_profile.get("baseline_pin"),
        policyengine=policyengine,
        work_dir=work / "microsim",
        progress=context.log.info,
        tolerance=settings.get("tolerance"),
        slice_households=settings.get("slice_households", SUITE_SLICE_HOUSEHOLDS),
    )
    report["seconds"] = round(time.perf_counter() - started, 1)
    context.log.info("benchmark suite:\n" + report["markdown"])
    context.add_output_metadata(
        stage_metadata(
            "validation",
            manifest_hash=report["manifest"]["content_hash"],
            manifest_version=report["manifest"]["version"],
            impacts=MetadataValue.md(report["markdown"]),
            baseline_levels=table_metadata(pd.DataFrame(report["levels"]).T.reset_index()),
            deciles=MetadataValue.md(png_markdown(report["decile_png"], "decile impacts")),
            simulation_seconds=MetadataValue.json(report["simulation_seconds"]),
            gates=table_metadata(pd.DataFrame([g.as_dict() for g in report["gates"].values()])),
            seconds=report["seconds"],
        )
    )
    return report


def gate_result(report: dict[str, Any], name: str) -> AssetCheckResult | str:
    """A gate verdict as a check result; where the suite did not run, why the gate does not
    apply (the check then emits nothing and the UI shows it Skipped, not Passed)."""
    if "skipped" in report:
        return f"not applicable: {report['skipped']}"
    gate: MicrosimGate = report["gates"][name]
    metadata: dict[str, Any] = {
        "applicable": True,
        "summary": gate.summary,
        "value": gate.value if gate.value is not None else float("nan"),
        "threshold": gate.threshold if gate.threshold is not None else float("nan"),
        "manifest_hash": report["manifest"]["content_hash"],
    }
    for key, detail in gate.details.items():
        # Tables (lists, dicts) as JSON; numbers as they are (MetadataValue.json refuses them).
        metadata[key] = MetadataValue.json(detail) if isinstance(detail, list | dict) else detail
    return AssetCheckResult(
        passed=gate.passed,
        severity=AssetCheckSeverity(gate.severity),
        metadata=metadata,
        description=gate.summary,
    )


def _suite_gate_check(name: str, description: str):
    """A blocking check on the report that shows one of the suite's gates (named like it)."""
    return blocking_gate_check(
        microsim_benchmarks, name, description, lambda report: gate_result(report, name)
    )


microsim_benchmarks_hold = _suite_gate_check(
    BENCHMARKS_GATE,
    "No unexplained fiscal or household-net-income delta between the candidate and the "
    "eCPS-method baseline larger than max(5% of the baseline's estimate, $5bn).",
)
runtime_within_budget = _suite_gate_check(
    RUNTIME_GATE,
    "Median wall time of the suite's simulations on the candidate at most 1.25x the "
    "baseline's (WARN up to 2.0x, the beta band; ERROR above).",
)
artifact_size_within_budget = _suite_gate_check(
    SIZE_GATE,
    "The H5 at most 2x the eCPS-method baseline H5 (every record, zero weights kept); "
    "separately loadable extensions excluded.",
)
