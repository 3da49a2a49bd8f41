"""The donor-ablation asset: the same cell built without donor integration, scored next to
the real candidate (one more PolicyEngine simulation; off with ``donor_ablation: false``)."""

import time
from typing import Any

import pandas as pd
from dagster import AssetExecutionContext, MetadataValue

from microplex_assets.calibration.donor_ablation import ablation_comparison
from microplex_assets.calibration.fixed_records import fixed_weights
from microplex_assets.calibration.matrix import (
    TargetMatrix,
    candidate_target_matrix,
    targets_for_geography,
)
from microplex_assets.calibration.solver_config import solver_config
from microplex_assets.calibration.top_tail import top_tail_aggregates
from microplex_assets.calibration.weights import CalibrationRun, calibrate_weights, design_weights
from microplex_assets.candidate.make import make_candidate
from microplex_assets.entities.build import build_entity_bundle
from microplex_assets.geography.states import STATE_FIPS
from microplex_assets.partitions import product_geography_partitions
from microplex_assets.publication.h5_export import write_policyengine_h5
from microplex_assets.sources.frame import ObservationFrame
from microplex_assets.stage_asset import context_cell, stage_asset, stage_metadata, table_metadata
from microplex_assets.targets.model import TargetSet
from microplex_resources.artifact_store import ArtifactStore
from microplex_resources.policyengine_runtime import PolicyEngineRuntime


@stage_asset("calibration", partitions_def=product_geography_partitions)
def donor_ablation(
    context: AssetExecutionContext,
    run_profile: dict[str, Any],
    seed_frame: ObservationFrame,
    top_wealth_frame: ObservationFrame,
    calibration_targets: TargetSet,
    target_matrix: TargetMatrix,
    calibrated_weights: CalibrationRun,
    policyengine: PolicyEngineRuntime,
    artifact_store: ArtifactStore,
) -> dict[str, Any]:
    """The same cell built without donor integration (same backend, spine, targets, split
    and solver), scored next to the real candidate: train and held-out loss and the top-tail
    aggregates before and after donor integration. Costs one more PolicyEngine simulation;
    ``donor_ablation: false`` in the build settings skips it."""
    cell = context_cell(context)
    profile = run_profile["donor_integration"]
    backend = run_profile["calibration"]["backend"]
    after_weights = target_matrix.aligned(calibrated_weights.weights)
    skip = None
    if not profile["ablation"]:
        skip = "donor_ablation is off in the build settings"
    elif not profile["enabled"]:
        skip = "donor integration is off: nothing to compare"
    elif backend == "none":
        skip = "cell is not calibrated"
    if skip:
        context.log.info(f"donor ablation skipped: {skip}")
        result: dict[str, Any] = {"skipped": skip}
        if target_matrix.top_tail is not None:
            result["after_donor_integration"] = top_tail_aggregates(
                target_matrix.top_tail, after_weights
            )
        context.add_output_metadata(stage_metadata("calibration", skipped=skip))
        return result
    started = time.perf_counter()
    year = int(run_profile["year"])
    required = STATE_FIPS.values() if cell.state_fips is None else [cell.state_fips]
    candidate, _ = make_candidate(
        seed_frame,
        run_profile["synthesis_backend"],
        run_profile["seeds"]["sampling"],
        required,
        top_wealth_frame if run_profile["spine"]["enabled"] else None,
        cell.state_fips,
    )
    bundle = build_entity_bundle(candidate, seed=run_profile["seeds"]["sampling"])
    h5 = artifact_store.work_dir(cell.product, cell.geography) / f"ablation_candidate_{year}.h5"
    write_policyengine_h5(bundle, h5, policyengine.system())
    context.log.info("donor ablation: computing the pre-donor candidate's targets ...")
    before = candidate_target_matrix(
        policyengine.microsimulation(h5),
        year,
        targets_for_geography(calibration_targets, cell.geography),
        run_profile["calibration"]["held_out_groups"],
        cell.geography,
        fixed=fixed_weights(bundle.household),
        progress=context.log.info,
        test_groups=run_profile["calibration"].get("test_groups", []),
        design=design_weights(bundle.household),
        max_weight_ratio=run_profile["calibration"].get("max_weight_ratio"),
    )
    run = calibrate_weights(bundle.household, backend, before, solver_config(run_profile))
    before.save(
        h5.parent / "ablation", before.aligned(design_weights(bundle.household))
    )  # the pre-donor matrix, for notebooks and benchmarks/calibration.py
    result = ablation_comparison(before, before.aligned(run.weights), target_matrix, after_weights)
    result["seconds"] = round(time.perf_counter() - started, 1)
    rows = [
        {"population": label.replace("_", " "), **result[label]}
        for label in ("before_donor_integration", "after_donor_integration")
    ]
    context.log.info(
        "donor ablation: held-out loss "
        f"{result['before_donor_integration']['held_out_loss']:.4g} before, "
        f"{result['after_donor_integration']['held_out_loss']:.4g} after"
    )
    context.add_output_metadata(
        stage_metadata(
            "calibration",
            comparison=table_metadata(pd.DataFrame(rows)),
            common_targets=MetadataValue.json(result["common_targets"]),
            seconds=result["seconds"],
        )
    )
    return result
