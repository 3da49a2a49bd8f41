"""local-rich as one joint calibration: every shard's records fitted together to the national
targets and every state's own targets (issue 17, item 4).

Each shard alone fits its state's 44 targets and nothing national, so the concatenated
shards overshoot national totals (national train loss 6-7 against national|US's 0.05). The
shards already publish what a joint fit needs, with no new simulation: their state
matrix (``target_matrix*``) and their records' contribution to every national target
(``national_contributions*``). Stacked, the national rows sum over every shard's records
and each state's rows see only its own shard's records (block diagonal):

    M = [ N_1  N_2  ...  N_51 ]   national targets (values from national|US's registry)
        [ S_1   0   ...   0   ]   state targets of shard 1
        [  0   S_2  ...   0   ]   ...

The loss (``loss.target_loss``) already gives national and state targets half the weight
each, so neither swamps the other. The split is kept: national targets keep national|US's
train / validation / test, state targets their shard's train / held-out; only train rows
are fitted and the validation rows choose the epoch. The shards' own weights start the fit
(they already fit their states), so the joint fit only has to move weight between states
and income cells to meet the national totals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from microplex_assets.calibration.loss import kish_ess, target_loss
from microplex_assets.calibration.matrix import SavedMatrix
from microplex_assets.calibration.solver import calibrate
from microplex_assets.calibration.solver_config import SolverConfig

# The joint solver: the shards' measured local settings (LOCAL_SOLVER: train-loss floor and
# per-target cap) would stop it as soon as the state rows fit, before the national rows
# move, so it runs the national solver's weight-health bounds instead, relative to the
# shards' own weights.
JOINT_SOLVER = SolverConfig(
    epochs=1_500,
    learning_rate=0.05,
    max_weight_ratio=20.0,
    kl_penalty=0.1,
    select_by_holdout=True,
    patience=None,
)


@dataclass
class ShardMatrices:
    """One shard's saved matrices and its published weights (by household_id)."""

    state: str
    own: SavedMatrix  # the state's targets (``target_matrix``)
    national: SavedMatrix  # its records' share of national targets
    weights: pd.Series


@dataclass
class JointProblem:
    """The stacked matrix, its target table and the shard of each column."""

    matrix: sp.csr_matrix
    targets: pd.DataFrame  # name, value, geography, is_national, split, block
    household_ids: np.ndarray  # per column (as published in its shard)
    shard: np.ndarray  # per column: the shard's state
    start: np.ndarray  # per column: the shard's published weight

    @property
    def values(self) -> np.ndarray:
        return self.targets["value"].to_numpy(dtype=float)

    @property
    def is_national(self) -> np.ndarray:
        return self.targets["is_national"].to_numpy(dtype=bool)

    def mask(self, split: str, block: str | None = None) -> np.ndarray:
        rows = self.targets["split"].eq(split).to_numpy(copy=True)
        if block is not None:
            rows &= self.targets["block"].eq(block).to_numpy()
        return rows

    def loss(self, weights: np.ndarray, mask: np.ndarray) -> float:
        estimates = np.asarray(self.matrix[mask] @ weights).ravel()
        return target_loss(estimates, self.values[mask], self.is_national[mask])


def _split_of(targets: pd.DataFrame) -> np.ndarray:
    """A saved target table's split (old tables carry only ``train``)."""
    if "split" in targets:
        return targets["split"].astype(str).to_numpy()
    return np.where(targets["train"].to_numpy(dtype=bool), "train", "validation")


