"""Stage 9 asset: what the published dataset says, computed by policyengine-us."""

import time
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    MetadataValue,
    asset_check,
)

from microplex_assets.files import write_json_atomic
from microplex_assets.partitions import product_geography_partitions
from microplex_assets.stage_asset import context_cell, stage_asset, stage_metadata
from microplex_assets.validation.aggregates import format_aggregates_markdown, national_aggregates
from microplex_assets.validation.bundle import bundle_completeness
from microplex_resources.policyengine_runtime import PolicyEngineRuntime


@stage_asset("validation", partitions_def=product_geography_partitions)
def national_aggregates_report(
    context: AssetExecutionContext,
    published_dataset: dict[str, Any],
    microsim_benchmarks: dict[str, Any],
    policyengine: PolicyEngineRuntime,
) -> pd.DataFrame:
    """Weighted totals (population, income tax, SNAP, SSI, EITC, wages, household net income)
    of the published H5, written as validation/aggregates.json beside the bundle. Where the
    benchmark suite already read them from the same bytes (its baseline simulation), they
    are taken from there: no second simulation."""
    context_cell(context)
    started = time.perf_counter()
    computed = microsim_benchmarks.get("aggregates", {})
    if computed.get("h5_sha256") == published_dataset["manifest"]["h5"]["sha256"]:
        table = computed["table"]
        context.log.info("aggregates from the benchmark suite's baseline (same H5 bytes)")
    else:
        simulation = policyengine.microsimulation(published_dataset["h5_path"])
        table = national_aggregates(simulation, int(published_dataset["year"]))
    seconds = time.perf_counter() - started
    path = write_json_atomic(
        Path(published_dataset["bundle_dir"]) / "validation" / "aggregates.json",
        {"year": published_dataset["year"], "aggregates": table.to_dict(orient="records")},
    )
    context.log.info("national aggregates:\n" + format_aggregates_markdown(table))
    context.add_output_metadata(
        stage_metadata(
            "validation",
            aggregates=MetadataValue.md(format_aggregates_markdown(table)),
            path=MetadataValue.path(str(path)),
            microsimulation_seconds=round(seconds, 1),
        )
    )
    return table


@asset_check(
    asset=national_aggregates_report,
    blocking=True,
    partitions_def=product_geography_partitions,
    additional_ins={"published_dataset": AssetIn("published_dataset")},
    description="The bundle holds config, source versions, target-set hash, scores, target "
    "deltas, record counts, nonzero weights, ESS and the benchmark aggregates.",
)
def bundle_complete(
    context: AssetCheckExecutionContext,
    national_aggregates_report: pd.DataFrame,
    published_dataset: dict[str, Any],
) -> AssetCheckResult:
    missing, found = bundle_completeness(
        Path(published_dataset["bundle_dir"]), Path(published_dataset["h5_path"]).name
    )
    return AssetCheckResult(
        passed=not missing,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "missing": MetadataValue.json(missing),
            "files": MetadataValue.json(found["files"]),
            "summary": f"{len(found['files'])} files; missing: {missing or 'nothing'}",
        },
    )
