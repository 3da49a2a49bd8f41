"""Fit weights: families weigh alike, protected families more, reported losses untouched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex_assets.calibration.fit_weights import family_fit_weights
from microplex_assets.calibration.solver_config import SolverConfig
from microplex_assets.calibration.weights import solve_weights
from tests.calibration.problems import synthetic_matrix


def test_families_weigh_alike_and_protected_ones_are_boosted():
    families = np.array(["wages"] * 6 + ["ssi"] * 2 + ["agi"] * 4)
    weights = family_fit_weights(families, ("ssi",), protected_boost=1.0)
    totals = pd.Series(weights).groupby(families).sum()
    assert np.allclose(totals.to_numpy(), totals.iloc[0])  # each family the same total
    assert weights.mean() == pytest.approx(1.0)
    boosted = family_fit_weights(families, ("ssi",), protected_boost=10.0)
    assert np.allclose(boosted[families == "ssi"], 10 * weights[families == "ssi"])
    assert np.allclose(boosted[families != "ssi"], weights[families != "ssi"])


def test_without_balancing_only_the_boost_applies():
    families = np.array(["wages", "wages", "ssi"])
    assert family_fit_weights(families, ("ssi",), 3.0, balance_families=False).tolist() == [
        1.0,
        1.0,
        3.0,
    ]


@pytest.mark.parametrize("boost", [0.0, -1.0, float("nan"), float("inf")])
def test_a_bad_boost_is_refused(boost):
    with pytest.raises(ValueError, match="protected_boost"):
        family_fit_weights(np.array(["ssi"]), ("ssi",), boost)


def test_the_boost_pulls_a_protected_family_closer_under_a_weight_penalty():
    """With a strong KL pull to the design weights, boosting the two SSI targets brings
    them nearer their values than the plain objective does."""
    matrix, truth = synthetic_matrix(households=200, seed=3)
    design = pd.Series(truth * 0.6, index=pd.Index(matrix.household_ids, name="household_id"))
    base = SolverConfig(
        epochs=300,
        learning_rate=0.05,
        l0_lambda=0.0,
        max_weight_ratio=5.0,
        kl_penalty=5.0,
        select_by_holdout=False,
        patience=None,
    )
    ssi = matrix.families == "ssi"

    def ssi_error(config: SolverConfig) -> float:
        run = solve_weights(matrix, design, config, "microplex", "test")
        estimates = matrix.estimates(matrix.aligned(run.weights))
        return float(np.abs(estimates[ssi] / matrix.values[ssi] - 1).mean())

    plain = ssi_error(base)
    boosted = ssi_error(SolverConfig(**{**base.__dict__, "protected_boost": 30.0}))
    assert boosted < 0.5 * plain
