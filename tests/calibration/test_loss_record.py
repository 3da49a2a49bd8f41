"""The loss record validates against its JSON Schema, and a broken one names the field."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from microplex_assets.calibration.holdout import split_by_groups
from microplex_assets.calibration.scorecard import (
    CANDIDATE,
    ECPS_METHOD,
    Scorecard,
    evaluate_gates,
    wins_and_losses_markdown,
)
from microplex_assets.calibration.weights import weight_diagnostics
from microplex_assets.validation.loss_record import (
    LossRecordError,
    build_loss_record,
    validate_loss_record,
)
from tests.calibration.problems import synthetic_matrix


@pytest.fixture()
def record():
    matrix, truth = synthetic_matrix()
    matrix = split_by_groups(matrix, ("irs_soi/agi_by_state", "irs_soi/partnership_s_corp_income"))
    card = Scorecard.from_matrix(matrix, {CANDIDATE: truth, ECPS_METHOD: truth * 1.2})
    return build_loss_record(
        cell={"product": "national", "geography": "US", "year": 2024},
        run_id="run-1",
        target_set_hash="a" * 64,
        target_counts=matrix.counts(loaded=25),
        held_out_groups=["irs_soi/agi_by_state"],
        card=card,
        gates=evaluate_gates(card),
        weight_diagnostics=weight_diagnostics(truth),
        calibration={"backend": "microplex", "seconds": 1.5, "best_epoch": 10},
    )


def test_a_built_record_validates_and_holds_the_numbers(record):
    validate_loss_record(record)
    assert record["target_counts"]["kept"] == 20
    assert record["losses"][CANDIDATE]["train"] == pytest.approx(0.0, abs=1e-12)
    assert record["losses"][ECPS_METHOD]["held_out"] > 0.03
    assert {g["name"] for g in record["gates"]} >= {"held_out_loss_below_baseline"}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r.pop("target_set_hash"), "target_set_hash"),
        (lambda r: r["losses"].pop("ecps_method"), "losses"),
        (lambda r: r["gates"][0].update(status="maybe"), "gates/0/status"),
        (lambda r: r["target_counts"].update(kept=-1), "target_counts/kept"),
        (lambda r: r.update(target_set_hash="not-a-hash"), "target_set_hash"),
    ],
)
def test_a_broken_record_names_the_field(record, mutate, field):
    broken = copy.deepcopy(record)
    mutate(broken)
    with pytest.raises(LossRecordError, match=field.split("/")[0]):
        validate_loss_record(broken)


def test_nan_losses_become_null_not_invalid_json():
    matrix, truth = synthetic_matrix()  # no split: the held-out loss is undefined (nan)
    card = Scorecard.from_matrix(matrix, {CANDIDATE: truth, ECPS_METHOD: truth})
    record = build_loss_record(
        cell={"product": "national", "geography": "US", "year": 2024},
        run_id="r",
        target_set_hash="b" * 64,
        target_counts=matrix.counts(loaded=20),
        held_out_groups=[],
        card=card,
        gates=evaluate_gates(card),
        weight_diagnostics=weight_diagnostics(truth),
        calibration={"backend": "none", "seconds": 0.0},
    )
    assert record["losses"][CANDIDATE]["held_out"] is None


def test_wins_and_losses_table_lists_families():
    matrix, truth = synthetic_matrix()
    better = truth.copy()
    card = Scorecard.from_matrix(matrix, {CANDIDATE: better, ECPS_METHOD: truth * 1.3})
    text = wins_and_losses_markdown(card, ECPS_METHOD)
    assert "| wages | win |" in text and "| snap | win |" in text
    assert np.isfinite(card.target_deltas()["gain"]).all()
