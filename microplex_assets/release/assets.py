"""Stage 9 release assets: self-promotion, the run index and the readiness dashboard.

Thin Dagster wrappers over ``pointer``, ``index`` and ``dashboard``. ``current_release``
runs only after every blocking check of the build passed (``bundle_complete`` on
``national_aggregates_report`` included, as blocking checks stop what is downstream)
and promotes the bundle when ``promotion_blockers`` finds nothing, which it checks
again from the bundle's own files: a passing build promotes itself.
"""

from pathlib import Path
from typing import Any

import pandas as pd
from dagster import AssetExecutionContext, Config, MetadataValue
from pydantic import Field

from microplex_assets.lineage import national_release_event
from microplex_assets.partitions import product_geography_partitions
from microplex_assets.release.dashboard import write_dashboard
from microplex_assets.release.gates import promotion_blockers
from microplex_assets.release.index import INDEX_NAME, sync, table
from microplex_assets.release.pointer import pointer_state, promote
from microplex_assets.stage_asset import context_cell, stage_asset, stage_metadata
from microplex_resources.artifact_store import ArtifactStore

DASHBOARD_NAME = "readiness.html"


class ReleaseConfig(Config):
    auto_promote: bool = Field(
        default=True,
        description="Make the run's bundle current when its blocking gates (and, for "
        "national|US, the benchmark suite) passed; false leaves it a candidate for "
        "`make promote RUN=...`.",
    )


@stage_asset("validation", partitions_def=product_geography_partitions)
def current_release(
    context: AssetExecutionContext,
    config: ReleaseConfig,
    published_dataset: dict[str, Any],
    national_aggregates_report: pd.DataFrame,
    artifact_store: ArtifactStore,
) -> dict[str, Any]:
    """Whether this run's bundle became the cell's ``current`` (self-promotion), and why
    not when it did not."""
    cell = context_cell(context)
    cell_dir = artifact_store.cell_dir(cell.product, cell.geography)
    key = published_dataset["run_key"]
    bundle = Path(published_dataset["bundle_dir"])
    blockers = promotion_blockers(bundle, cell.product, cell.geography)
    promoted = config.auto_promote and not blockers
    if promoted:
        promote(cell_dir, key, cell.product, cell.geography, reason=f"build {context.run_id}")
        context.log.info(f"{cell.label}: run {key} is now current")
    else:
        why = blockers or ["auto_promote is off"]
        context.log.warning(f"{cell.label}: run {key} stays a candidate: {'; '.join(why)}")
    state = pointer_state(cell_dir)
    if promoted and cell.label == "national|US":  # what the shards read changed
        context.log_event(
            national_release_event(state.current, str(bundle), f"build {context.run_id}")
        )
    context.add_output_metadata(
        stage_metadata(
            "validation",
            run_key=key,
            promoted=promoted,
            current=str(state.current),
            previous=str(state.previous),
            blockers=MetadataValue.json(blockers),
        )
    )
    return {"run_key": key, "promoted": promoted, "blockers": blockers,
            "current": state.current}  # fmt: skip


@stage_asset(
    "validation",
    partitions_def=product_geography_partitions,
    # Record cells only: a derived cell's asset lives on its own sub-grid and refreshes the
    # index and the dashboard itself when it publishes (derived_assets.publish_derived).
    deps=["current_release"],
)
def run_index(context: AssetExecutionContext, artifact_store: ArtifactStore) -> dict[str, Any]:
    """The DuckDB run index (``_release/run_index.duckdb``) brought up to date: every run
    bundle not yet indexed is added and the current pointers refreshed."""
    context_cell(context)
    path = artifact_store.release_dir() / INDEX_NAME
    added = sync(path, artifact_store.root_path())
    counts = table(path, "SELECT product || '|' || geography AS cell, count(*) AS bundles "
                   "FROM bundles GROUP BY 1 ORDER BY 1")  # fmt: skip
    context.add_output_metadata(
        stage_metadata(
            "validation",
            path=MetadataValue.path(str(path)),
            added=MetadataValue.json(added),
            bundles=int(counts["bundles"].sum()) if len(counts) else 0,
            cells=MetadataValue.md(counts.to_markdown(index=False)),
        )
    )
    return {"path": str(path), "added": added}


@stage_asset("validation", partitions_def=product_geography_partitions, deps=["run_index"])
def readiness_dashboard(context: AssetExecutionContext, artifact_store: ArtifactStore) -> str:
    """The readiness dashboard (``_release/readiness.html``), a self-contained page
    rendered from the run index: open the link in this asset's metadata."""
    context_cell(context)
    release = artifact_store.release_dir()
    path = write_dashboard(release / INDEX_NAME, release / DASHBOARD_NAME)
    context.add_output_metadata(
        stage_metadata(
            "validation",
            path=MetadataValue.path(str(path)),
            dashboard=MetadataValue.url(path.resolve().as_uri()),
            size_bytes=path.stat().st_size,
        )
    )
    return str(path)
