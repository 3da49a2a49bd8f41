"""Fit weights: families weigh alike, protected families more, reported losses untouched."""

from __future__ import annotations

from dataclasses import replace as dc_replace

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from microplex_assets.calibration.fit_weights import (
    family_fit_weights,
    fit_to_family_limits,
    raised_boosts,
)
from microplex_assets.calibration.solver_config import SolverConfig
from microplex_assets.calibration.weights import (
    calibrate_weights,
    household_count_scale,
    protected_family_limits,
    solve_weights,
    train_family_losses,
)
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


def _kl_pull_problem() -> tuple:
    """200 synthetic households whose design weights sit 40% under the truth, and a solver
    with a strong KL pull (5.0) and a ratio bound of 5: one fit cannot reach every target."""
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
    return matrix, design, base


def test_the_boost_pulls_a_protected_family_closer_under_a_weight_penalty():
    """With a strong KL pull to the design weights, boosting the two SSI targets brings
    them nearer their values than the plain objective does."""
    matrix, design, base = _kl_pull_problem()
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


def test_per_family_boosts_replace_the_protected_boost():
    families = np.array(["wages", "wages", "ssi", "agi"])
    weights = family_fit_weights(
        families, ("ssi", "wages"), 10.0, balance_families=False, family_boosts={"ssi": 70.0}
    )
    assert weights.tolist() == [10.0, 10.0, 70.0, 1.0]
    with pytest.raises(ValueError, match="family_boosts"):
        family_fit_weights(families, ("ssi",), 1.0, family_boosts={"ssi": 0.0})


def test_only_families_over_their_limit_have_their_boost_raised():
    boosts = {"ssi": 10.0, "wages": 10.0, "snap": 10.0}
    losses = {"ssi": 0.02, "wages": 0.01, "snap": 1.0}
    limits = {"ssi": 0.01, "wages": 0.05, "snap": 0.01}
    raised = raised_boosts(boosts, losses, limits, margin=1.0, max_step=10.0)
    assert raised["ssi"] == pytest.approx(40.0)  # (0.02 / 0.01)^2 = 4x
    assert raised["wages"] == 10.0  # within its limit: unchanged
    assert raised["snap"] == pytest.approx(100.0)  # 10,000x wanted, capped at 10x


def test_family_limit_refits_bring_a_protected_family_within_its_train_limit():
    """Under a strong KL pull one SSI fit misses its limit; the refits raise only SSI's
    boost (never wages', which is within its limit) until SSI's train loss is within it,
    and the run reports every round."""
    matrix, design, base = _kl_pull_problem()
    config = dc_replace(
        base,
        balance_families=True,
        protected_boost=1.0,
        family_limit_rounds=4,
    )
    one_fit = solve_weights(matrix, design, config, "microplex", "one fit")
    before = train_family_losses(matrix, matrix.aligned(one_fit.weights), ("ssi", "wages"))
    limits = {"ssi": before["ssi"] / 20, "wages": before["wages"] * 2}
    run = solve_weights(matrix, design, config, "microplex", "refits", family_limits=limits)
    rounds = run.family_limit_fit["rounds"]
    assert rounds[0]["boosts"] == {"ssi": 1.0, "wages": 1.0}
    assert rounds[0]["losses"]["ssi"] == pytest.approx(before["ssi"])
    assert len(rounds) > 1
    assert all(r["boosts"]["wages"] == 1.0 for r in rounds)
    assert rounds[-1]["boosts"]["ssi"] > 1.0
    after = train_family_losses(matrix, matrix.aligned(run.weights), ("ssi", "wages"))
    assert after["ssi"] <= limits["ssi"]
    assert run.family_limit_fit["chosen_round"] == len(rounds) - 1
    # without limits (or rounds) the run is the single fit, bit for bit
    plain = solve_weights(matrix, design, config, "microplex", "no limits")
    assert np.array_equal(plain.weights.to_numpy(), one_fit.weights.to_numpy())
    assert plain.family_limit_fit == {}


def test_family_limits_are_judged_on_train_targets_only():
    matrix, truth = synthetic_matrix(households=50, seed=2)
    weights = truth * 0.9
    train = matrix.train.copy()
    ssi = np.flatnonzero(matrix.families == "ssi")
    train[ssi[1]] = False  # one SSI target held out
    held = dc_replace(matrix, train=train)
    values = held.values.copy()
    losses = train_family_losses(held, weights, ("ssi",))
    targets = list(held.targets)
    targets[ssi[1]] = dc_replace(targets[ssi[1]], value=values[ssi[1]] * 5)
    moved = dc_replace(held, targets=TargetSet(tuple(targets)))
    assert train_family_losses(moved, weights, ("ssi",)) == losses
    limits = protected_family_limits(held, weights)
    assert limits["ssi"] == pytest.approx(losses["ssi"] + max(0.05 * losses["ssi"], 0.005))


