"""Stage 7 assets: the target registry, the target matrix, the eCPS-method baseline, the
calibrated weights and the scorecard whose gates (blocking asset checks) guard publication.
"""

import time
from typing import Any

import numpy as np
import pandas as pd
from dagster import (
    AssetExecutionContext,
    MetadataValue,
)

from microplex_assets.calibration.baselines import pinned_baseline_estimates
from microplex_assets.calibration.candidate_simulation import candidate_simulation
from microplex_assets.calibration.feasibility import require_consistent
from microplex_assets.calibration.fixed_records import fixed_household_ids, fixed_weights
from microplex_assets.calibration.matrix import (
    TargetMatrix,
    candidate_target_matrix,
    materialize_targets,
    targets_for_geography,
)
from microplex_assets.calibration.published_scores import (
    NATIONAL_CONTRIBUTIONS,
    fallback_estimates,
    load_published_bundle,
)
from microplex_assets.calibration.scorecard import (
    CANDIDATE,
    ECPS_METHOD,
    FALLBACK,
    Scorecard,
    evaluate_gates,
    losses_table,
    wins_and_losses_markdown,
)
from microplex_assets.calibration.simulation_arrays import SimulationArrays
from microplex_assets.calibration.solver_config import (
    ecps_method_config,
    solver_config,
)
from microplex_assets.calibration.target_quality import (
    dropped_targets,
    targets_kept_gate,
)
from microplex_assets.calibration.weight_health import weight_health, weights_healthy_gate
from microplex_assets.calibration.weights import (
    CalibrationRun,
    calibrate_weights,
    design_weights,
    solve_weights,
    weight_diagnostics,
)
from microplex_assets.code_version import TARGETS_CODE_VERSION
from microplex_assets.entities.bundle import EntityBundle
from microplex_assets.lineage import NATIONAL_US_RELEASE
from microplex_assets.partitions import product_geography_partitions
from microplex_assets.plots import loss_curves_png, png_markdown, save_png
from microplex_assets.publication.h5_export import write_policyengine_h5
from microplex_assets.source_plan.reuse import check_targets
from microplex_assets.stage_asset import context_cell, stage_asset, stage_metadata, table_metadata
from microplex_assets.targets.model import TargetSet
from microplex_assets.targets.registry import resolve_targets_with_report
from microplex_resources.artifact_store import ArtifactStore
from microplex_resources.build_settings import BuildSettings
from microplex_resources.policyengine_runtime import PolicyEngineRuntime


@stage_asset("calibration", code_version=TARGETS_CODE_VERSION)
def calibration_targets(
    context: AssetExecutionContext, build_settings: BuildSettings, policyengine: PolicyEngineRuntime
) -> TargetSet:
    """Every calibration target as a fact (value, period, variable, aggregation, entity, scope,
    geography, filters, family, group, source), resolved to the build year and content-hashed.

    Not partitioned: the registry is the same for every cell; each cell selects its own.
    """
    target_set, report = resolve_targets_with_report(build_settings.year, policyengine.system())
    require_consistent(target_set)  # two values for one quantity: refuse, naming both
    frame = target_set.to_frame()
    frame["level"] = np.where(frame["geography"] == "US", "national", "state")
    coverage = frame.groupby(["family", "level"]).size().unstack(fill_value=0).reset_index()
    context.log.info(f"{len(target_set):,} targets resolved; hash {target_set.content_hash[:12]}")
    context.add_output_metadata(
        stage_metadata(
            "calibration",
            targets=len(target_set),
            target_set_hash=target_set.content_hash,
            coverage=table_metadata(coverage, max_rows=100),
            registry_report=MetadataValue.json(report),
        )
    )
    return target_set


