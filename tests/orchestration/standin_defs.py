"""A tiny stand-in for the asset graph, with the same shape: an unpartitioned parent, a
record chain on a product x geography grid with a blocking check, and a fan-in on a
sub-grid mapped onto the shards. Loaded by the daemon (and its runs) in
``test_backfill_daemon.py``; each materialization appends a line to $STANDIN_LOG."""

import os
from collections.abc import Iterator
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetIn,
    Definitions,
    asset,
    multi_asset_check,
)

from microplex_assets.partitions import geography_mapping, sub_grid

STATES = ["DE", "VT"]
grid = sub_grid(["national", "local"], ["US", *STATES])
local_us = sub_grid(["local"], ["US"])


def record(line: str) -> None:
    with open(Path(os.environ["STANDIN_LOG"]), "a") as out:
        out.write(line + "\n")


@asset(code_version="1")
def frames() -> int:
    record("frames")
    return 10


@asset(partitions_def=grid)
def chain(context: AssetExecutionContext, frames: int) -> int:
    record(f"chain {context.partition_key}")
    return frames + len(context.partition_key)


# Partitioned and blocking, like the real gates (gate_checks.blocking_gate_check).
@multi_asset_check(
    specs=[AssetCheckSpec("positive", asset="chain", blocking=True, partitions_def=grid)],
    ins={"value": AssetIn(key="chain")},
)
def chain_positive(value: int) -> Iterator[AssetCheckResult]:
    yield AssetCheckResult(asset_key="chain", check_name="positive", passed=value > 0)


@asset(
    partitions_def=local_us,
    deps=[AssetDep(chain, partition_mapping=geography_mapping({s: "US" for s in STATES}))],
)
def fan_in(context: AssetExecutionContext) -> None:
    record(f"fan_in {context.partition_key}")


defs = Definitions(assets=[frames, chain, fan_in], asset_checks=[chain_positive])
