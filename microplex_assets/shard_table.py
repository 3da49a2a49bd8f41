"""A backfill's shard rows: each shard's households and losses from the bundle its own
run published, and one comparison row per shard against its national fallback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd


def shard_losses(artifacts: Path, state: str, run_id: str) -> dict[str, Any]:
    """A shard's households (its manifest), held-in and held-out loss and its fallback's
    (its loss record), from its current bundle; empty unless that bundle is this run's
    (bundle folders end in the run id's first 8 characters)."""
    path = artifacts / "local" / state / "loss_record.json"
    if not path.exists() or not path.resolve().parent.name.endswith(run_id[:8]):
        return {}
    record = json.loads(path.read_text())
    manifest = json.loads((path.parent / "manifest.json").read_text())
    losses = record["losses"]

    def loss(method: str, split: str) -> float | None:
        value = losses.get(method, {}).get(split)
        return None if value is None else float(value)

    return {
        "households": manifest.get("record_counts", {}).get("household"),
        "train_loss": loss("candidate", "train"),
        "held_out_loss": loss("candidate", "held_out"),
        "fallback_train_loss": loss("national_fallback", "train"),
        "fallback_held_out_loss": loss("national_fallback", "held_out"),
    }


def shard_comparison(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per shard: its losses and its fallback's on the same state targets. A shard
    whose chain Dagster split over several runs (its ``run_profile`` alone first, when the
    unpartitioned parents join the backfill) succeeds when all of them did, takes their
    summed wall time and the losses of the run that published its bundle."""
    runs = cells[cells["stage"] == "shards"]
    losses = ["households", "train_loss", "fallback_train_loss", "held_out_loss",
              "fallback_held_out_loss"]  # fmt: skip
    shards = runs.groupby("cell", as_index=False).agg(
        success=("success", "all"), wall_s=("wall_s", "sum"), **{c: (c, "first") for c in losses}
    )
    shards["state"] = shards["cell"].str.split("|").str[1]
    shards["beats_fallback_held_in"] = shards["train_loss"] < shards["fallback_train_loss"]
    columns = ["state", "success", "wall_s", "households", "train_loss",
               "fallback_train_loss", "held_out_loss", "fallback_held_out_loss",
               "beats_fallback_held_in"]  # fmt: skip
    return shards[columns].sort_values("state").reset_index(drop=True)
