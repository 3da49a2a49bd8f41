"""The derived cells' automation condition on the stand-in graph: the fan-in is requested
once every shard it maps to is materialized, not before, and only once per update."""

from __future__ import annotations

from dagster import (
    AssetDep,
    DagsterInstance,
    Definitions,
    asset,
    evaluate_automation_conditions,
    materialize,
)

from microplex_assets.partitions import geography_mapping
from microplex_assets.publication.derived_assets import when_upstream_cells_done
from tests.orchestration.standin_defs import STATES, chain, frames, local_us


@asset(
    name="fan_in",
    partitions_def=local_us,
    deps=[AssetDep(chain, partition_mapping=geography_mapping({s: "US" for s in STATES}))],
    automation_condition=when_upstream_cells_done(),
)
def fan_in_when_ready() -> None:
    """The stand-in fan-in with the real derived assets' condition."""


def requested(defs: Definitions, instance: DagsterInstance, cursor=None):
    result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    keys = sorted(str(k) for k in result.get_requested_partitions(fan_in_when_ready.key))
    return keys, result.cursor


def test_fan_in_waits_for_every_shard_then_runs_once(tmp_path, monkeypatch):
    monkeypatch.setenv("STANDIN_LOG", str(tmp_path / "log"))
    defs = Definitions(assets=[frames, chain, fan_in_when_ready])
    with DagsterInstance.ephemeral() as instance:
        keys, cursor = requested(defs, instance)
        assert keys == []  # no shard yet
        materialize([frames, chain], partition_key="DE|local", instance=instance,
                    selection=[chain, frames])  # fmt: skip
        keys, cursor = requested(defs, instance, cursor)
        assert keys == []  # VT still missing
        materialize([frames, chain], partition_key="VT|local", instance=instance,
                    selection=[chain])  # fmt: skip
        keys, cursor = requested(defs, instance, cursor)
        assert keys == ["US|local"]
        keys, cursor = requested(defs, instance, cursor)
        assert keys == []  # handled: not requested again until a shard is rebuilt
