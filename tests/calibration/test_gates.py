"""The release gates pass good weights and fail a deliberately bad weight vector."""

from __future__ import annotations

import numpy as np
import pytest

from microplex_assets.calibration.holdout import split_by_groups
from microplex_assets.calibration.scorecard import (
    CANDIDATE,
    ECPS_METHOD,
    PROTECTED_ABSOLUTE_TOLERANCE,
    Scorecard,
    evaluate_gates,
    protected_families_gate,
)
from tests.calibration.problems import synthetic_matrix

HELD_OUT = ("irs_soi/agi_by_state", "irs_soi/partnership_s_corp_income")


def scorecard(candidate: np.ndarray, baseline: np.ndarray) -> Scorecard:
    matrix, _ = synthetic_matrix()
    matrix = split_by_groups(matrix, HELD_OUT)
    return Scorecard.from_matrix(matrix, {CANDIDATE: candidate, ECPS_METHOD: baseline})


def gates_by_name(card: Scorecard) -> dict:
    return {gate.name: gate for gate in evaluate_gates(card)}


def test_weights_near_the_truth_pass_every_gate():
    _, truth = synthetic_matrix()
    rng = np.random.default_rng(1)
    good = truth * rng.uniform(0.98, 1.02, truth.shape)
    baseline = truth * rng.uniform(0.6, 1.4, truth.shape)
    gates = gates_by_name(scorecard(good, baseline))
    assert all(g.passed for g in gates.values()), {n: g.summary for n, g in gates.items()}
    assert gates["target_loss_below_baseline"].value < gates["target_loss_below_baseline"].threshold


def test_a_deliberately_bad_weight_vector_fails_the_blocking_gates():
    _, truth = synthetic_matrix()
    bad = truth * 3.0  # every estimate 200% off
    gates = gates_by_name(scorecard(bad, truth * 1.05))
    for name in (
        "target_loss_below_baseline",
        "held_out_loss_below_baseline",
        "protected_families_hold",
    ):
        assert not gates[name].passed, name
        assert gates[name].status == "fail" and gates[name].severity == "ERROR"
    assert gates["high_salience_aggregates"].status == "warn"  # marked, never blocking
    assert gates["target_loss_below_baseline"].value > 1.0


def test_protected_family_tolerance_is_max_of_relative_and_absolute():
    _, truth = synthetic_matrix()
    card = scorecard(truth, truth)
    baseline_loss = card.family_losses().set_index("family").loc["wages", ECPS_METHOD]
    assert baseline_loss == pytest.approx(0.0, abs=1e-12)
    rows = protected_families_gate(card).details["families"]
    wages = next(r for r in rows if r["family"] == "wages")
    assert wages["allowed"] == pytest.approx(baseline_loss + PROTECTED_ABSOLUTE_TOLERANCE)
    missing = {r["family"] for r in rows if r["status"] == "no kept targets"}
    assert "capital_gains" in missing  # reported, not silently passed as judged


def test_uncalibrated_cells_report_gates_as_warnings():
    _, truth = synthetic_matrix()
    card = scorecard(truth * 3.0, truth)
    card.gate_severity = "WARN"
    gates = gates_by_name(card)
    assert gates["target_loss_below_baseline"].status == "warn"


def test_salient_aggregates_pick_the_national_headline_target():
    _, truth = synthetic_matrix()
    table = scorecard(truth, truth * 1.1).salient_aggregates().set_index("quantity")
    assert table.loc["wages", "target_name"].startswith("irs_soi/employment_income/US/")
    assert table.loc["wages", "baseline_ape"] == pytest.approx(0.1)
    assert table.loc["household net income", "target_name"] == "no target"


def test_target_loss_tolerance_opens_the_broad_gate_by_its_share_only():
    _, truth = synthetic_matrix()
    rng = np.random.default_rng(3)
    baseline = truth * rng.uniform(0.9, 1.1, truth.shape)
    card = scorecard(baseline * 1.01, baseline)  # slightly worse than the baseline
    strict = gates_by_name(card)["target_loss_below_baseline"]
    assert not strict.passed and strict.threshold == pytest.approx(card.loss(ECPS_METHOD))
    ratio = card.loss(CANDIDATE) / card.loss(ECPS_METHOD)
    card.target_loss_tolerance = (ratio - 1) * 2  # wide enough
    assert gates_by_name(card)["target_loss_below_baseline"].passed
    card.target_loss_tolerance = (ratio - 1) / 2  # too narrow
    assert not gates_by_name(card)["target_loss_below_baseline"].passed
