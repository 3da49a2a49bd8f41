"""Fit weights: families weigh alike, protected families more, reported losses untouched."""

from __future__ import annotations

from dataclasses import replace as dc_replace

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from microplex_assets.calibration.fit_weights import family_fit_weights
from microplex_assets.calibration.solver_config import SolverConfig
from microplex_assets.calibration.weights import household_count_scale, solve_weights
from microplex_assets.targets.model import TargetSet
from microplex_assets.targets.state_tables import NATIONAL_HOUSEHOLDS_TARGET
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


def _with_household_count(count: float):
    """The synthetic matrix with its first target turned into the household count."""
    matrix, truth = synthetic_matrix(households=100, seed=5)
    targets = list(matrix.targets)
    targets[0] = dc_replace(targets[0], name=NATIONAL_HOUSEHOLDS_TARGET, value=count)
    dense = matrix.matrix.toarray()
    dense[0] = 1.0
    return dc_replace(
        matrix, matrix=sparse.csr_matrix(dense), targets=TargetSet(tuple(targets))
    ), truth


def test_design_weights_are_scaled_to_the_household_count_spine_kept():
    matrix, _ = _with_household_count(5_000.0)
    initial = np.full(100, 80.0)
    fixed = matrix.household_ids[:10]  # ten spine households keep their weight 80
    factor = household_count_scale(matrix, initial, fixed)
    scaled = initial * factor
    assert scaled.sum() == pytest.approx(5_000.0)
    assert np.all(factor[:10] == 1.0)
    assert np.allclose(factor[10:], (5_000.0 - 800.0) / 7_200.0)


def test_no_household_count_target_means_no_scaling_and_an_impossible_one_is_refused():
    matrix, _ = synthetic_matrix(households=50, seed=1)
    assert np.all(household_count_scale(matrix, np.full(50, 3.0)) == 1.0)
    small, _ = _with_household_count(100.0)
    with pytest.raises(ValueError, match="census/households/count/US"):
        household_count_scale(small, np.full(100, 80.0), small.household_ids[:10])
