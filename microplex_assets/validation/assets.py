"""Stage 9 asset: what the published dataset says, computed by policyengine-us."""

import json
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

from microplex_assets.partitions import product_geography_partitions
from microplex_assets.stage_asset import context_cell, stage_asset, stage_metadata
from microplex_assets.validation.aggregates import format_aggregates_markdown
from microplex_assets.validation.bundle import bundle_completeness


@stage_asset("validation", partitions_def=product_geography_partitions)
def national_aggregates_report(
    context: AssetExecutionContext,
    published_dataset: dict[str, Any],
) -> pd.DataFrame:
    """Weighted totals (population, income tax, SNAP, SSI, EITC, wages, household net income)
    of the published H5, computed by policyengine-us before publication and published
    inside the immutable bundle as validation/aggregates.json (nothing writes into a bundle
    after it is published); this asset reads them back and reports them."""
    context_cell(context)
    path = Path(published_dataset["bundle_dir"]) / "validation" / "aggregates.json"
    document = json.loads(path.read_text())
    if document.get("h5_sha256") != published_dataset["manifest"]["h5"]["sha256"]:
        raise ValueError(f"{path} was computed on other H5 bytes than the bundle's H5")
    table = pd.DataFrame(document["aggregates"])
    context.log.info("national aggregates:\n" + format_aggregates_markdown(table))
    context.add_output_metadata(
        stage_metadata(
            "validation",
            aggregates=MetadataValue.md(format_aggregates_markdown(table)),
            path=MetadataValue.path(str(path)),
            computed_by=str(document.get("computed_by")),
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
