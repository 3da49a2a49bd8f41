"""The calibration solver on small synthetic problems with a known truth weight vector."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from microplex_assets.calibration import solver
from microplex_assets.calibration.hard_concrete import HardConcreteGates
from microplex_assets.calibration.loss import target_loss
from microplex_assets.calibration.solver import calibrate
from microplex_assets.calibration.solver_config import SolverConfig, ecps_method_config
from microplex_assets.calibration.sparse_torch import sparse_matvec, torch_csr


def problem(households: int = 300, n_targets: int = 40, noise: float = 0.0, seed: int = 0):
    """Targets = M @ truth (times 1 + N(0, noise)); the last 8 targets held out as a block."""
    rng = np.random.default_rng(seed)
    design = rng.uniform(50.0, 150.0, households)
    truth = design * np.exp(rng.normal(0.0, 0.3, households))
    dense = rng.lognormal(3.0, 1.0, (n_targets, households)) * (
        rng.random((n_targets, households)) < 0.4
    )
    matrix = sp.csr_matrix(dense)
    targets = (matrix @ truth) * (1.0 + rng.normal(0.0, noise, n_targets))
    is_national = np.arange(n_targets) < n_targets // 4
    train = np.arange(n_targets) < n_targets - 8
    return matrix, targets, is_national, train, design


def losses(matrix, targets, is_national, mask, weights) -> float:
    estimates = matrix @ weights
    return target_loss(estimates[mask], targets[mask], is_national[mask])


QUICK = SolverConfig(
    epochs=150, learning_rate=0.1, l0_lambda=0.0, select_by_holdout=False, device="cpu"
)


def test_loss_decreases_and_beats_the_design_weights():
    matrix, targets, is_national, train, design = problem()
    result = calibrate(matrix, targets, is_national, train, design, QUICK)
    history = result.history
    assert list(history["epoch"]) == list(range(151))
    assert history["train_loss"].iloc[-1] < 0.05 * history["train_loss"].iloc[0]
    assert history["train_loss"].iloc[0] == pytest.approx(
        losses(matrix, targets, is_national, train, design), rel=1e-5
    )
    assert result.train_loss < 0.05 * losses(matrix, targets, is_national, train, design)
    assert (np.diff(history["seconds"]) >= 0).all()
    assert result.config["device"] == "cpu"


@pytest.mark.parametrize("config", [QUICK, replace(ecps_method_config(), epochs=100)])
def test_weights_are_finite_non_negative_float64(config):
    matrix, targets, is_national, train, design = problem(noise=0.05)
    result = calibrate(matrix, targets, is_national, train, design, config)
    assert result.weights.dtype == np.float64
    assert result.weights.shape == design.shape
    assert np.isfinite(result.weights).all()
    assert (result.weights >= 0).all()


def test_l0_lambda_zero_builds_no_gates(monkeypatch):
    def no_gates(*args, **kwargs):
        raise AssertionError("gates built with l0_lambda = 0")

    monkeypatch.setattr(solver, "HardConcreteGates", no_gates)
    matrix, targets, is_national, train, design = problem()
    result = calibrate(matrix, targets, is_national, train, design, QUICK)
    assert "gates_open" not in result.history
    assert (result.weights > 0).all()


def test_l0_penalty_zeroes_some_weights():
    matrix, targets, is_national, train, design = problem()
    config = replace(QUICK, epochs=300, learning_rate=0.2, l0_lambda=1e-4)
    result = calibrate(matrix, targets, is_national, train, design, config)
    zeros = int((result.weights == 0).sum())
    assert 0 < zeros < len(design)
    assert result.history["gates_open"].iloc[0] == len(design)
    assert result.history["gates_open"].iloc[-1] == len(design) - zeros


def test_hard_concrete_gates():
    gates = HardConcreteGates(5, temperature=0.25, init_mean=0.999, stretch=(-0.1, 1.1))
    assert torch.allclose(gates.deterministic(), torch.ones(5))  # 0.999 * 1.2 - 0.1 > 1
    sample = gates.sample(torch.Generator().manual_seed(0))
    assert ((sample >= 0) & (sample <= 1)).all()
    with torch.no_grad():
        gates.log_alpha.fill_(-10.0)
    assert torch.equal(gates.deterministic(), torch.zeros(5))
    assert gates.expected_open().item() < 1e-3


def test_same_seed_same_weights_other_seed_other_weights():
    matrix, targets, is_national, train, design = problem(noise=0.05)
    config = replace(ecps_method_config(), epochs=60)
    first = calibrate(matrix, targets, is_national, train, design, config)
    again = calibrate(matrix, targets, is_national, train, design, config)
    other = calibrate(matrix, targets, is_national, train, design, replace(config, seed=7))
    assert np.array_equal(first.weights, again.weights)
    assert first.history.drop(columns="seconds").equals(again.history.drop(columns="seconds"))
    assert not np.array_equal(first.weights, other.weights)
    ours = calibrate(matrix, targets, is_national, train, design, SolverConfig(epochs=50))
    assert np.array_equal(
        ours.weights,
        calibrate(matrix, targets, is_national, train, design, SolverConfig(epochs=50)).weights,
    )


def test_holdout_selection_returns_the_best_holdout_epoch():
    # Noisy targets and far more households than targets: the fit overfits, so the
    # held-out loss turns up again and the best epoch is not the last.
    matrix, targets, is_national, train, design = problem(noise=0.1, seed=3)
    config = SolverConfig(
        epochs=400,
        learning_rate=0.1,
        log_weight_penalty=0.0,
        patience=None,
        device="cpu",
        train_tolerance=None,
    )
    result = calibrate(matrix, targets, is_national, train, design, config)
    history = result.history
    assert result.best_epoch == int(history["holdout_loss"].idxmin())
    assert 0 < result.best_epoch < history["epoch"].iloc[-1]
    best_row = history.set_index("epoch").loc[result.best_epoch]
    assert result.holdout_loss == pytest.approx(best_row["holdout_loss"], rel=1e-4)
    assert result.train_loss == pytest.approx(best_row["train_loss"], rel=1e-4)
    assert result.holdout_loss == pytest.approx(
        losses(matrix, targets, is_national, ~train, result.weights), rel=1e-12
    )
    assert result.holdout_loss < history["holdout_loss"].iloc[-1]

    final = calibrate(
        matrix, targets, is_national, train, design, replace(config, select_by_holdout=False)
    )
    assert final.best_epoch == 400
    assert final.holdout_loss == pytest.approx(history["holdout_loss"].iloc[-1], rel=1e-4)


def test_train_tolerance_picks_the_best_held_out_among_converged_epochs():
    matrix, targets, is_national, train, design = problem(noise=0.1, seed=3)
    config = SolverConfig(
        epochs=400, learning_rate=0.1, l0_lambda=0.0, train_tolerance=0.05, device="cpu"
    )
    result = calibrate(matrix, targets, is_national, train, design, config)
    history = result.history.set_index("epoch")
    assert len(history) == 401  # the full path: no patience
    eligible = history[history["train_loss"] <= history["train_loss"].min() * 1.05]
    assert result.best_epoch == int(eligible["holdout_loss"].idxmin())
    # Unrestricted selection would stop earlier, before the fit is done.
    assert history["holdout_loss"].idxmin() < result.best_epoch
    # The replayed weights are exactly the chosen epoch's.
    assert result.train_loss == pytest.approx(
        history.loc[result.best_epoch, "train_loss"], rel=1e-4
    )
    assert result.holdout_loss == pytest.approx(
        history.loc[result.best_epoch, "holdout_loss"], rel=1e-4
    )
    again = calibrate(matrix, targets, is_national, train, design, config)
    assert np.array_equal(result.weights, again.weights)


def test_train_loss_floor_widens_the_epochs_held_out_selection_may_choose():
    history = pd.DataFrame(
        {
            "epoch": [0, 1, 2, 3],
            "train_loss": [0.5, 8e-4, 1.005e-5, 1e-5],
            "holdout_loss": [0.9, 0.10, 0.30, 0.40],
        }
    )
    # The relative band alone admits only the converged epochs 2 and 3...
    assert solver.choose_epoch_within_train_tolerance(history, 0.01) == 2
    # ... a floor of 1e-3 also admits epoch 1, whose held-out loss is lowest; never epoch 0.
    assert solver.choose_epoch_within_train_tolerance(history, 0.01, floor=1e-3) == 1


def test_train_target_cap_keeps_the_floor_from_admitting_one_drifted_target():
    history = pd.DataFrame(
        {
            "epoch": [0, 1, 2, 3, 4],
            "train_loss": [0.5, 8e-4, 6e-4, 1.005e-5, 1e-5],
            "train_worst": [2.0, 0.02, 0.004, 1e-4, 1e-4],
            "holdout_loss": [0.9, 0.10, 0.20, 0.30, 0.40],
        }
    )
    # Epoch 1's mean is under the floor, but one target is 14% off: the cap refuses it.
    assert solver.choose_epoch_within_train_tolerance(history, 0.01, 1e-3) == 1
    assert solver.choose_epoch_within_train_tolerance(history, 0.01, 1e-3, target_cap=5e-3) == 2
    # The cap only narrows the floor: the converged band stays eligible whatever it says.
    assert solver.choose_epoch_within_train_tolerance(history, 0.01, 1e-3, target_cap=1e-6) == 3


def test_history_records_the_worst_train_target():
    matrix, targets, is_national, train, design = problem()
    result = calibrate(matrix, targets, is_national, train, design, replace(QUICK, epochs=30))
    last = result.history.iloc[-1]
    estimates = matrix @ result.weights
    worst = np.max(((estimates[train] - targets[train] + 1) / (targets[train] + 1)) ** 2)
    assert last["train_worst"] == pytest.approx(worst, rel=1e-3)


def test_patience_stops_after_no_new_best():
    matrix, targets, is_national, train, design = problem(noise=0.1, seed=3)
    config = SolverConfig(
        epochs=2_000, learning_rate=0.1, log_weight_penalty=0.0, patience=25, train_tolerance=None
    )
    result = calibrate(matrix, targets, is_national, train, design, config)
    assert result.stopped_early
    assert result.history["epoch"].iloc[-1] == result.best_epoch + 25


def test_without_holdout_targets_the_final_weights_are_returned():
    matrix, targets, is_national, _, design = problem()
    train = np.ones(len(targets), dtype=bool)
    result = calibrate(matrix, targets, is_national, train, design, replace(QUICK, epochs=20))
    assert result.best_epoch == 20
    assert result.history["holdout_loss"].isna().all()


def test_small_targets_are_not_fitted_but_still_scored():
    matrix, targets, is_national, train, design = problem()
    targets = targets.copy()
    targets[[0, 20]] = [0.05, -0.01]
    config = replace(QUICK, min_abs_target=0.1)
    result = calibrate(matrix, targets, is_national, train, design, config)
    assert result.fitted_targets == int(train.sum()) - 2
    assert result.train_loss == pytest.approx(
        losses(matrix, targets, is_national, train, result.weights)
    )


def test_ecps_method_config_is_the_design_recipe():
    config = ecps_method_config()
    assert (config.learning_rate, config.epochs, config.seed) == (0.2, 1_000, 1456)
    assert (config.l0_lambda, config.gate_temperature, config.gate_init_mean) == (
        2.6445e-7,
        0.25,
        0.999,
    )
    assert config.stretch == (-0.1, 1.1)
    assert (config.init_noise_sd, config.min_abs_target) == (0.1, 0.1)
    assert config.log_weight_penalty == 0.0
    assert config.select_by_holdout is False


def test_custom_sparse_gradient_matches_dense_autograd():
    rng = np.random.default_rng(1)
    dense = rng.normal(size=(7, 11)) * (rng.random((7, 11)) < 0.5)
    matrix = sp.csr_matrix(dense)
    m = torch_csr(matrix, torch.device("cpu"), torch.float64)
    m_t = torch_csr(matrix.T.tocsr(), torch.device("cpu"), torch.float64)
    coef = torch.tensor(rng.uniform(0.5, 2.0, 7))
    target = torch.tensor(rng.normal(size=7))

    u_sparse = torch.tensor(rng.normal(size=11), requires_grad=True)
    u_dense = u_sparse.detach().clone().requires_grad_(True)
    loss_sparse = (coef * (sparse_matvec(m, m_t, torch.exp(u_sparse)) - target) ** 2).sum()
    loss_dense = (coef * (torch.tensor(dense) @ torch.exp(u_dense) - target) ** 2).sum()
    loss_sparse.backward()
    loss_dense.backward()
    assert loss_sparse.item() == pytest.approx(loss_dense.item(), rel=1e-12)
    torch.testing.assert_close(u_sparse.grad, u_dense.grad, rtol=1e-12, atol=1e-12)

    x = torch.tensor(rng.normal(size=11), requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: sparse_matvec(m, m_t, v), (x,))


def test_bad_inputs_are_refused():
    matrix, targets, is_national, train, design = problem()
    with pytest.raises(ValueError, match="positive"):
        calibrate(matrix, targets, is_national, train, -design, QUICK)
    with pytest.raises(ValueError, match="targets has length"):
        calibrate(matrix, targets[:-1], is_national, train, design, QUICK)
    with pytest.raises(TypeError):
        calibrate(matrix.toarray(), targets, is_national, train, design, QUICK)
