"""Stage 7 asset: calibrated household weights, with a blocking weight-validity check."""

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

from microplex_assets.calibration.weights import calibrate_weights, weight_diagnostics
from microplex_assets.entities.bundle import EntityBundle
from microplex_assets.partitions import product_geography_partitions
from microplex_assets.stage_asset import context_cell, stage_asset, stage_metadata


@stage_asset("calibration", partitions_def=product_geography_partitions)
def calibrated_weights(
    context: AssetExecutionContext, run_profile: dict[str, Any], entity_bundle: EntityBundle
) -> pd.Series:
    """Household weights by household_id from the configured calibration backend."""
    cell = context_cell(context)
    backend = run_profile["calibration_backend"]
    weights = calibrate_weights(entity_bundle.household, backend)
    diagnostics = weight_diagnostics(weights.to_numpy())
    label = "design weights (not calibrated)" if backend == "none" else backend
    if not cell.state_calibrated:
        label += "; not state-calibrated"
    context.log.info(f"weights: {label}; ESS {diagnostics['effective_sample_size']:,.0f}")
    context.add_output_metadata(
        stage_metadata(
            "calibration",
            backend=backend,
            label=label,
            weight_diagnostics=MetadataValue.json(diagnostics),
        )
    )
    return weights


@asset_check(
    asset=calibrated_weights,
    blocking=True,
    partitions_def=product_geography_partitions,
    description="Weights finite, non-negative, not collapsed (ESS at least 1% of records).",
)
def weights_valid(
    context: AssetCheckExecutionContext, calibrated_weights: pd.Series
) -> AssetCheckResult:
    diagnostics = weight_diagnostics(calibrated_weights.to_numpy())
    collapsed = diagnostics["ess_share"] < 0.01
    passed = (
        diagnostics["non_finite_weights"] == 0
        and diagnostics["negative_weights"] == 0
        and diagnostics["weight_total"] > 0
        and not collapsed
    )
    return AssetCheckResult(
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            **diagnostics,
            "collapse_warning": collapsed,
            "summary": (
                f"{diagnostics['nonzero_weights']:,} nonzero, ESS "
                f"{diagnostics['effective_sample_size']:,.0f}, largest share "
                f"{diagnostics['largest_weight_share']:.2%}"
            ),
        },
    )
