"""The fitted objective's term (``SolverConfig.fit_loss``) and the ESS penalty."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from microplex_assets.calibration.loss import fit_term, kish_ess
from microplex_assets.calibration.solver import calibrate
from microplex_assets.calibration.solver_config import SolverConfig

BASE = SolverConfig(
    epochs=600,
    learning_rate=0.05,
    l0_lambda=0.0,
    select_by_holdout=False,
    device="cpu",
    max_weight_ratio=50.0,
    kl_penalty=0.01,
)


def conflicting_problem(seed: int = 0):
    """40 reachable targets (M @ truth) plus 4 copies of target 0's row asking 3x its value:
    no weighting hits both, so the copies are unreachable by construction."""
    rng = np.random.default_rng(seed)
    households = 300
    design = rng.uniform(50.0, 150.0, households)
    truth = design * np.exp(rng.normal(0.0, 0.3, households))
    dense = rng.lognormal(3.0, 1.0, (40, households)) * (rng.random((40, households)) < 0.4)
    targets = dense @ truth
    dense = np.vstack([dense, np.repeat(dense[:1], 4, axis=0)])
    targets = np.concatenate([targets, np.full(4, 3.0 * targets[0])])
    n = len(targets)
    return sp.csr_matrix(dense), targets, np.zeros(n, bool), np.ones(n, bool), design


def test_terms_agree_near_zero_and_differ_far_out():
    e = torch.tensor([0.0, 0.01, -0.01, 1.0, -2.0], dtype=torch.float64)
    squared, huber = fit_term("squared", 0.1)(e), fit_term("huber", 0.1)(e)
    band = fit_term("band", 0.05)(e)
    assert torch.allclose(huber[:3], squared[:3], rtol=5e-3, atol=1e-12)
    assert (huber[3:] < 0.25 * squared[3:]).all()  # linear, not quadratic, far out
    assert band[:3].abs().max() == 0  # no pull inside the band
    assert band[4] == pytest.approx(1.95**2)
    with pytest.raises(ValueError, match="fit_loss must be"):
        fit_term("cubic", 0.1)
    with pytest.raises(ValueError, match="fit_loss_scale"):
        fit_term("huber", 0.0)


def test_squared_is_the_default_and_reproduces_the_plain_objective():
    assert SolverConfig().fit_loss == "squared"
    matrix, targets, national, train, design = conflicting_problem()
    plain = calibrate(matrix, targets, national, train, design, replace(BASE, epochs=50))
    again = calibrate(
        matrix, targets, national, train, design, replace(BASE, epochs=50, fit_loss="squared")
    )
    np.testing.assert_array_equal(plain.weights, again.weights)


def test_ess_penalty_raises_the_effective_sample_size():
    matrix, targets, national, train, design = conflicting_problem()
    plain = calibrate(matrix, targets, national, train, design, BASE)
    pulled = calibrate(matrix, targets, national, train, design, replace(BASE, ess_penalty=0.05))
    assert kish_ess(pulled.weights) > 1.1 * kish_ess(plain.weights)
    assert pulled.history["ess_share"].iloc[-1] == pytest.approx(
        kish_ess(pulled.weights) / len(design), rel=1e-4
    )