@stage_asset("calibration", partitions_def=product_geography_partitions)
def target_matrix(
    context: AssetExecutionContext,
    run_profile: dict[str, Any],
    entity_bundle: EntityBundle,
    calibration_targets: TargetSet,
    policyengine: PolicyEngineRuntime,
    artifact_store: ArtifactStore,
    build_settings: BuildSettings,
) -> TargetMatrix:
    """Each kept target's per-household contribution computed by policyengine-us on the
    candidate (sparse targets x households), the ledger of dropped targets with reasons,
    and the held-out split (whole groups, fixed by the run profile)."""
    cell = context_cell(context)
    work = artifact_store.work_dir(cell.product, cell.geography)
    year = int(run_profile["year"])
    check_targets(calibration_targets, run_profile)
    cell_targets = targets_for_geography(calibration_targets, cell.geography)
    started = time.perf_counter()
    candidate_h5 = work / f"candidate_{year}.h5"
    write_policyengine_h5(entity_bundle, candidate_h5, policyengine.system())
    context.log.info(
        f"computing {len(cell_targets):,} targets with policyengine-us, in slices of whole "
        f"states of at most {build_settings.microsim_slice_households:,} households ..."
    )
    design = design_weights(entity_bundle.household)
    national = TargetSet(tuple(t for t in calibration_targets if t.geography == "US"))
    simulation = candidate_simulation(
        candidate_h5,
        year,
        policyengine.system(),
        {"targets": cell_targets, **({"national": national} if cell.state_calibrated else {})},
        policyengine.reform_microsimulation,
        work / "matrix_slices",
        build_settings.microsim_slice_households,
        progress=context.log.info,
    )
    matrix = candidate_target_matrix(
        simulation,
        year,
        cell_targets,
        run_profile["calibration"]["held_out_groups"],
        cell.geography,
        fixed=fixed_weights(entity_bundle.household),
        progress=context.log.info,
        test_groups=run_profile["calibration"].get("test_groups", []),
        design=design,
        max_weight_ratio=run_profile["calibration"].get("max_weight_ratio"),
    )
    groups = tuple(matrix.ledger.loc[matrix.ledger["held_out"], "group"].unique())
    extra: dict[str, Any] = {"simulation_slices": len(simulation.slices)}
    if cell.state_calibrated:
        # The shard's share of every national target, published so the local|US fan-in
        # scores the whole suite without simulating all shards again.
        contributions = materialize_targets(SimulationArrays(simulation, year), national)
        contributions.save(work, prefix=NATIONAL_CONTRIBUTIONS)
        extra["national_contributions"] = len(contributions.targets)
        context.log.info(
            f"national contributions: {len(contributions.targets):,} of {len(national):,} "
            "national targets touched by this shard's records"
        )
    del simulation
    seconds = time.perf_counter() - started
    paths = matrix.save(work, matrix.aligned(design))
    ledger = matrix.ledger
    dropped = ledger[ledger["status"] == "dropped"]
    reasons = dropped["reason"].str.split(":").str[0].value_counts().rename_axis("reason")
    by_family = (
        ledger.assign(status=np.where(ledger["held_out"], "held_out", ledger["status"]))
        .groupby(["family", "status"])
        .size()
        .unstack(fill_value=0)
        .reset_index()
    )
    context.log.info(
        f"target matrix {matrix.matrix.shape} with {matrix.matrix.nnz:,} nonzeros in "
        f"{seconds:.0f}s; {len(dropped):,} targets dropped"
    )
    context.add_output_metadata(
        stage_metadata(
            "calibration",
            target_counts=MetadataValue.json(matrix.counts(loaded=len(cell_targets))),
            nonzeros=int(matrix.matrix.nnz),
            held_out_groups=MetadataValue.json(list(groups)),
            coverage_by_family=table_metadata(by_family, max_rows=100),
            dropped_by_reason=table_metadata(reasons.reset_index(name="targets")),
            dropped_examples=table_metadata(dropped[["name", "reason"]], max_rows=30),
            seconds=round(seconds, 1),
            ledger=MetadataValue.path(str(paths["ledger"])),
            **extra,
        )
    )
    return matrix


def report_run(context: AssetExecutionContext, run: CalibrationRun, matrix: TargetMatrix) -> None:
    """Log and attach the losses and weight diagnostics every weight asset shows."""
    weights = matrix.aligned(run.weights)
    train_loss = matrix.loss(weights, matrix.train)
    held_out_loss = matrix.loss(weights, ~matrix.train)
    context.log.info(
        f"{run.label}: train {train_loss:.4g}, held-out {held_out_loss:.4g} in {run.seconds:.1f}s"
    )
    context.add_output_metadata(
        stage_metadata(
            "calibration",
            backend=run.backend,
            label=run.label,
            train_loss=train_loss,
            held_out_loss=held_out_loss,
            seconds=round(run.seconds, 2),
            best_epoch=run.best_epoch if run.best_epoch is not None else -1,
            weight_diagnostics=MetadataValue.json(weight_diagnostics(run.weights.to_numpy())),
        )
    )


