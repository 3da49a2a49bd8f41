"""Chi-square calibration (calibration/chi_square.py): optimal, bounded, validation-chosen."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from microplex_assets.calibration.chi_square import choose_alpha
from microplex_assets.calibration.loss import count_normalisation, kish_ess
from microplex_assets.calibration.solver import calibrate
from microplex_assets.calibration.solver_config import SolverConfig


def _problem(seed: int = 0, households: int = 300, targets: int = 30):
    rng = np.random.default_rng(seed)
    dense = rng.lognormal(3, 1, (targets, households)) * (rng.random((targets, households)) < 0.3)
    truth = rng.uniform(50, 150, households)
    values = dense @ truth * rng.uniform(0.9, 1.1, targets)  # a little inconsistent
    is_national = np.arange(targets) < 10
    train = np.arange(targets) % 4 != 0
    design = truth * rng.uniform(0.5, 2.0, households)
    return sp.csr_matrix(dense), values, is_national, train, design


def _config(**overrides) -> SolverConfig:
    return SolverConfig(method="chi_square", l0_lambda=0.0, max_weight_ratio=5.0, **overrides)


def test_each_path_point_is_the_optimum_of_its_objective():
    """KKT in the box: free coordinates have zero gradient, bound ones point outwards."""
    matrix, values, national, train, design = _problem()
    alpha = 0.01
    result = calibrate(matrix, values, national, train, design, _config(chi_square_alphas=(alpha,)))
    ratios = result.weights / design
    assert ratios.min() >= 1 / 5 - 1e-12 and ratios.max() <= 5 + 1e-12
    # the objective's gradient in the ratios, written out independently of the solver
    rows = np.flatnonzero(train)
    scale = count_normalisation(national[rows]) / len(rows)
    share = design / design.sum()

    def gradient_at(weights: np.ndarray) -> np.ndarray:
        residual = (matrix[rows] @ weights - values[rows] + 1.0) / (values[rows] + 1.0)
        fit = 2 * (matrix[rows].T @ (scale * residual / (values[rows] + 1.0))) * design
        return fit + 2 * alpha * share * (weights / design - 1.0)

    gradient = gradient_at(result.weights)
    at_low, at_high = ratios <= 1 / 1.5 + 1e-9, ratios >= 1.5 - 1e-9
    assert at_low.any() or at_high.any()  # the box binds somewhere: a real KKT check
    size = np.abs(gradient_at(design)).max()  # the gradient where the fit starts
    assert np.abs(gradient[~at_low & ~at_high]).max() <= 1e-4 * size
    assert (gradient[at_low] >= -1e-4 * size).all() and (gradient[at_high] <= 1e-4 * size).all()


def test_a_weaker_pull_fits_closer_and_validation_chooses_the_alpha():
    matrix, values, national, train, design = _problem(seed=1)
    alphas = (10.0, 1.0, 0.1, 0.01)
    result = calibrate(matrix, values, national, train, design, _config(chi_square_alphas=alphas))
    history = result.history
    assert list(history["alpha"]) == list(alphas[: len(history)])
    assert history["train_loss"].is_monotonic_decreasing
    # the chosen point is the lowest held-out loss on the path, and its weights are returned
    assert result.best_epoch == int(history["holdout_loss"].idxmin())
    assert result.holdout_loss == pytest.approx(history["holdout_loss"].min())
    assert result.train_loss == pytest.approx(history["train_loss"][result.best_epoch])


def test_the_ess_floor_limits_the_choice_and_ends_the_path():
    matrix, values, national, train, design = _problem(seed=2)
    alphas = (1.0, 0.1, 0.01, 0.001, 0.0001)
    loose = calibrate(matrix, values, national, train, design, _config(chi_square_alphas=alphas))
    floor = float(loose.history["ess_share"].iloc[1]) - 1e-9  # only the first two reach it
    held = calibrate(
        matrix, values, national, train, design,
        _config(chi_square_alphas=alphas, min_ess_share=floor),
    )  # fmt: skip
    assert held.best_epoch <= 1
    assert kish_ess(held.weights) / len(design) >= floor
    assert len(held.history) <= len(loose.history)


def test_choose_alpha_takes_the_healthy_lowest_held_out_loss():
    history = pd.DataFrame(
        {
            "epoch": [0, 1, 2, 3],
            "holdout_loss": [0.5, 0.4, 0.2, 0.1],
            "ess_share": [0.5, 0.4, 0.3, 0.2],
        }
    )
    assert choose_alpha(history, 0.25) == 2
    assert choose_alpha(history, 0.0) == 3
    assert choose_alpha(history, 0.9) == 3  # none reaches the floor: all compete
    no_holdout = history.assign(holdout_loss=np.nan)
    assert choose_alpha(no_holdout, 0.25) == 2  # the closest healthy fit


def test_the_band_fit_stops_pulling_inside_the_band():
    """fit_loss "band": the optimum of sum max(0, |e| - band)^2 + alpha chi2 (KKT written out
    independently). Targets the box can reach end at the band's edge, pulled no further."""
    matrix, values, national, train, design = _problem(seed=3)
    band, alpha = 0.05, 1e-4
    config = _config(chi_square_alphas=(alpha,), fit_loss="band", fit_loss_scale=band)
    result = calibrate(matrix, values, national, train, design, config)
    rows = np.flatnonzero(train)
    scale = count_normalisation(national[rows]) / len(rows)
    share = design / design.sum()

    def relative(weights: np.ndarray) -> np.ndarray:
        return (matrix[rows] @ weights - values[rows] + 1.0) / (values[rows] + 1.0)

    error = relative(result.weights)
    excess = np.sign(error) * np.maximum(np.abs(error) - band, 0.0)
    gradient = 2 * (matrix[rows].T @ (scale * excess / (values[rows] + 1.0))) * design
    gradient += 2 * alpha * share * (result.weights / design - 1.0)
    ratios = result.weights / design
    at_low, at_high = ratios <= 1 / 5 + 1e-9, ratios >= 5 - 1e-9
    size = np.abs(2 * (matrix[rows].T @ (scale * relative(design) / (values[rows] + 1.0)))).max()
    assert np.abs(gradient[~at_low & ~at_high]).max() <= 1e-4 * size * design.max()
    assert np.abs(error).max() <= band + 1e-3
    # the squared fit pulls them to ~0: the band fit leaves them near the edge instead
    squared = calibrate(
        matrix, values, national, train, design, _config(chi_square_alphas=(alpha,))
    )
    assert np.abs(relative(squared.weights)).max() < 1e-3
    assert np.median(np.abs(error)) > band / 2


