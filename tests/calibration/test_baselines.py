"""The pinned external H5 baseline: verified by SHA256, scored by policyengine-us on our targets."""

from __future__ import annotations

import numpy as np
import pytest

from microplex_assets.calibration.baselines import BaselinePinError, pinned_baseline_estimates
from microplex_assets.calibration.matrix import materialize_targets
from microplex_assets.calibration.simulation_arrays import SimulationArrays
from microplex_assets.files import file_sha256
from microplex_assets.targets.model import Target, TargetFilter, TargetSet
from microplex_resources.policyengine_runtime import policyengine_microsimulation

SOURCE = {"agency": "test", "table": "hand-made", "year": 2024}


def targets() -> TargetSet:
    common = dict(period=2024, entity="person", scope="population", source=SOURCE)
    return TargetSet((
        Target("wages", 1e9, variable="employment_income", aggregation="sum", geography="US",
               family="wages", group="wages", **common),
        Target("children/TX", 1e5, variable="age", aggregation="count", geography="TX",
               family="population", group="age", filters=(TargetFilter("age", 0, 18),),
               **common),
    ))  # fmt: skip


def our_matrix(path):
    return materialize_targets(
        SimulationArrays(policyengine_microsimulation(path), 2024), targets()
    )


def test_a_pinned_h5_is_scored_with_its_own_weights(good_h5):
    matrix = our_matrix(good_h5)
    pin = {"path": str(good_h5), "sha256": file_sha256(good_h5), "versions": {"pe": "x"}}
    scores = pinned_baseline_estimates(pin, matrix, 2024, policyengine_microsimulation)
    arrays = SimulationArrays(policyengine_microsimulation(good_h5), 2024)
    weights = arrays.values("household_weight", "household").astype(float)
    assert scores["targets_scored"] == 2
    assert np.allclose(scores["estimates"], matrix.estimates(weights))
    wages = float(arrays.simulation.calculate("employment_income", 2024).sum())
    assert scores["estimates"][0] == pytest.approx(wages, rel=1e-5)
    assert scores["sha256"] == pin["sha256"] and scores["versions"] == {"pe": "x"}


def test_a_file_whose_bytes_differ_from_the_pin_is_refused(good_h5):
    matrix = our_matrix(good_h5)
    pin = {"path": str(good_h5), "sha256": "0" * 64}
    with pytest.raises(BaselinePinError, match="differs from the pinned 0000"):
        pinned_baseline_estimates(pin, matrix, 2024, policyengine_microsimulation)


def test_a_missing_pinned_file_is_named(good_h5, tmp_path):
    matrix = our_matrix(good_h5)
    missing = tmp_path / "ecps_2024.h5"
    with pytest.raises(BaselinePinError, match="ecps_2024.h5 does not exist"):
        pinned_baseline_estimates(
            {"path": str(missing)}, matrix, 2024, policyengine_microsimulation
        )