@stage_asset("calibration", partitions_def=product_geography_partitions)
def ecps_baseline_weights(
    context: AssetExecutionContext,
    run_profile: dict[str, Any],
    entity_bundle: EntityBundle,
    target_matrix: TargetMatrix,
) -> CalibrationRun:
    """The incumbent eCPS method reproduced on the same candidate and targets (DESIGN.md,
    Baselines): noisy survey weights, Adam lr 0.2 for 1,000 steps on log-weights and
    hard-concrete gates, final weights (no held-out selection)."""
    context_cell(context)
    config = ecps_method_config(seed=run_profile["calibration"]["seed"])
    run = solve_weights(
        target_matrix,
        design_weights(entity_bundle.household),
        config,
        ECPS_METHOD,
        "eCPS-method reproduction",
        # The spine's weights are facts of the data, not of a method: fixed for both.
        fixed_ids=fixed_household_ids(entity_bundle.household),
    )
    report_run(context, run, target_matrix)
    return run


@stage_asset("calibration", partitions_def=product_geography_partitions)
def calibrated_weights(
    context: AssetExecutionContext,
    run_profile: dict[str, Any],
    entity_bundle: EntityBundle,
    target_matrix: TargetMatrix,
    ecps_baseline_weights: CalibrationRun,
) -> CalibrationRun:
    """Household weights from the configured backend and solver method: national cells
    use chi-square calibration (``chi_square``: the optimum for each pull strength, the
    validation split choosing among the healthy ones), local shards the torch solver (the
    epoch with the lowest held-out loss among those within 1% of the best train loss).
    With ``family_limit_rounds`` it refits, raising the fit
    boost of each protected family whose train loss is above the eCPS method's train loss
    plus the protected-families gate's tolerance (only train targets move a boost)."""
    cell = context_cell(context)
    backend = run_profile["calibration"]["backend"]
    config = solver_config(run_profile) if backend != "none" else None
    baseline = ecps_baseline_weights.weights  # sets the family limits of the refits
    run = calibrate_weights(entity_bundle.household, backend, target_matrix, config, baseline)
    if run.family_limit_fit:
        context.log.info(f"family-limit refits: {run.family_limit_fit['summary']}")
    if not cell.state_calibrated:
        run.label += "; not state-calibrated"
    run.health = health_with_limits(run, entity_bundle.household, run_profile, cell)
    report_run(context, run, target_matrix)
    return run


def health_with_limits(
    run: CalibrationRun, household: pd.DataFrame, run_profile: dict[str, Any], cell: Any
) -> dict[str, Any]:
    """The weights' health (free households) and the weights_healthy limits of the cell:
    enforced for national|US, reported elsewhere."""
    settings = run_profile["calibration"]
    health = weight_health(run.weights, design_weights(household), fixed_household_ids(household))
    health["limits"] = {
        "min_ess_share": float(settings.get("weights_healthy_min_ess_share", 0.25)),
        "max_ratio": float(settings.get("weights_healthy_max_ratio", 50.0)),
        "enforced": cell.product == "national" and cell.geography == "US",
    }
    return health


@stage_asset("calibration", partitions_def=product_geography_partitions)
def pinned_baseline_scores(
    context: AssetExecutionContext,
    run_profile: dict[str, Any],
    target_matrix: TargetMatrix,
    policyengine: PolicyEngineRuntime,
) -> dict[str, Any]:
    """An optional pinned external H5 (e.g. the real eCPS: path, SHA256 and versions in the
    run profile) scored by policyengine-us on the same kept targets; empty when none is set."""
    context_cell(context)
    pin = run_profile.get("baseline_pin")
    if not pin:
        context.add_output_metadata(stage_metadata("calibration", configured=False))
        return {"configured": False}
    scores = pinned_baseline_estimates(
        pin, target_matrix, int(run_profile["year"]), policyengine.microsimulation
    )
    context.add_output_metadata(
        stage_metadata(
            "calibration",
            configured=True,
            path=MetadataValue.path(pin["path"]),
            sha256=scores["sha256"],
            targets_scored=scores["targets_scored"],
        )
    )
    return scores


