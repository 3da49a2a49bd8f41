"""Promote and rollback as Dagster jobs (launchable from the UI with config; ``make
promote RUN=...`` / ``make rollback`` run the same jobs through ``release.cli``). After
the pointer moves, the run index and the dashboard are refreshed so they say which
bundle is current."""

from typing import Any

from dagster import Config, Failure, OpExecutionContext, job, op
from pydantic import Field

from microplex_assets.lineage import national_release_event
from microplex_assets.release.dashboard import write_dashboard
from microplex_assets.release.index import INDEX_NAME, sync
from microplex_assets.release.pointer import (
    PromotionRefused,
    RollbackError,
    pointer_state,
    promote,
    rollback,
)
from microplex_resources.artifact_store import ArtifactStore


class CellConfig(Config):
    product: str = Field(default="national", description="national or local")
    geography: str = Field(default="US", description="US or a state code, e.g. CA")
    reason: str = Field(default="", description="Why (kept in releases.json)")


class PromoteConfig(CellConfig):
    run_key: str = Field(description="The run bundle to make current: runs/<run_key>/")


def _refresh(artifact_store: ArtifactStore) -> None:
    release = artifact_store.release_dir()
    sync(release / INDEX_NAME, artifact_store.root_path())
    write_dashboard(release / INDEX_NAME, release / "readiness.html")


def _report(context: OpExecutionContext, config: CellConfig, store: ArtifactStore) -> dict:
    cell_dir = store.cell_dir(config.product, config.geography)
    state = pointer_state(cell_dir)
    _refresh(store)
    if (config.product, config.geography) == ("national", "US"):  # what the shards read
        context.log_event(
            national_release_event(state.current, str(cell_dir / "current"), config.reason)
        )
    context.log.info(f"{config.product}|{config.geography}: current {state.current}")
    return {"current": state.current, "stack": state.stack}


@op(description="Make a run bundle current; refused (naming each failed gate) when its "
    "blocking gates did not all pass, or national|US lacks a passing benchmark suite.")  # fmt: skip
def promote_bundle(
    context: OpExecutionContext, config: PromoteConfig, artifact_store: ArtifactStore
) -> dict[str, Any]:
    cell = artifact_store.cell_dir(config.product, config.geography)
    try:
        promote(cell, config.run_key, config.product, config.geography, config.reason or "manual")
    except PromotionRefused as error:
        raise Failure(str(error)) from error
    return _report(context, config, artifact_store)


@op(description="Make the bundle that was current before the current one current again.")
def rollback_bundle(
    context: OpExecutionContext, config: CellConfig, artifact_store: ArtifactStore
) -> dict[str, Any]:
    cell = artifact_store.cell_dir(config.product, config.geography)
    try:
        rollback(cell, config.product, config.geography, config.reason or "manual")
    except RollbackError as error:
        raise Failure(str(error)) from error
    return _report(context, config, artifact_store)


@job(description="Promote a run bundle of a cell to current (config: product, geography, "
     "run_key).")  # fmt: skip
def promote_release():
    promote_bundle()


@job(description="Roll a cell's current pointer back to the previous bundle.")
def rollback_release():
    rollback_bundle()


RELEASE_JOBS = (promote_release, rollback_release)
