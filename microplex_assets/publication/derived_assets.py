"""Stage 8 assets for derived cells: the ``national|<state>`` fallback bundle and the
``local|US`` fan-in. Each lives on its own sub-grid (``partitions``), so it exists only for
the cells it makes, and depends through a partition mapping on the ``published_dataset``
cells it is made from: the UI draws those edges, a backfill runs it after them, and the
automation condition below runs it once they are done (never at a fixed hour)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetSelection,
    AutomationCondition,
    MetadataValue,
    Output,
)

from microplex_assets.calibration.published_scores import load_published_bundle
from microplex_assets.entities.h5_combine import (
    concatenate_h5,
    overwrite_household_weights,
    restrict_h5,
)
from microplex_assets.files import dataset_filename, file_sha256, write_json_atomic
from microplex_assets.geography.states import STATE_FIPS
from microplex_assets.partitions import (
    FALLBACK_FROM_NATIONAL_US,
    FAN_IN_FROM_SHARDS,
    Cell,
    local_us_partitions,
    national_state_partitions,
)
from microplex_assets.publication.derived import (
    NOT_STATE_CALIBRATED,
    entity_lookup,
    fan_in_estimates,
    joint_fan_in,
    load_shards,
    score_table,
    shard_table,
    state_fallback,
)
from microplex_assets.publication.fan_in_gate import fan_in_schema_gate
from microplex_assets.release.bundle import publish_run_bundle, run_key
from microplex_assets.release.dashboard import write_dashboard
from microplex_assets.release.dataflow import run_snapshot
from microplex_assets.release.index import INDEX_NAME, sync
from microplex_assets.release.pointer import adopt_legacy_bundle, promote
from microplex_assets.run_profile.profile import resolve_run_profile
from microplex_assets.source_plan.reuse import check_targets
from microplex_assets.stage_asset import context_cell, stage_asset, stage_metadata, table_metadata
from microplex_assets.targets.model import TargetSet
from microplex_resources.artifact_store import ArtifactStore
from microplex_resources.build_settings import BuildSettings
from microplex_resources.policyengine_runtime import PolicyEngineRuntime


def when_upstream_cells_done() -> AutomationCondition:
    """Request a derived cell once the record cells it is made from have been updated and
    none is missing or still queued or running (a monthly shard schedule queues all 51 at
    once, so the fan-in waits for the last). The target registry is not a trigger: every
    national build rewrites it."""
    registry = AssetSelection.assets("calibration_targets")
    return (
        AutomationCondition.any_deps_updated().ignore(registry).since_last_handled()
        & ~AutomationCondition.any_deps_missing()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label("when its upstream cells are done")


def derived_profile(build_settings: BuildSettings, context: AssetExecutionContext) -> dict:
    """The derived cell's run profile, resolved as the ``run_profile`` asset does; derived
    cells resolve it themselves so that nothing but the record cells they are made from
    gates them."""
    return resolve_run_profile(build_settings.model_dump(), context_cell(context))


def derived_manifest(
    cell: Cell,
    run_profile: dict[str, Any],
    h5_path: Path,
    record_counts: dict[str, int],
    **extra: Any,
) -> dict[str, Any]:
    """What a derived bundle is, where it came from and what it holds."""
    return {
        "manifest_schema_version": 1,
        "cell": cell.label,
        "cell_meaning": cell.meaning,
        "state_calibrated": False if cell.product == "national" else "per shard",
        "derived_from": run_profile["derived_from"],
        "year": int(run_profile["year"]),
        "dataset": h5_path.name,
        "h5": {"sha256": file_sha256(h5_path), "size_bytes": h5_path.stat().st_size},
        "record_counts": record_counts,
        **extra,
    }


DASHBOARD_NAME = "readiness.html"  # release.assets.DASHBOARD_NAME (not imported: no cycle)


def publish_derived(
    context: AssetExecutionContext,
    artifact_store: ArtifactStore,
    files: dict[str, Path],
    year: int,
) -> tuple[Path, dict[str, Path]]:
    """Publish a derived cell's run bundle and make it current at once: a derived cell
    has no gates of its own (it is built from current bundles), so ``promote`` checks
    only that the bundle is intact. Returns the run folder and ``{name: path}``."""
    cell = context_cell(context)
    cell_dir = artifact_store.cell_dir(cell.product, cell.geography)
    adopt_legacy_bundle(cell_dir)
    key = run_key(context.run_id)
    info = {"run_id": context.run_id, "product": cell.product, "geography": cell.geography,
            "year": year, "partition": context.partition_key,
            "data_flow": run_snapshot(context, context.asset_key.to_user_string())}  # fmt: skip
    destination = publish_run_bundle(files, cell_dir, key, info)
    promote(cell_dir, key, cell.product, cell.geography, reason=f"derived build {context.run_id}")
    # A derived cell runs on its own sub-grid, apart from run_index and readiness_dashboard
    # (full grid): bring the index and the dashboard up to date here.
    release = artifact_store.release_dir()
    sync(release / INDEX_NAME, artifact_store.root_path())
    write_dashboard(release / INDEX_NAME, release / DASHBOARD_NAME)
    return destination, {name: destination / name for name in files}


@stage_asset(
    "publication",
    partitions_def=national_state_partitions,
    deps=[AssetDep("published_dataset", partition_mapping=FALLBACK_FROM_NATIONAL_US)],
    automation_condition=when_upstream_cells_done(),
)
def national_state_fallback(
    context: AssetExecutionContext, build_settings: BuildSettings, artifact_store: ArtifactStore
) -> Iterator[Output[dict[str, Any]]]:
    """national|<state>: the published national|US records of the state with their national
    weights (not state-calibrated), scored on the state's targets with the local shards'
    split: the fallback each local|<state> shard must beat. Needs national|US published."""
    cell = context_cell(context)
    run_profile = derived_profile(build_settings, context)
    year = int(run_profile["year"])
    national = load_published_bundle(
        artifact_store.bundle_dir("national", "US"), year, "national|US"
    )
    held_out = run_profile["calibration"]["held_out_groups"]
    ids, targets, scores = state_fallback(national, cell.geography, year, held_out)
    work = artifact_store.work_dir(cell.product, cell.geography)
    h5_path = work / dataset_filename(year)
    report = restrict_h5(
        national.h5_path, h5_path, ids, year, entity_of=entity_lookup(national.manifest)
    )
    manifest = derived_manifest(
        cell,
        run_profile,
        h5_path,
        report["record_counts"][str(year)],
        label=f"{NOT_STATE_CALIBRATED}: national|US weights restricted to {cell.geography}",
        national_bundle=national.provenance(),
        weight_total=report["household_weight_total"][str(year)],
        held_out_groups=list(held_out),
    )
    scores_path = write_json_atomic(
        work / "scores.json",
        {"cell": cell.label, "label": NOT_STATE_CALIBRATED, "scores": scores.to_dict("records"),
         "targets": targets.drop(columns=["filters"], errors="ignore").to_dict("records")},
    )  # fmt: skip
    manifest_path = write_json_atomic(work / "manifest.json", manifest)
    destination, published = publish_derived(
        context,
        artifact_store,
        {h5_path.name: h5_path, "manifest.json": manifest_path, "scores.json": scores_path},
        year,
    )
    state_row = scores[scores["level"] == "state"].iloc[0]
    context.log.info(
        f"{cell.label} ({NOT_STATE_CALIBRATED}): {len(ids):,} households; state-target loss "
        f"train {state_row['train']:.4g}, held-out {state_row['held_out']}"
    )
    yield Output(
        {"bundle_dir": str(destination), "manifest": manifest, "scores": scores},
        metadata=stage_metadata(
            "publication",
            label=f"{NOT_STATE_CALIBRATED} (national|US weights restricted to {cell.geography})",
            path=MetadataValue.path(str(destination)),
            households=len(ids),
            train_loss=float(state_row["train"]),
            scores=table_metadata(scores),
            bundle_files=MetadataValue.json(sorted(published)),
        ),
    )


def write_joint(work: Path, joint_scores: pd.DataFrame) -> Path:
    """The joint fit's per-block losses, for the bundle's validation folder."""
    path = work / "joint_fit.csv"
    joint_scores.to_csv(path, index=False)
    return path


@stage_asset(
    "publication",
    partitions_def=local_us_partitions,
    deps=[AssetDep("published_dataset", partition_mapping=FAN_IN_FROM_SHARDS)],
    automation_condition=when_upstream_cells_done(),
)
def local_rich_fanin(
    context: AssetExecutionContext,
    build_settings: BuildSettings,
    calibration_targets: TargetSet,
    artifact_store: ArtifactStore,
    policyengine: PolicyEngineRuntime,
) -> Iterator[Output[dict[str, Any]]]:
    """local|US (mp-local-rich): the 51 published state shards concatenated into one H5
    (ids offset per shard) and scored on the whole target suite next to national|US.
    A missing shard is an error listing every missing one; an H5 failing the schema gate
    (``fan_in_gate``) is never published."""
    cell = context_cell(context)
    run_profile = derived_profile(build_settings, context)
    year = int(run_profile["year"])
    check_targets(calibration_targets, run_profile)  # a stored registry of another year
    shards = load_shards(
        lambda state: artifact_store.bundle_dir("local", state),
        year,
        target_set_hash=calibration_targets.content_hash,
    )
    context.log.info(f"fan-in of {len(shards)} shards")
    work = artifact_store.work_dir(cell.product, cell.geography)
    h5_path = work / dataset_filename(year)
    report = concatenate_h5(
        [shard.h5_path for shard in shards.values()],
        h5_path,
        entity_of=entity_lookup(*(shard.manifest for shard in shards.values())),
        labels=list(shards),
    )
    suite = calibration_targets.to_frame()
    suite["is_national"] = suite["geography"] == "US"
    estimates: dict[str, pd.Series] = {}
    national_note = "national|US not published: local-rich scored alone, shards' own weights"
    joint_scores = None
    try:
        national = load_published_bundle(
            artifact_store.bundle_dir("national", "US"), year, "national|US"
        )
    except FileNotFoundError:
        national = None
    if national is not None:
        kept = national.matrix().targets["name"]
        suite = suite[suite["name"].isin(kept)].reset_index(drop=True)
        estimates["national|US"] = national.matrix().estimates_by_name(
            national.weights, pd.Index(suite["name"])
        )
        estimates["shards' own weights"] = fan_in_estimates(shards, pd.Index(suite["name"]))
        context.log.info(f"joint fit of {len(shards)} shards to national and state targets ...")
        shards, joint_scores = joint_fan_in(shards, national.matrix().targets)
        overwrite_household_weights(
            h5_path, year, pd.concat([s.weights for s in shards.values()]).to_numpy()
        )
        national_note = (
            f"joint fit (calibration/joint_local.py) to national|US's kept national targets "
            f"and each state's own; scored on national|US's {len(suite):,} kept targets"
        )
    weight_total = float(sum(s.weights.sum() for s in shards.values()))
    context.log.info("schema gate of the local|US H5 ...")
    schema_gate = fan_in_schema_gate(h5_path, year, policyengine, work, weight_total)
    context.log.info(
        f"schema gate passed in {schema_gate['seconds']}s: whole file loaded, "
        f"{schema_gate['sample_households']} sampled households computed"
    )
    estimates["local|US"] = fan_in_estimates(shards, pd.Index(suite["name"]))
    held_out = run_profile["calibration"]["held_out_groups"]
    scores = score_table(suite, estimates, held_out)
    shard_rows = shard_table(shards)
    shards_csv = work / "shards.csv"
    shard_rows.to_csv(shards_csv, index=False)
    manifest = derived_manifest(
        cell,
        run_profile,
        h5_path,
        report["record_counts"][str(year)],
        shards={state: shard.provenance() for state, shard in shards.items()},
        filled_variables=report["filled"],
        scoring=national_note,
        held_out_groups=list(held_out),
        weight_total=weight_total,
        joint_fit=joint_scores is not None,
        schema_gate=schema_gate,
    )
    destination, published = publish_derived(
        context,
        artifact_store,
        {
            h5_path.name: h5_path,
            "manifest.json": write_json_atomic(work / "manifest.json", manifest),
            "scores.json": write_json_atomic(
                work / "scores.json", {"cell": cell.label, "scores": scores.to_dict("records")}
            ),
            "validation/shards.csv": shards_csv,
            **(
                {}
                if joint_scores is None
                else {"validation/joint_fit.csv": write_joint(work, joint_scores)}
            ),
        },
        year,
    )
    context.log.info("local|US scores:\n" + scores.to_markdown(index=False, floatfmt=".4g"))
    yield Output(
        {"bundle_dir": str(destination), "manifest": manifest, "scores": scores},
        metadata=stage_metadata(
            "publication",
            path=MetadataValue.path(str(destination)),
            shards=len(shards),
            households=int(report["record_counts"][str(year)]["household"]),
            scoring=national_note,
            schema_gate=MetadataValue.json(schema_gate),
            scores=table_metadata(scores),
            joint_fit=None
            if joint_scores is None
            else table_metadata(joint_scores, max_rows=len(STATE_FIPS) + 1),
            shard_table=table_metadata(shard_rows, max_rows=len(STATE_FIPS)),
            bundle_files=MetadataValue.json(sorted(published)),
        ),
    )
