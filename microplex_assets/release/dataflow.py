"""The run's data-flow snapshot at publication, kept in the bundle's RUN.json.

A bundle is published from inside its run, so the snapshot is taken then: each of the
nine stages is completed (all its assets materialized), failed, skipped (none ran and
the run is past it), deferred (assets that run after publication: the rest of stage 9)
or not selected. Read from Dagster's event records of the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import DagsterEventType

from microplex_assets.stages import STAGES

STAGE_GROUPS = tuple(stage.group for stage in STAGES)


def stage_snapshot(
    done: set[str],
    failed: set[str],
    asset_groups: Mapping[str, str],
    publishing: str,
) -> list[dict[str, Any]]:
    """One row per stage: status, assets done and not (yet) done. ``done`` holds assets
    materialized or whose step succeeded; ``publishing`` (the asset writing the bundle)
    counts as done and its stage as completed; later stages are deferred."""
    done = done | {publishing}
    publish_stage = STAGE_GROUPS.index(asset_groups.get(publishing, "publication")) + 1
    rows = []
    for number, group in enumerate(STAGE_GROUPS, start=1):
        assets = sorted(a for a, g in asset_groups.items() if g == group)
        finished = [a for a in assets if a in done]
        if not assets:
            status = "not selected"
        elif any(a in failed for a in assets):
            status = "failed"
        elif len(finished) == len(assets) or number == publish_stage:
            status = "completed"
        elif number > publish_stage:
            status = "deferred"
        else:
            status = "completed" if finished else "skipped"
        rows.append({"stage": number, "group": group, "status": status, "done": finished,
                     "not_done": [a for a in assets if a not in done]})  # fmt: skip
    return rows


def run_snapshot(context: Any, publishing: str) -> list[dict[str, Any]]:
    """``stage_snapshot`` of the running run, from its Dagster event records."""
    graph = context.job_def.asset_layer.asset_graph
    groups = {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys()}
    done, failed = set(), set()
    for entry in context.instance.all_logs(context.run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            done.add(event.asset_key.to_user_string())
        elif event.event_type == DagsterEventType.STEP_SUCCESS:
            done.add(event.step_key)
        elif event.event_type == DagsterEventType.STEP_FAILURE:
            failed.add(event.step_key)
    return stage_snapshot(done, failed, groups, publishing)
