"""The fan-in's joint reweighting: shard bundles reweighted by one fit (their own untouched),
and the concatenated H5's household weights replaced in place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from microplex_assets.calibration.matrix import SavedMatrix
from microplex_assets.calibration.published_scores import NATIONAL_CONTRIBUTIONS, PublishedBundle
from microplex_assets.entities.h5_combine import overwrite_household_weights
from microplex_assets.publication.derived import fan_in_estimates, joint_fan_in
from tests.calibration.test_joint_local import NATIONAL, national_targets, shard


@dataclass
class InMemoryBundle(PublishedBundle):
    """A published bundle whose saved matrices are already in memory."""

    own: SavedMatrix | None = None
    contributions: SavedMatrix | None = None

    def matrix(self, prefix: str = "target_matrix") -> SavedMatrix:
        return self.contributions if prefix == NATIONAL_CONTRIBUTIONS else self.own


def bundle(state: str, households: int, seed: int, offset: int) -> InMemoryBundle:
    s = shard(state, households, seed, offset)
    return InMemoryBundle(
        Path(state), Path(state), {}, s.weights, own=s.own, contributions=s.national
    )


def test_joint_fan_in_meets_national_targets_and_leaves_the_shards(tmp_path: Path) -> None:
    shards = {"VT": bundle("VT", 120, 1, 0), "WY": bundle("WY", 90, 2, 10_000)}
    table = national_targets([shard("VT", 120, 1, 0), shard("WY", 90, 2, 10_000)])
    before = {state: b.weights.copy() for state, b in shards.items()}
    joint, scores = joint_fan_in(shards, table)
    names = pd.Index(NATIONAL[:2])  # the fitted national targets
    target = table.set_index("name")["value"].reindex(names)
    own_error = (fan_in_estimates(shards, names) / target - 1).abs().max()
    joint_error = (fan_in_estimates(joint, names) / target - 1).abs().max()
    assert own_error > 0.25 and joint_error < 0.05
    for state, b in shards.items():
        pd.testing.assert_series_equal(b.weights, before[state])  # shards keep their own fit
        assert joint[state].weights.index.equals(b.weights.index)  # H5 order, for concatenation
    assert list(scores["block"]) == ["national", "VT", "WY"]


def test_overwrite_household_weights_replaces_in_place_and_checks_length(tmp_path: Path) -> None:
    path = tmp_path / "local.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("household_weight/2024", data=np.ones(3, dtype=np.float32))
    overwrite_household_weights(path, 2024, np.array([1.5, 2.5, 3.5]))
    with h5py.File(path, "r") as h5:
        assert h5["household_weight/2024"].dtype == np.float32
        np.testing.assert_array_equal(h5["household_weight/2024"][:], [1.5, 2.5, 3.5])
    with pytest.raises(ValueError, match="has 3 rows, 2 weights given"):
        overwrite_household_weights(path, 2024, np.array([1.0, 2.0]))
