"""Stage 8 assets: the gated H5 (work copy) and the immutable run bundle.

The H5 is written to the run's work folder first; the blocking schema gate judges that
file (``validation.schema_check``: its simulation is the benchmark suite's baseline), and
only when it passes does ``published_dataset`` copy H5, manifest, run profile, loss
record, aggregates and evidence into ``artifacts/<product>/<geography>/runs/<run_key>/``
in one atomic rename, with SHA256SUMS; nothing writes into it afterwards. Whether it
becomes ``current`` is decided in stage 9 (``release.assets.current_release``).
"""

import time
from pathlib import Path
from typing import Any

from dagster import (
    AssetExecutionContext,
    MetadataValue,
)

from microplex_assets.calibration.matrix import (
    MATRIX_PREFIX,
    TargetMatrix,
    saved_matrix_paths,
    targets_for_geography,
)
from microplex_assets.calibration.published_scores import NATIONAL_CONTRIBUTIONS
from microplex_assets.calibration.top_tail import top_tail_aggregates
from microplex_assets.calibration.weights import CalibrationRun, weight_diagnostics
from microplex_assets.entities.bundle import EntityBundle
from microplex_assets.files import dataset_filename, write_json_atomic
from microplex_assets.partitions import product_geography_partitions
from microplex_assets.publication.capital_gains_lots import (
    build_capital_gains_lots,
    lots_reconcile,
    write_capital_gains_lots,
)
from microplex_assets.publication.h5_export import write_policyengine_h5
from microplex_assets.publication.manifest import build_manifest, package_versions
from microplex_assets.publication.weighting import weighted_bundle
from microplex_assets.release.bundle import publish_run_bundle, run_key
from microplex_assets.release.dataflow import run_snapshot
from microplex_assets.release.pointer import adopt_legacy_bundle
from microplex_assets.sources.frame import ObservationFrame
from microplex_assets.stage_asset import context_cell, stage_asset, stage_metadata
from microplex_assets.targets.model import TargetSet
from microplex_assets.validation.aggregates import national_aggregates
from microplex_assets.validation.loss_record import build_loss_record
from microplex_assets.validation.microsim.benchmark_report import loss_record_summary
from microplex_resources.artifact_store import ArtifactStore
from microplex_resources.policyengine_runtime import PolicyEngineRuntime


@stage_asset("publication", partitions_def=product_geography_partitions)
def dataset_h5(
    context: AssetExecutionContext,
    run_profile: dict[str, Any],
    entity_bundle: EntityBundle,
    calibrated_weights: CalibrationRun,
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
        weighted_bundle(entity_bundle, calibrated_weights.weights), path, policyengine.system()
    )
    summary = report.as_dict()
    year = int(run_profile["year"])
    # The lots extension is built with the H5 so the benchmark suite (which indexes the
    # lots' basis) and publication read the same file.
    lots = build_capital_gains_lots(entity_bundle, year, run_profile["seeds"]["sampling"])
    lots_check = lots_reconcile(lots, entity_bundle)
    if not lots_check["reconciled"]:
        raise ValueError(f"capital-gains lots do not add up to the H5's gains: {lots_check}")
    lots_path = write_capital_gains_lots(
        lots, path.parent / f"capital_gains_lots_{year}.parquet", year=year
    )
    context.log.info(f"H5 written in {time.perf_counter() - started:.1f}s: {path}")
    context.add_output_metadata(
        stage_metadata(
            "publication",
            path=MetadataValue.path(str(path)),
            row_counts=MetadataValue.json(summary["record_counts"]),
            exported_variables=MetadataValue.json(summary["exported"]),
            excluded_columns=MetadataValue.json(summary["excluded"]),
            size_bytes=path.stat().st_size,
            capital_gains_lots=int(len(lots)),
        )
    )
    return {
        "path": str(path),
        "export": summary,
        "lots_path": str(lots_path),
        "lots_rows": int(len(lots)),
        "lots_reconciliation": lots_check,
    }