@pytest.mark.parametrize(
    "overrides",
    [{"l0_lambda": 1e-5}, {"fit_loss": "huber"}, {"ess_penalty": 0.1}, {"init_noise_sd": 0.1}],
)
def test_settings_the_method_cannot_honour_are_refused(overrides):
    matrix, values, national, train, design = _problem()
    config = SolverConfig(
        method="chi_square", max_weight_ratio=5.0, **{"l0_lambda": 0.0, **overrides}
    )
    with pytest.raises(ValueError, match="chi_square"):
        calibrate(matrix, values, national, train, design, config)


def test_an_unknown_method_is_refused():
    matrix, values, national, train, design = _problem()
    with pytest.raises(ValueError, match="'adam' or 'chi_square'"):
        calibrate(matrix, values, national, train, design, SolverConfig(method="newton"))


def test_the_household_count_boost_brings_the_count_nearer():
    """A household count the other targets pull away from lands nearer with its boost."""
    from dataclasses import replace

    from microplex_assets.calibration.weights import solve_weights
    from microplex_assets.targets.model import TargetSet
    from microplex_assets.targets.state_tables import NATIONAL_HOUSEHOLDS_TARGET
    from tests.calibration.problems import synthetic_matrix

    matrix, truth = synthetic_matrix(households=200, seed=4)
    count_row = sp.csr_matrix(np.ones((1, len(truth))))
    count = replace(
        matrix.targets.targets[0],
        name=NATIONAL_HOUSEHOLDS_TARGET,
        value=float(truth.sum()) * 0.8,  # 20% below what the other targets imply
        family="population",
        group="census/households",
    )
    with_count = replace(
        matrix,
        matrix=sp.vstack([matrix.matrix, count_row]).tocsr(),
        targets=TargetSet((*matrix.targets.targets, count)),
        train=np.append(matrix.train, True),
        test=np.append(matrix.test, False),
    )
    initial = pd.Series(truth, index=pd.Index(with_count.household_ids, name="household_id"))
    errors = {}
    for boost in (1.0, 1000.0):
        config = _config(chi_square_alphas=(0.01,), household_count_boost=boost)
        run = solve_weights(with_count, initial, config, "microplex", "test")
        errors[boost] = abs(run.weights.sum() / count.value - 1)
    assert errors[1000.0] < 0.5 * errors[1.0]
