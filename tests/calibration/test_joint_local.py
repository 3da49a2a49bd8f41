"""local-rich as one joint fit: the stacked matrix reproduces the fan-in's estimates, the fit
meets national totals the shards alone miss, and test targets never move the weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from microplex_assets.calibration.joint_local import (
    ShardMatrices,
    fit_joint,
    joint_problem,
    joint_scores,
)
from microplex_assets.calibration.matrix import SavedMatrix
from microplex_assets.calibration.solver_config import SolverConfig

NATIONAL = ("nat/a", "nat/b", "nat/c", "nat/test")
FAST = SolverConfig(
    epochs=400, learning_rate=0.05, max_weight_ratio=20.0, kl_penalty=0.01, patience=None
)


def shard(state: str, households: int, seed: int, id_offset: int) -> ShardMatrices:
    """A shard whose weights fit its 6 state targets exactly but put 30% too much on the
    national ones (what a shard fitted to its state alone does)."""
    rng = np.random.default_rng(seed)
    ids = np.arange(households) + id_offset
    weights = rng.uniform(50, 150, households)
    own_dense = rng.lognormal(0, 1, (6, households)) * (rng.random((6, households)) < 0.7)
    own_targets = pd.DataFrame(
        {
            "name": [f"{state}/t{i}" for i in range(6)],
            "value": own_dense @ weights,
            "geography": state,
            "group": [f"{state}/fit"] * 5 + [f"{state}/held"],
            "train": [True] * 5 + [False],
        }
    )
    national_dense = rng.lognormal(0, 1, (len(NATIONAL), households))
    order = rng.permutation(households)  # national columns in another order than own's
    national = SavedMatrix(
        sp.csr_matrix(national_dense[:, order]),
        pd.DataFrame({"name": list(NATIONAL), "value": 0.0}),
        ids[order],
    )
    own = SavedMatrix(sp.csr_matrix(own_dense), own_targets, ids)
    return ShardMatrices(state, own, national, pd.Series(weights, index=ids))


def national_targets(shards: list[ShardMatrices], scale: float = 1 / 1.3) -> pd.DataFrame:
    total = sum(
        s.national.estimates_by_name(s.weights, pd.Index(NATIONAL)).to_numpy() for s in shards
    )
    return pd.DataFrame(
        {
            "name": list(NATIONAL),
            "value": total * scale,
            "geography": "US",
            "group": ["nat/fit", "nat/fit", "nat/valid", "nat/test"],
            "split": ["train", "train", "validation", "test"],
        }
    )


@pytest.fixture(scope="module")
def shards() -> list[ShardMatrices]:
    return [shard("VT", 120, 1, 0), shard("WY", 90, 2, 10_000)]


def test_stacked_matrix_reproduces_each_shard_and_the_fan_in_sum(shards) -> None:
    problem = joint_problem(shards, national_targets(shards))
    estimates = problem.matrix @ problem.start
    national = problem.targets["block"].eq("national").to_numpy()
    fan_in = sum(
        s.national.estimates_by_name(s.weights, pd.Index(NATIONAL)).to_numpy() for s in shards
    )
    np.testing.assert_allclose(estimates[national], fan_in, rtol=1e-12)
    for s in shards:
        rows = problem.targets["block"].eq(s.state).to_numpy()
        np.testing.assert_allclose(estimates[rows], s.own.targets["value"], rtol=1e-12)
    assert problem.matrix.shape == (4 + 12, 210)


def test_joint_fit_meets_national_totals_and_keeps_states(shards) -> None:
    problem = joint_problem(shards, national_targets(shards))
    weights = fit_joint(problem, FAST)
    scores = joint_scores(problem, weights).set_index("block")
    assert scores.loc["national", "shards_train"] > 0.05  # 30% over: about 0.09
    assert scores.loc["national", "joint_train"] < 0.1 * scores.loc["national", "shards_train"]
    for state in ("VT", "WY"):
        assert scores.loc[state, "joint_train"] < 0.02
    assert (weights > 0).all()
    assert np.max(weights / problem.start) <= 20.0 * (1 + 1e-6)


def test_test_targets_never_move_the_weights(shards) -> None:
    table = national_targets(shards)
    first = fit_joint(joint_problem(shards, table), FAST)
    moved = table.assign(
        value=np.where(table["split"].eq("test"), table["value"] * 7, table["value"])
    )
    second = fit_joint(joint_problem(shards, moved), FAST)
    np.testing.assert_array_equal(first, second)


def test_mismatched_shard_households_are_refused(shards) -> None:
    broken = shard("VT", 120, 1, 0)
    broken.national.household_ids = broken.national.household_ids + 1
    with pytest.raises(ValueError, match="shard VT: its target_matrix and national_contributions"):
        joint_problem([broken], national_targets(shards))