# A shard's scorecard scores its fallback against the current national|US bundle.
@stage_asset("calibration", partitions_def=product_geography_partitions, deps=[NATIONAL_US_RELEASE])
def calibration_scorecard(
    context: AssetExecutionContext,
    run_profile: dict[str, Any],
    entity_bundle: EntityBundle,
    target_matrix: TargetMatrix,
    calibrated_weights: CalibrationRun,
    ecps_baseline_weights: CalibrationRun,
    pinned_baseline_scores: dict[str, Any],
    artifact_store: ArtifactStore,
) -> dict[str, Any]:
    """Train and held-out loss of the candidate, the eCPS-method baseline, the design weights
    and a pinned H5 on the same kept targets; per-family losses; the gate verdicts; the loss
    curves and the top target wins and losses by family."""
    cell = context_cell(context)
    work = artifact_store.work_dir(cell.product, cell.geography)
    card = scorecard_for(
        run_profile,
        entity_bundle,
        target_matrix,
        calibrated_weights,
        ecps_baseline_weights,
        pinned_baseline_scores,
    )
    if cell.state_calibrated:
        add_national_fallback(context, card, artifact_store, int(run_profile["year"]))
    gates = [
        *evaluate_gates(card),
        targets_kept_gate(card),
        weights_healthy_gate(calibrated_weights),
    ]
    histories = {
        run.backend: run.history
        for run in (calibrated_weights, ecps_baseline_weights)
        if len(run.history)
    }
    chosen = {
        run.backend: run.best_epoch
        for run in (calibrated_weights, ecps_baseline_weights)
        if run.best_epoch is not None
    }
    png = loss_curves_png(histories, f"Target loss ({cell.product}|{cell.geography})", chosen)
    curve_path = save_png(png, work / "loss_curves.png")
    wins_md = wins_and_losses_markdown(card, ECPS_METHOD)
    wins_path = work / "target_wins_losses.md"
    wins_path.write_text(wins_md + "\n")
    losses = losses_table(card)
    context.log.info("losses:\n" + losses.to_markdown(index=False, floatfmt=".4g"))
    context.add_output_metadata(
        stage_metadata(
            "calibration",
            losses=table_metadata(losses),
            family_losses=table_metadata(card.family_losses()),
            gates=table_metadata(pd.DataFrame([g.as_dict() for g in gates])),
            salient_aggregates=table_metadata(card.salient_aggregates()),
            dropped_targets=table_metadata(dropped_targets(target_matrix.ledger), max_rows=100),
            loss_curves=MetadataValue.md(png_markdown(png, "loss curves")),
            target_wins_losses=MetadataValue.md(wins_md),
        )
    )
    return {
        "card": card,
        "gates": gates,
        "artifacts": {"loss_curves.png": curve_path, "target_wins_losses.md": wins_path},
    }


def add_national_fallback(
    context: AssetExecutionContext, card: Scorecard, store: ArtifactStore, year: int
) -> None:
    """Score the shard's fallback (national|US weights on this state's records) on the
    shard's own kept targets. A fallback that cannot be loaded is recorded on the card, and
    ``beats_national_fallback`` then fails naming it (it never passes unjudged)."""
    card.fallback_required = True
    try:
        national = load_published_bundle(store.bundle_dir("national", "US"), year, "national|US")
        estimates = fallback_estimates(national, pd.Index(card.targets["name"]))
    except (FileNotFoundError, KeyError, ValueError) as error:
        card.fallback_error = f"{type(error).__name__}: {error}"
        card.notes.append(f"national fallback not scored: {card.fallback_error}")
        context.log.error(f"national fallback not scored: {card.fallback_error}")
        return
    card.estimates[FALLBACK] = estimates.to_numpy()
    card.fallback = national.provenance()


def scorecard_for(
    run_profile: dict[str, Any],
    entity_bundle: EntityBundle,
    matrix: TargetMatrix,
    candidate: CalibrationRun,
    ecps_method: CalibrationRun,
    pinned: dict[str, Any],
) -> Scorecard:
    """Every method's estimates on the kept targets; gates are WARN where the cell is not
    calibrated (its weights are a fallback to be scored, not a release to be judged)."""
    weights = {
        CANDIDATE: matrix.aligned(candidate.weights),
        ECPS_METHOD: matrix.aligned(ecps_method.weights),
        "design": matrix.aligned(design_weights(entity_bundle.household)),
    }
    card = Scorecard.from_matrix(matrix, weights)
    card.max_dropped_share = float(
        run_profile["calibration"].get("protected_family_max_dropped_share", 0.25)
    )
    card.target_loss_tolerance = float(run_profile["calibration"].get("target_loss_tolerance", 0.0))
    if pinned.get("configured"):
        card.estimates["pinned_h5"] = np.asarray(pinned["estimates"], dtype=float)
    if run_profile["calibration"]["backend"] == "none":
        card.gate_severity = "WARN"
        card.notes.append("cell not calibrated: gates reported, not enforced")
    return card
