"""Stage 1 asset: the resolved run profile of one partition cell."""

from typing import Any

from dagster import AssetExecutionContext, MetadataValue

from microplex_assets.files import write_json_atomic
from microplex_assets.partitions import product_geography_partitions
from microplex_assets.run_profile.profile import resolve_run_profile
from microplex_assets.stage_asset import context_cell, stage_asset, stage_metadata
from microplex_resources.artifact_store import ArtifactStore
from microplex_resources.build_settings import BuildSettings


@stage_asset("run_profile", partitions_def=product_geography_partitions)
def run_profile(
    context: AssetExecutionContext, build_settings: BuildSettings, artifact_store: ArtifactStore
) -> dict[str, Any]:
    """Year, product, geography, sample size, seeds, backend, baseline pin and source plan."""
    cell = context_cell(context)
    profile = resolve_run_profile(build_settings.model_dump(), cell)
    path = write_json_atomic(
        artifact_store.work_dir(cell.product, cell.geography) / "run_profile.json", profile
    )
    context.log.info(f"run profile for {cell.product}|{cell.geography}: {cell.meaning}")
    context.add_output_metadata(
        stage_metadata(
            "run_profile",
            year=profile["year"],
            product=cell.product,
            geography=cell.geography,
            meaning=cell.meaning,
            providers=MetadataValue.json(profile["providers"]),
            seeds=MetadataValue.json(profile["seeds"]),
            calibration_backend=profile["calibration_backend"],
            baseline_pin=MetadataValue.json(profile["baseline_pin"] or {}),
            path=MetadataValue.path(str(path)),
        )
    )
    return profile