def test_a_round_worse_than_the_best_backs_off_towards_the_best_boosts():
    """A boost past 50 'collapses' the stub fit (as the ESS floor of epoch selection does on
    the national matrix); the refits back off geometrically and then creep up to a pass."""

    def fit(boosts):
        return np.array([boosts["ssi"]]), None

    def losses_of(weights):
        return {"ssi": 1.0 / weights[0] if weights[0] <= 50 else 10.0}

    fitted = fit_to_family_limits(
        fit, losses_of, {"ssi": 0.03}, {"ssi": 10.0}, rounds=5, margin=0.9, max_step=10.0
    )
    boosts = [r["boosts"]["ssi"] for r in fitted.rounds]
    assert boosts[:3] == pytest.approx([10.0, 100.0, np.sqrt(1_000.0)])
    assert fitted.rounds[1]["excess"] > fitted.rounds[0]["excess"]  # the collapse
    assert fitted.rounds[-1]["over_limit"] == {}  # stopped at the first pass
    assert fitted.chosen_round == len(fitted.rounds) - 1 == 3
    assert 1.0 / fitted.boosts["ssi"] <= 0.03


def test_calibrate_weights_takes_its_family_limits_from_the_baseline_weights():
    """The build path: limits from the baseline (eCPS-method) weights' train family losses;
    here the baseline hits every target, so each limit is the gate's 0.005 floor."""
    matrix, truth = synthetic_matrix(households=60, seed=4)
    household = pd.DataFrame({"household_id": matrix.household_ids, "household_weight": truth})
    baseline = pd.Series(truth, index=pd.Index(matrix.household_ids, name="household_id"))
    config = SolverConfig(
        epochs=20, l0_lambda=0.0, select_by_holdout=False, patience=None, family_limit_rounds=1
    )
    run = calibrate_weights(household, "microplex", matrix, config, baseline)
    limits = run.family_limit_fit["limits"]
    assert set(limits) == {"ssi", "snap", "wages"}  # the protected families with targets
    assert all(v == pytest.approx(0.005, abs=1e-6) for v in limits.values())
    assert calibrate_weights(household, "microplex", matrix, config).family_limit_fit == {}


def test_the_population_boost_pulls_the_population_family_closer():
    """``population_boost`` raises the population family as ``protected_boost`` raises the
    protected ones: relabelled as population, the partnership targets come nearer."""
    matrix, design, base = _kl_pull_problem()
    relabelled = TargetSet(
        tuple(
            dc_replace(t, family="population") if t.family == "partnership_s_corp" else t
            for t in matrix.targets
        )
    )
    matrix = dc_replace(matrix, targets=relabelled)
    population = matrix.families == "population"

    def population_error(config: SolverConfig) -> float:
        run = solve_weights(matrix, design, config, "microplex", "test")
        estimates = matrix.estimates(matrix.aligned(run.weights))
        return float(np.abs(estimates[population] / matrix.values[population] - 1).mean())

    plain = population_error(base)
    boosted = population_error(SolverConfig(**{**base.__dict__, "population_boost": 30.0}))
    assert boosted < 0.5 * plain


def test_population_boost_covers_both_demographic_families_unless_a_refit_names_one():
    from microplex_assets.calibration.fit_weights import demographic_boosts

    assert demographic_boosts(10.0) == {"population": 10.0, "children": 10.0}
    assert demographic_boosts(10.0, {"children": 3.0, "ssi": 20.0}) == {
        "population": 10.0,
        "children": 3.0,
        "ssi": 20.0,
    }
    assert demographic_boosts(1.0) is None
    assert demographic_boosts(1.0, {"ssi": 20.0}) == {"ssi": 20.0}
    families = np.array(["population", "children", "children", "ssi"])
    weights = family_fit_weights(families, ("ssi",), 5.0, True, demographic_boosts(10.0))
    # balanced: each family 4/3 in total; children's two terms share theirs, x10
    assert weights.tolist() == pytest.approx([40 / 3, 20 / 3, 20 / 3, 20 / 3])