def bundle_aggregates(
    microsim_benchmarks: dict[str, Any],
    h5_path: Path,
    h5_sha256: str,
    year: int,
    policyengine: PolicyEngineRuntime,
) -> dict[str, Any]:
    """validation/aggregates.json's content, computed before publication so the bundle is
    whole when it is published: the benchmark suite's baseline read them from the same
    H5 bytes when it ran; otherwise one simulation of the gated H5 computes them."""
    computed = microsim_benchmarks.get("aggregates", {})
    if computed.get("h5_sha256") == h5_sha256:
        table, how = computed["table"], "benchmark suite baseline (same H5 bytes)"
    else:
        table = national_aggregates(policyengine.microsimulation(str(h5_path)), year)
        how = "simulation of the gated H5"
    return {"year": year, "h5_sha256": h5_sha256, "computed_by": how,
            "aggregates": table.to_dict(orient="records")}  # fmt: skip


def published_matrices(work: Path, with_national_contributions: bool) -> dict[str, Path]:
    """The saved target matrices a bundle publishes under validation/, so derived cells
    and notebooks score it without PolicyEngine (``published_scores``)."""
    prefixes = [MATRIX_PREFIX] + ([NATIONAL_CONTRIBUTIONS] if with_national_contributions else [])
    return {
        f"validation/{path.name}": path
        for prefix in prefixes
        for path in saved_matrix_paths(work, prefix).values()
    }