def joint_problem(shards: list[ShardMatrices], national_targets: pd.DataFrame) -> JointProblem:
    """Stack the shards' matrices under the national targets (national|US's saved target
    table: its kept national-geography rows, values and split).

    A national target no shard record touches is still a row (all zeros): the joint fit
    then cannot meet it, and the loss says so rather than hiding it."""
    if not shards:
        raise ValueError("joint_problem needs at least one shard")
    national = national_targets[national_targets["geography"].eq("US")].reset_index(drop=True)
    if national.empty:
        raise ValueError("national_targets has no national (geography US) rows")
    row_of = pd.Series(np.arange(len(national)), index=pd.Index(national["name"]))
    data, rows, cols = [], [], []  # one COO triple list for the whole stacked matrix
    start, ids, owner, state_tables = [], [], [], []
    offset, next_row = 0, len(national)
    for shard in shards:
        columns = shard.own.household_ids
        position = pd.Index(columns).get_indexer(shard.national.household_ids)
        if len(position) != len(columns) or (position < 0).any():
            raise ValueError(
                f"shard {shard.state}: its target_matrix and national_contributions cover "
                "different households; expected one candidate's records in both"
            )
        share = shard.national.matrix.tocoo()
        national_row = row_of.reindex(shard.national.targets["name"]).to_numpy()
        keep = ~np.isnan(national_row[share.row])  # national targets national|US dropped
        data.append(share.data[keep])
        rows.append(national_row[share.row[keep]].astype(np.int64))
        cols.append(position[share.col[keep]] + offset)
        own = shard.own.matrix.tocoo()
        data.append(own.data)
        rows.append(own.row.astype(np.int64) + next_row)
        cols.append(own.col.astype(np.int64) + offset)
        state_tables.append(
            shard.own.targets.assign(split=_split_of(shard.own.targets), block=shard.state)
        )
        next_row += len(shard.own.targets)
        weights = shard.weights.reindex(columns)
        if weights.isna().any():
            raise KeyError(f"shard {shard.state}: published weights lack some matrix households")
        start.append(weights.to_numpy(dtype=float))
        ids.append(columns)
        owner.append(np.full(len(columns), shard.state))
        offset += len(columns)
    matrix = sp.coo_matrix(
        (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
        shape=(next_row, offset),
    ).tocsr()
    table = pd.concat(
        [
            national.assign(split=_split_of(national), block="national", is_national=True),
            pd.concat(state_tables, ignore_index=True).assign(is_national=False),
        ],
        ignore_index=True,
    )[["name", "value", "geography", "group", "is_national", "split", "block"]]
    return JointProblem(
        matrix, table, np.concatenate(ids), np.concatenate(owner), np.concatenate(start)
    )


def fit_joint(problem: JointProblem, config: SolverConfig = JOINT_SOLVER) -> np.ndarray:
    """Joint weights (one per column): train rows fitted, validation rows choose the epoch,
    test rows never reach the solver."""
    fitted = ~problem.mask("test")
    result = calibrate(
        problem.matrix[fitted],
        problem.values[fitted],
        problem.is_national[fitted],
        problem.mask("train")[fitted],
        np.maximum(problem.start, 1e-6),
        config,
    )
    return result.weights


def joint_scores(problem: JointProblem, weights: np.ndarray) -> pd.DataFrame:
    """Per block (national, then each state): train / validation / test loss of the shards'
    own weights (the old local|US) and of the joint weights, with the block's Kish ESS."""
    rows = []
    for block in dict.fromkeys(problem.targets["block"]):
        columns = slice(None) if block == "national" else problem.shard == block
        record: dict[str, object] = {"block": block}
        for split in ("train", "validation", "test"):
            mask = problem.mask(split, block)
            record[f"shards_{split}"] = problem.loss(problem.start, mask) if mask.any() else None
            record[f"joint_{split}"] = problem.loss(weights, mask) if mask.any() else None
        households = len(weights) if block == "national" else int(np.sum(columns))
        record["households"] = households
        record["joint_ess_share"] = kish_ess(weights[columns]) / max(households, 1)
        rows.append(record)
    return pd.DataFrame(rows)


def joint_weights_by_shard(
    shards: list[ShardMatrices], national_targets: pd.DataFrame, config: SolverConfig = JOINT_SOLVER
) -> tuple[dict[str, pd.Series], pd.DataFrame]:
    """The joint fit as each shard's new weights (by household_id, in the order of its
    published weights) and the per-block score table."""
    problem = joint_problem(shards, national_targets)
    weights = fit_joint(problem, config)
    by_shard = {}
    for shard in shards:
        columns = problem.shard == shard.state
        fitted = pd.Series(weights[columns], index=problem.household_ids[columns])
        by_shard[shard.state] = fitted.reindex(shard.weights.index).rename(shard.weights.name)
    return by_shard, joint_scores(problem, weights)
