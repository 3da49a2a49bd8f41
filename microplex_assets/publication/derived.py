"""Derived bundles: cells made from other cells' published bundles, not from records.

- ``national|<state>``: national|US restricted to the state's households with their
  national weights, labelled *not state-calibrated*, scored on the state's targets with
  the local shards' split, so every shard has a fallback to beat.
- ``local|US`` (mp-local-rich): all 51 ``local|<state>`` shards concatenated (ids offset),
  scored on every target: state targets from each shard's own matrix, national targets
  from the shards' published contributions summed. A missing shard is an error naming
  every missing one.

Both read only published files (H5, manifest, ``validation/`` matrices), so they run
without PolicyEngine in seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from microplex_assets.calibration.joint_local import ShardMatrices, joint_weights_by_shard
from microplex_assets.calibration.loss import target_loss
from microplex_assets.calibration.published_scores import (
    NATIONAL_CONTRIBUTIONS,
    PublishedBundle,
    load_published_bundle,
)
from microplex_assets.files import file_sha256
from microplex_assets.geography.states import STATE_FIPS, fips_from_code
from microplex_assets.publication.shard_checks import raise_shard_problems, shard_problems

NOT_STATE_CALIBRATED = "not state-calibrated"


class MissingShardsError(FileNotFoundError):
    """local|US was asked for while some local|<state> shards are not published."""


def entity_lookup(*manifests: dict[str, Any]) -> Callable[[str], str]:
    """A variable's entity from the manifests' ``exported_variables`` (entity -> names).

    Shards export different variables (a state whose records hold no net worth does not
    export it), so a fan-in looks each name up in every shard's manifest."""
    by_name: dict[str, str] = {}
    for manifest in manifests:
        for entity, names in manifest["exported_variables"].items():
            for name in names:
                if by_name.setdefault(name, entity) != entity:
                    raise ValueError(
                        f"variable {name} is a {by_name[name]} variable in one manifest "
                        f"and a {entity} variable in another"
                    )

    def entity_of(name: str) -> str:
        if name not in by_name:
            raise KeyError(f"variable {name} is not in any manifest's exported_variables")
        return by_name[name]

    return entity_of


def state_household_ids(h5_path: Path, year: int, state: str) -> np.ndarray:
    """Household ids of one state in a PolicyEngine H5 (by its ``state_fips``)."""
    with h5py.File(h5_path, "r") as h5:
        if "state_fips" not in h5:
            raise KeyError(f"{h5_path}: no state_fips array to restrict by")
        fips = h5["state_fips"][str(year)][...]
        ids = h5["household_id"][str(year)][...]
    chosen = ids[fips == fips_from_code(state)]
    if not len(chosen):
        raise ValueError(f"{h5_path}: no household in {state}")
    return chosen


def score_table(
    targets: pd.DataFrame, estimates: dict[str, pd.Series], held_out_groups: Iterable[str]
) -> pd.DataFrame:
    """Train / held-out / all loss per method and level (national, state) on ``targets``
    (name, value, is_national, group), with the shared target loss."""
    held_out = targets["group"].isin(list(held_out_groups)).to_numpy()
    national = targets["is_national"].to_numpy(bool)
    values = targets["value"].to_numpy(float)
    rows = []
    for method, series in estimates.items():
        estimate = series.reindex(targets["name"]).to_numpy(float)
        for level, mask in (("all", np.ones_like(national)), ("national", national),
                            ("state", ~national)):  # fmt: skip
            row: dict[str, Any] = {"method": method, "level": level, "targets": int(mask.sum())}
            for split, part in (("train", mask & ~held_out), ("held_out", mask & held_out),
                                ("all", mask)):  # fmt: skip
                row[split] = (
                    target_loss(estimate[part], values[part], national[part])
                    if part.any()
                    else None
                )
            rows.append(row)
    table = pd.DataFrame(rows)
    return table[table["targets"] > 0].reset_index(drop=True)