@stage_asset("publication", partitions_def=product_geography_partitions)
def published_dataset(
    context: AssetExecutionContext,
    run_profile: dict[str, Any],
    dataset_h5: dict[str, Any],
    cps_source_frame: ObservationFrame,
    tax_donor_frame: ObservationFrame,
    top_wealth_frame: ObservationFrame,
    entity_bundle: EntityBundle,
    calibration_targets: TargetSet,
    target_matrix: TargetMatrix,
    calibrated_weights: CalibrationRun,
    calibration_scorecard: dict[str, Any],
    pinned_baseline_scores: dict[str, Any],
    donor_ablation: dict[str, Any],
    microsim_benchmarks: dict[str, Any],
    policyengine: PolicyEngineRuntime,
    artifact_store: ArtifactStore,
) -> dict[str, Any]:
    """The immutable run bundle in artifacts/<product>/<geography>/runs/<run_key>/: H5,
    manifest.json, run_profile.json, loss_record.json (schema-validated, with the
    before/after-donor comparison), the capital-gains lots extension (parquet beside the
    H5), aggregates, loss curves, target wins/losses, the ledger, RUN.json, SHA256SUMS."""
    cell = context_cell(context)
    h5_path = Path(dataset_h5["path"])
    work = artifact_store.work_dir(cell.product, cell.geography)
    # The ledger and matrices are where target_matrix saved them: this run's folder in a
    # whole-chain run, the producing run's when only this asset is re-executed.
    matrix_folder = Path(target_matrix.saved_in) if target_matrix.saved_in else work
    weights = calibrated_weights.weights
    lots_path = Path(dataset_h5["lots_path"])
    lots_name = lots_path.name
    lots_check = dataset_h5["lots_reconciliation"]
    manifest = build_manifest(
        run_profile=run_profile,
        export=dataset_h5["export"],
        sources=[
            cps_source_frame.provenance,
            tax_donor_frame.provenance,
            top_wealth_frame.provenance,
        ],  # fmt: skip
        package_versions=package_versions(),
        h5_path=h5_path,
        weights=weights,
        system=policyengine.system(),
    )
    manifest["targets"] = {
        "target_set_hash": calibration_targets.content_hash,
        "registry_targets": len(calibration_targets),
        "kept_target_hash": target_matrix.targets.content_hash,
        "counts": target_matrix.counts(
            loaded=len(targets_for_geography(calibration_targets, cell.geography))
        ),
    }
    manifest["extensions"] = {
        lots_name: {"rows": dataset_h5["lots_rows"], "reconciliation": lots_check,
                    "loader": "microplex_assets.publication.capital_gains_lots."
                              "load_capital_gains_lots"}
    }  # fmt: skip
    top_tail = (
        top_tail_aggregates(target_matrix.top_tail, target_matrix.aligned(weights))
        if target_matrix.top_tail is not None
        else None
    )
    ablation = None if "skipped" in donor_ablation else donor_ablation
    record = build_loss_record(
        cell={"product": cell.product, "geography": cell.geography, "year": run_profile["year"]},
        run_id=context.run_id,
        target_set_hash=calibration_targets.content_hash,
        target_counts=manifest["targets"]["counts"],
        held_out_groups=sorted(set(target_matrix.groups[target_matrix.validation].tolist())),
        test_groups=sorted(set(target_matrix.groups[target_matrix.test].tolist())),
        card=calibration_scorecard["card"],
        gates=calibration_scorecard["gates"],
        weight_diagnostics=weight_diagnostics(weights.to_numpy()),
        calibration=calibrated_weights.summary(),
        pinned_baseline={k: v for k, v in pinned_baseline_scores.items() if k != "estimates"},
        donor_integration=ablation,
        top_tail=top_tail,
        microsim_benchmarks=loss_record_summary(microsim_benchmarks),
    )
    manifest["loss_record"] = {
        "train_loss": record["losses"]["candidate"]["train"],
        "held_out_loss": record["losses"]["candidate"]["held_out"],
        "validation_loss": record["losses"]["candidate"]["validation"],
        "test_loss": record["losses"]["candidate"]["test"],
    }
    aggregates = bundle_aggregates(
        microsim_benchmarks, h5_path, manifest["h5"]["sha256"], int(run_profile["year"]),
        policyengine,
    )  # fmt: skip
    files = {
        h5_path.name: h5_path,
        "validation/aggregates.json": write_json_atomic(work / "aggregates.json", aggregates),
        lots_name: lots_path,
        "manifest.json": write_json_atomic(work / "manifest.json", manifest),
        # Written from the input, not read from run_profile's work folder: a backfill that
        # also rebuilds the unpartitioned parents runs run_profile alone, in a run before
        # the rest of the chain (Dagster groups a run by what is ready), so that folder is
        # another run's.
        "run_profile.json": write_json_atomic(work / "run_profile.json", run_profile),
        "loss_record.json": write_json_atomic(work / "loss_record.json", record),
        "validation/target_ledger.csv": matrix_folder / "target_ledger.csv",
        **published_matrices(matrix_folder, cell.state_calibrated),
        **{f"validation/{name}": path for name, path in calibration_scorecard["artifacts"].items()},
        **{
            f"validation/{name}": path
            for name, path in microsim_benchmarks.get("files", {}).items()
        },
    }
    cell_dir = artifact_store.cell_dir(cell.product, cell.geography)
    adopted = adopt_legacy_bundle(cell_dir)
    if adopted:
        context.log.info(f"the in-place bundle of {cell.label} is now run bundle {adopted}")
    key = run_key(context.run_id)
    destination = publish_run_bundle(
        files,
        cell_dir,
        key,
        {"run_id": context.run_id, "product": cell.product, "geography": cell.geography,
         "year": int(run_profile["year"]), "partition": context.partition_key,
         "data_flow": run_snapshot(context, "published_dataset")},
    )  # fmt: skip
    published = {name: destination / name for name in files}
    context.log.info(f"published run bundle {key} to {destination}")
    context.add_output_metadata(
        stage_metadata(
            "publication",
            path=MetadataValue.path(str(destination)),
            h5=MetadataValue.path(str(published[h5_path.name])),
            h5_sha256=manifest["h5"]["sha256"],
            target_set_hash=calibration_targets.content_hash,
            row_counts=MetadataValue.json(manifest["record_counts"]),
            exported_variables=len(dataset_h5["export"]["exported_variables"]),
            size_bytes=published[h5_path.name].stat().st_size,
            # The per-variable table is in manifest.json; the UI gets the counts and reasons.
            ecps_coverage=MetadataValue.json(
                {k: v for k, v in manifest.get("ecps_coverage", {}).items() if k != "table"}
            ),
            run_key=key,
            bundle_files=MetadataValue.json(sorted(published)),
            top_tail=MetadataValue.json(top_tail),
            capital_gains_lots=dataset_h5["lots_rows"],
        )
    )
    return {
        "bundle_dir": str(destination),
        "cell_dir": str(cell_dir),
        "run_key": key,
        "h5_path": str(published[h5_path.name]),
        "year": run_profile["year"],
        "manifest": manifest,
        "loss_record": record,
        "files": sorted(published),
    }
