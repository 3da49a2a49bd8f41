"""Asset checks on ``calibrated_weights``: ``weights_valid`` and ``weights_healthy`` (the
rules live in ``weight_health`` so the scorecard's gate list uses the same function)."""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    asset_check,
)

from microplex_assets.calibration.assets import calibrated_weights
from microplex_assets.calibration.scorecard_checks import gate_check_result
from microplex_assets.calibration.weight_health import WEIGHTS_HEALTHY_GATE, weights_healthy_gate
from microplex_assets.calibration.weights import CalibrationRun, weight_diagnostics
from microplex_assets.partitions import product_geography_partitions


@asset_check(
    asset=calibrated_weights,
    blocking=True,
    partitions_def=product_geography_partitions,
    description="Weights finite, non-negative, not collapsed (ESS at least 1% of records).",
)
def weights_valid(
    context: AssetCheckExecutionContext, calibrated_weights: CalibrationRun
) -> AssetCheckResult:
    diagnostics = weight_diagnostics(calibrated_weights.weights.to_numpy())
    collapsed = diagnostics["ess_share"] < 0.01
    concentrated = diagnostics["largest_weight_share"] > 0.01
    passed = (
        diagnostics["non_finite_weights"] == 0
        and diagnostics["negative_weights"] == 0
        and diagnostics["weight_total"] > 0
        and not collapsed
    )
    warnings = [
        w
        for w, on in (
            ("ESS below 1% of records", collapsed),
            ("one household holds over 1% of the weight", concentrated),
        )
        if on
    ]
    return AssetCheckResult(
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            **diagnostics,
            "collapse_warning": collapsed,
            "warnings": MetadataValue.json(warnings),
            "summary": (
                f"{diagnostics['nonzero_weights']:,} nonzero, ESS "
                f"{diagnostics['effective_sample_size']:,.0f}, largest share "
                f"{diagnostics['largest_weight_share']:.2%}"
                + (f"; WARNING: {'; '.join(warnings)}" if warnings else "")
            ),
        },
    )


@asset_check(
    asset=calibrated_weights,
    name=WEIGHTS_HEALTHY_GATE,
    blocking=True,
    partitions_def=product_geography_partitions,
    description="national|US: Kish ESS of the non-spine households at least 25% of them and "
    "no final / design weight ratio above 50 (both in build settings); other cells: "
    "reported as a warning, not enforced.",
)
def weights_healthy(
    context: AssetCheckExecutionContext, calibrated_weights: CalibrationRun
) -> AssetCheckResult:
    return gate_check_result(weights_healthy_gate(calibrated_weights))
