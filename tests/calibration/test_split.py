"""The three-way split, weight health and target-quality gates on small synthetic problems."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from microplex_assets.calibration.holdout import HoldoutError, split_by_groups
from microplex_assets.calibration.loss import METHOD_LOSS_KEYS
from microplex_assets.calibration.matrix import (
    NonFiniteTargetError,
    require_finite_contributions,
)
from microplex_assets.calibration.scorecard import Scorecard, held_out_gate
from microplex_assets.calibration.solver import calibrate
from microplex_assets.calibration.solver_config import SolverConfig
from microplex_assets.calibration.target_quality import dropped_targets, targets_kept_gate
from microplex_assets.calibration.weight_health import weight_health, weights_healthy_gate
from microplex_assets.calibration.weights import CalibrationRun, solve_weights
from microplex_assets.targets.model import TargetSet
from tests.calibration.problems import synthetic_matrix

VALIDATION = ("irs_soi/agi_by_state", "irs_soi/partnership_s_corp_income")
TEST = ("ssa/ssi", "usda/snap_state")
QUICK = SolverConfig(epochs=120, learning_rate=0.1, l0_lambda=0.0, device="cpu")
# the national default's method (calibration/chi_square.py), on a short path
CHI_SQUARE = SolverConfig(
    method="chi_square", l0_lambda=0.0, max_weight_ratio=50.0, chi_square_alphas=(1.0, 0.1, 0.01)
)


def split_matrix():
    matrix, truth = synthetic_matrix()
    return split_by_groups(matrix, VALIDATION, TEST), truth


def test_three_splits_are_whole_groups_and_recorded_in_the_ledger():
    split, _ = split_matrix()
    by_group = pd.Series(split.split).groupby(split.groups).unique()
    assert all(len(kinds) == 1 for kinds in by_group), by_group
    assert set(split.groups[split.test]) == set(TEST)
    assert set(split.groups[split.validation]) == set(VALIDATION)
    assert split.counts(loaded=len(split.targets))["test"] == 4
    ledger = split.ledger.set_index("group")["split"]
    assert set(ledger.loc[list(TEST)]) == {"test"}
    assert set(ledger.loc[list(VALIDATION)]) == {"validation"}


@pytest.mark.parametrize("config", [QUICK, CHI_SQUARE], ids=["adam", "chi_square"])
def test_changing_test_target_values_leaves_the_weights_identical(config):
    split, truth = split_matrix()
    initial = pd.Series(truth * 1.3, index=pd.Index(split.household_ids, name="household_id"))
    first = solve_weights(split, initial, config, "microplex", "test")
    moved = TargetSet(
        tuple(
            replace(t, value=t.value * 7.0) if is_test else t
            for t, is_test in zip(split.targets, split.test, strict=True)
        )
    )
    second = solve_weights(replace(split, targets=moved), initial, config, "microplex", "test")
    assert np.array_equal(first.weights.to_numpy(), second.weights.to_numpy())
    assert first.best_epoch == second.best_epoch
    # ... while the same change to train targets does change them (the check can fail)
    shifted = TargetSet(
        tuple(
            replace(t, value=t.value * 1.5) if is_train else t
            for t, is_train in zip(split.targets, split.train, strict=True)
        )
    )
    third = solve_weights(replace(split, targets=shifted), initial, config, "microplex", "test")
    assert not np.allclose(first.weights.to_numpy(), third.weights.to_numpy())


def test_a_test_split_in_a_donor_family_or_without_both_levels_is_refused():
    matrix, _ = synthetic_matrix()
    with pytest.raises(HoldoutError, match="wages"):  # the donor reproduces employment income
        split_by_groups(matrix, VALIDATION, ("irs_soi/employment_income", "usda/snap_state"))
    with pytest.raises(HoldoutError, match="no state-level group"):
        split_by_groups(matrix, VALIDATION, ("ssa/ssi",))
    with pytest.raises(HoldoutError, match="both validation and test"):
        split_by_groups(matrix, VALIDATION, (*TEST, "irs_soi/agi_by_state"))


def test_the_held_out_gate_judges_the_test_split():
    split, truth = split_matrix()
    card = Scorecard.from_matrix(split, {"candidate": truth, "ecps_method": truth * 1.1})
    gate = held_out_gate(card)
    assert gate.details["split"] == "test"
    assert set(gate.details["groups"]) == set(TEST)
    assert gate.passed
    losses = card.losses()["candidate"]
    assert losses["test"] < 1e-12 and losses["within_10pct"] == 1.0


def test_the_within_ceiling_counts_every_train_target_and_only_the_held_out_hits():
    split, truth = split_matrix()
    train = split.train
    # train targets all 30% off, held-out ones exact except the first, 30% off
    card = Scorecard.from_matrix(split, {"candidate": truth, "ecps_method": truth})
    values = card.targets["value"].to_numpy(float)
    off = np.where(train, 1.3, 1.0)
    first_held = int(np.flatnonzero(~train)[0])
    off[first_held] = 1.3
    card.estimates["candidate"] = values * off
    losses = card.losses()["candidate"]
    kept, held = len(values), int((~train).sum())
    assert tuple(losses) == METHOD_LOSS_KEYS  # the runner's loss table reads these keys
    assert losses["within_10pct_train"] == 0.0
    assert losses["within_10pct"] == pytest.approx((held - 1) / kept)
    assert losses["within_10pct_ceiling"] == pytest.approx((kept - 1) / kept)
    assert card.losses()["ecps_method"]["within_10pct_ceiling"] == pytest.approx(1.0)


def test_a_nan_in_the_matrix_is_an_error_naming_the_target():
    split, truth = split_matrix()
    broken = split.matrix.copy()
    broken.data[0] = np.nan
    initial = pd.Series(truth, index=pd.Index(split.household_ids, name="household_id"))
    first_row = split.targets.targets[0].name
    with pytest.raises(NonFiniteTargetError, match=first_row):
        solve_weights(replace(split, matrix=broken), initial, QUICK, "microplex", "test")
    target = split.targets.targets[3]
    with pytest.raises(NonFiniteTargetError, match=f"{target.name}.*household_id \\[3\\]"):
        require_finite_contributions(target, np.array([1.0, 2.0, np.inf]), np.array([1, 2, 3]))


def test_the_bounded_solver_keeps_every_ratio_and_kl_raises_the_ess():
    split, truth = split_matrix()
    design = truth * np.exp(np.random.default_rng(3).normal(0, 0.8, len(truth)))
    values, national = split.values, split.is_national
    bounded = replace(QUICK, max_weight_ratio=2.0)
    free = calibrate(split.matrix, values, national, split.train, design, bounded)
    ratio = free.weights / design
    assert ratio.max() <= 2.0 + 1e-6 and ratio.min() >= 0.5 - 1e-6
    assert {"ess_share", "max_ratio"} <= set(free.history.columns)
    pulled = calibrate(
        split.matrix, values, national, split.train, design, replace(bounded, kl_penalty=10.0)
    )
    ess = [float(w.sum() ** 2 / np.square(w).sum()) for w in (free.weights, pulled.weights)]
    assert ess[1] > ess[0]


def run_with(weights: np.ndarray, design: np.ndarray, enforced: bool = True) -> CalibrationRun:
    index = pd.Index(np.arange(1, len(weights) + 1), name="household_id")
    run = CalibrationRun(pd.Series(weights, index=index), "microplex", "test")
    run.health = weight_health(run.weights, pd.Series(design, index=index), np.array([0]))
    run.health["limits"] = {"min_ess_share": 0.25, "max_ratio": 50.0, "enforced": enforced}
    return run


def test_weights_healthy_fails_on_a_collapsed_weight_vector():
    design = np.full(400, 100.0)
    healthy = weights_healthy_gate(run_with(design * np.linspace(0.5, 2.0, 400), design))
    assert healthy.passed and healthy.severity == "ERROR"
    collapsed = np.full(400, 1.0)
    collapsed[:4] = 9_000.0  # four records hold most of the weight, ratio 90
    gate = weights_healthy_gate(run_with(collapsed, design))
    assert not gate.passed and gate.status == "fail"
    assert gate.value < 0.25 and gate.details["max_ratio"] == pytest.approx(90.0)
    assert weights_healthy_gate(run_with(collapsed, design, enforced=False)).status == "warn"


def test_a_protected_family_losing_over_a_quarter_of_its_targets_fails():
    split, truth = split_matrix()
    ledger = split.ledger.copy()
    ssi = ledger.index[ledger["family"] == "ssi"]
    ledger.loc[ssi[:1], ["status", "reason"]] = ["dropped", "no support: nobody"]
    card = Scorecard.from_matrix(split, {"candidate": truth}, ledger=ledger)
    gate = targets_kept_gate(card)
    assert not gate.passed and "ssi 50%" in gate.summary
    table = dropped_targets(ledger)
    assert table.to_dict(orient="records") == [
        {"family": "ssi", "reason": "no support", "dropped": 1, "registry_targets": 2}
    ]
    card.max_dropped_share = 0.5
    assert targets_kept_gate(card).passed


def test_gate_checks_carry_numeric_details_as_plain_metadata():
    from microplex_assets.calibration.scorecard_checks import gate_check_result

    design = np.full(400, 100.0)
    result = gate_check_result(weights_healthy_gate(run_with(design * 1.5, design)))
    assert result.passed
    assert result.metadata["max_ratio"].value == pytest.approx(1.5)
