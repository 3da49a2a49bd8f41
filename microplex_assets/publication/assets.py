"""Stage 8 assets: the gated H5 (work copy) and the atomically published bundle.

The H5 is written to the build's work folder first; the blocking schema gate judges
that file, and only when it passes does ``published_dataset`` copy H5, manifest and
run profile into ``artifacts/<product>/<geography>/`` in one atomic swap.
"""

import time
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    MetadataValue,
    asset_check,
)

from microplex_assets.entities.bundle import EntityBundle
from microplex_assets.files import write_json_atomic
from microplex_assets.partitions import product_geography_partitions
from microplex_assets.publication.h5_export import write_policyengine_h5
from microplex_assets.publication.manifest import build_manifest, package_versions
from microplex_assets.publication.publish import publish_bundle
from microplex_assets.publication.schema_gate import check_h5_schema, check_microsimulation
from microplex_assets.sources.frame import ObservationFrame
from microplex_assets.stage_asset import context_cell, stage_asset, stage_metadata
from microplex_resources.artifact_store import ArtifactStore
from microplex_resources.policyengine_runtime import PolicyEngineRuntime


def dataset_filename(year: int) -> str:
    return f"policyengine_us_{year}.h5"


def weighted_bundle(bundle: EntityBundle, weights: pd.Series) -> EntityBundle:
    """The bundle with household_weight replaced by the calibrated weights."""
    household = bundle.household.copy()
    household["household_weight"] = household["household_id"].map(weights).to_numpy()
    if household["household_weight"].isna().any():
        missing = int(household["household_weight"].isna().sum())
        raise ValueError(f"calibrated_weights lacks {missing} household ids of the entity bundle")
    return EntityBundle(
        year=bundle.year, tables={**bundle.tables, "household": household}, notes=bundle.notes
    )


@stage_asset("publication", partitions_def=product_geography_partitions)
def dataset_h5(
    context: AssetExecutionContext,
    run_profile: dict[str, Any],
    entity_bundle: EntityBundle,
    calibrated_weights: pd.Series,
    policyengine: PolicyEngineRuntime,
    artifact_store: ArtifactStore,
) -> dict[str, Any]:
    """The H5 in policyengine-core's time-period layout, in the work folder, awaiting the gate."""
    cell = context_cell(context)
    started = time.perf_counter()
    path = artifact_store.work_dir(cell.product, cell.geography) / dataset_filename(
        run_profile["year"]
    )
    report = write_policyengine_h5(
        weighted_bundle(entity_bundle, calibrated_weights), path, policyengine.system()
    )
    summary = report.as_dict()
    context.log.info(f"H5 written in {time.perf_counter() - started:.1f}s: {path}")
    context.add_output_metadata(
        stage_metadata(
            "publication",
            path=MetadataValue.path(str(path)),
            row_counts=MetadataValue.json(summary["record_counts"]),
            exported_variables=MetadataValue.json(summary["exported"]),
            excluded_columns=MetadataValue.json(summary["excluded"]),
            size_bytes=path.stat().st_size,
        )
    )
    return {"path": str(path), "export": summary}


@asset_check(
    asset=dataset_h5,
    blocking=True,
    partitions_def=product_geography_partitions,
    description=(
        "H5 loads in policyengine_us.Microsimulation; ids, links, weights, dtypes and enum "
        "values valid; only PE input variables; income_tax and household_net_income compute."
    ),
)
def schema_compatible(
    context: AssetCheckExecutionContext,
    dataset_h5: dict[str, Any],
    policyengine: PolicyEngineRuntime,
) -> AssetCheckResult:
    path = Path(dataset_h5["path"])
    year = int(dataset_h5["export"]["year"])
    static = check_h5_schema(path, policyengine.system(), year)
    metadata: dict[str, Any] = {**static.metrics, "failures": MetadataValue.json(static.failures)}
    passed = static.passed
    if passed:
        started = time.perf_counter()
        simulation = check_microsimulation(path, year, policyengine.microsimulation)
        metadata.update(simulation)
        metadata["microsimulation_seconds"] = round(time.perf_counter() - started, 1)
        passed = bool(simulation.get("finite", False))
        metadata["summary"] = (
            f"{len(static.failures)} schema failures; income tax "
            f"${simulation['income_tax_total_bn']:,.1f}bn, household net income "
            f"${simulation['household_net_income_total_bn']:,.1f}bn"
        )
    else:
        metadata["summary"] = f"{len(static.failures)} schema failures: {static.failures[:3]}"
    return AssetCheckResult(passed=passed, severity=AssetCheckSeverity.ERROR, metadata=metadata)


@stage_asset("publication", partitions_def=product_geography_partitions)
def published_dataset(
    context: AssetExecutionContext,
    run_profile: dict[str, Any],
    dataset_h5: dict[str, Any],
    cps_source_frame: ObservationFrame,
    calibrated_weights: pd.Series,
    policyengine: PolicyEngineRuntime,
    artifact_store: ArtifactStore,
) -> dict[str, Any]:
    """The bundle in artifacts/<product>/<geography>/: H5, manifest.json, run_profile.json."""
    cell = context_cell(context)
    h5_path = Path(dataset_h5["path"])
    work = artifact_store.work_dir(cell.product, cell.geography)
    manifest = build_manifest(
        run_profile=run_profile,
        export=dataset_h5["export"],
        sources=[cps_source_frame.provenance],
        package_versions=package_versions(),
        h5_path=h5_path,
        weights=calibrated_weights,
        system=policyengine.system(),
    )
    manifest_path = write_json_atomic(work / "manifest.json", manifest)
    profile_path = work / "run_profile.json"
    destination = artifact_store.bundle_dir(cell.product, cell.geography)
    published = publish_bundle(
        {h5_path.name: h5_path, "manifest.json": manifest_path, "run_profile.json": profile_path},
        destination,
    )
    context.log.info(f"published bundle to {destination}")
    context.add_output_metadata(
        stage_metadata(
            "publication",
            path=MetadataValue.path(str(destination)),
            h5=MetadataValue.path(str(published[h5_path.name])),
            h5_sha256=manifest["h5"]["sha256"],
            row_counts=MetadataValue.json(manifest["record_counts"]),
            exported_variables=len(dataset_h5["export"]["exported_variables"]),
            size_bytes=published[h5_path.name].stat().st_size,
            ecps_coverage=MetadataValue.json(manifest.get("ecps_coverage", {})),
        )
    )
    return {
        "bundle_dir": str(destination),
        "h5_path": str(published[h5_path.name]),
        "year": run_profile["year"],
        "manifest": manifest,
    }