def state_fallback(
    national: PublishedBundle, state: str, year: int, held_out_groups: Iterable[str]
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """The state's national households, its targets with the fallback's estimates, and the
    score table; targets the national build dropped estimate 0."""
    ids = state_household_ids(national.h5_path, year, state)
    matrix = national.matrix()
    targets = matrix.targets[matrix.targets["geography"] == state].reset_index(drop=True)
    estimates = matrix.estimates_by_name(national.weights, pd.Index(targets["name"]))
    targets["estimate"] = estimates.to_numpy()
    scores = score_table(targets, {"national_fallback": estimates}, held_out_groups)
    return ids, targets, scores


def load_shards(
    root: Callable[[str], Path],
    year: int,
    states: Iterable[str] = STATE_FIPS,
    target_set_hash: str | None = None,
) -> dict[str, PublishedBundle]:
    """Every ``local|<state>`` bundle, or MissingShardsError listing each missing one.

    With ``target_set_hash`` each shard is first checked (``shard_checks``: its year, its
    target-set hash, its H5 against the manifest's SHA256) before its H5 is read, and
    ShardMismatchError names every shard refused."""
    shards, missing, refused, problems = {}, [], [], []
    for state in states:
        folder = Path(root(state))
        if target_set_hash is not None and (folder / "manifest.json").exists():
            found = shard_problems(f"local|{state}", folder, year, target_set_hash)
            if found:
                refused.append(state)
                problems.extend(found)
                continue
        try:
            shards[state] = load_published_bundle(root(state), year, f"local|{state}")
        except FileNotFoundError:
            missing.append(state)
    if missing:
        total = len(shards) + len(missing) + len(refused)
        raise MissingShardsError(
            f"local|US needs all {total} state shards; {len(missing)} "
            f"missing: {', '.join(missing)}. Materialize them first (make backfill, or the "
            "UI's backfill of local|<state>)."
            + (f" Refused as well: {'; '.join(problems)}" if problems else "")
        )
    raise_shard_problems(problems, refused, len(shards) + len(refused))
    return shards


def fan_in_estimates(shards: dict[str, PublishedBundle], names: pd.Index) -> pd.Series:
    """Every named target's local-rich estimate: each shard's state targets from its own
    matrix, national targets as the sum of the shards' contributions."""
    total = pd.Series(0.0, index=names)
    for shard in shards.values():
        own = shard.matrix()
        total = total.add(own.estimates_by_name(shard.weights, names), fill_value=0.0)
        contributions = shard.matrix(NATIONAL_CONTRIBUTIONS)
        total = total.add(contributions.estimates_by_name(shard.weights, names), fill_value=0.0)
    return total


def shard_table(shards: dict[str, PublishedBundle]) -> pd.DataFrame:
    """One row per shard: households, weight total, H5 hash, train and held-out loss."""
    rows = []
    for state, shard in shards.items():
        record = shard.folder / "loss_record.json"
        losses = pd.read_json(record, typ="series")["losses"] if record.exists() else {}
        rows.append(
            {
                "state": state,
                "households": int(len(shard.weights)),
                "weight_total": float(shard.weights.sum()),
                "train_loss": losses.get("candidate", {}).get("train"),
                "held_out_loss": losses.get("candidate", {}).get("held_out"),
                "fallback_train_loss": losses.get("national_fallback", {}).get("train"),
                "h5_sha256": file_sha256(shard.h5_path),
            }
        )
    return pd.DataFrame(rows)


def joint_fan_in(
    shards: dict[str, PublishedBundle], national_targets: pd.DataFrame
) -> tuple[dict[str, PublishedBundle], pd.DataFrame]:
    """The shards reweighted by one joint fit to national|US's national targets (its saved
    target table) and each
    state's own (``calibration.joint_local``), and the fit's per-block scores. The shards'
    own bundles are untouched: local|US publishes the joint weights, each shard keeps its
    state-only fit (mp-local-fast)."""
    matrices = [
        ShardMatrices(state, shard.matrix(), shard.matrix(NATIONAL_CONTRIBUTIONS), shard.weights)
        for state, shard in shards.items()
    ]
    weights, scores = joint_weights_by_shard(matrices, national_targets)
    return {
        state: replace(shard, weights=weights[state]) for state, shard in shards.items()
    }, scores
