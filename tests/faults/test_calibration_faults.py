"""NaN, inf and negative values in the matrix and weights; infeasible and contradictory
targets; a missing national|US fallback. Each is refused with a message naming it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from microplex_assets.calibration.assets import add_national_fallback
from microplex_assets.calibration.feasibility import (
    ContradictoryTargetsError,
    drop_sign_infeasible,
    require_consistent,
)
from microplex_assets.calibration.holdout import split_by_groups
from microplex_assets.calibration.matrix import NonFiniteTargetError
from microplex_assets.calibration.scorecard import (
    CANDIDATE,
    ECPS_METHOD,
    FALLBACK_GATE,
    Scorecard,
    fallback_gate,
)
from microplex_assets.calibration.scorecard_checks import gate_verdict
from microplex_assets.calibration.solver import calibrate
from microplex_assets.calibration.solver_config import SolverConfig
from microplex_assets.calibration.weights import design_weights, solve_weights
from microplex_resources.artifact_store import ArtifactStore
from tests.calibration.problems import synthetic_matrix

HELD_OUT = ("irs_soi/agi_by_state", "irs_soi/partnership_s_corp_income")


def problem():
    matrix, truth = synthetic_matrix(households=60)
    return split_by_groups(matrix, HELD_OUT), truth


def initial(matrix) -> pd.Series:
    return pd.Series(np.full(len(matrix.household_ids), 100.0), index=matrix.household_ids)


def with_data(matrix, row: int, value: float):
    """The matrix with one stored contribution of ``row`` set to ``value``."""
    m = matrix.matrix.tocsr(copy=True)
    m.data[m.indptr[row]] = value
    return replace(matrix, matrix=m)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_contribution_names_the_target(value: float) -> None:
    matrix, _ = problem()
    bad = with_data(matrix, 3, value)
    with pytest.raises(NonFiniteTargetError, match=matrix.targets.targets[3].name):
        solve_weights(bad, initial(matrix), SolverConfig(epochs=2), "microplex", "test")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_target_value_names_the_target(value: float) -> None:
    matrix, _ = problem()
    target = matrix.targets.targets[5]
    with pytest.raises(ValueError, match=f"target '{target.name}': value .* is not finite"):
        replace(target, value=value)  # refused where the registry makes the fact


@pytest.mark.parametrize("value", [np.nan, np.inf, -3.0])
def test_bad_design_weight_names_the_household(value: float) -> None:
    household = pd.DataFrame({"household_id": [11, 12, 13], "household_weight": [1.0, value, 2]})
    with pytest.raises(ValueError, match=r"household_weight: 1 of 3 .*household_id \[12\]"):
        design_weights(household)


@pytest.mark.parametrize("value", [0.0, np.nan])
def test_solver_names_the_initial_weights_it_cannot_start_from(value: float) -> None:
    matrix, _ = problem()
    start = np.full(matrix.matrix.shape[1], 100.0)
    start[7] = value
    with pytest.raises(ValueError, match=r"initial_weights .* columns \[7\]"):
        calibrate(
            matrix.matrix, matrix.values, matrix.is_national, matrix.train, start, SolverConfig()
        )


def test_a_target_no_weights_can_reach_is_dropped_with_its_reason() -> None:
    matrix, _ = problem()
    targets = list(matrix.targets.targets)
    name = targets[2].name
    targets[2] = replace(targets[2], value=-5e6)  # every contribution is >= 0
    infeasible = replace(matrix, targets=type(matrix.targets)(tuple(targets)))
    kept = drop_sign_infeasible(infeasible)
    assert name not in {t.name for t in kept.targets}
    assert len(kept.targets) == len(matrix.targets) - 1 and kept.matrix.shape[0] == len(kept.train)
    reason = kept.ledger.set_index("name").loc[name, "reason"]
    assert reason.startswith("infeasible: value -5e+06 is negative"), reason


def test_contradictory_targets_are_refused_naming_both() -> None:
    matrix, _ = problem()
    first = matrix.targets.targets[0]
    twin = replace(first, name=f"{first.name}/other_source", value=first.value * 2)
    other = replace(first, name="irs_soi/employment_income/CA/0", geography="CA")
    registry = type(matrix.targets)((first, other, twin))
    with pytest.raises(ContradictoryTargetsError, match="^1 pairs") as error:
        require_consistent(registry)
    assert first.name in str(error.value) and twin.name in str(error.value)
    close = replace(twin, value=first.value * 1.1)  # two agencies 10% apart: allowed
    require_consistent(type(matrix.targets)((first, other, close)))


def shard_card() -> Scorecard:
    matrix, truth = problem()
    return Scorecard.from_matrix(matrix, {CANDIDATE: truth, ECPS_METHOD: truth * 1.1})


def test_missing_national_fallback_fails_the_shard_naming_national_us(tmp_path: Path) -> None:
    card = shard_card()
    logged: list[str] = []
    context = SimpleNamespace(log=SimpleNamespace(error=logged.append))
    add_national_fallback(context, card, ArtifactStore(root=str(tmp_path)), 2024)
    gate = fallback_gate(card)
    assert not gate.passed and gate.status == "fail" and gate.applicable
    assert "national|US has no published bundle for 2024" in gate.summary
    assert str(tmp_path / "national" / "US") in gate.summary and logged
    assert gate_verdict(gate).passed is False  # a check result: blocks publication


def test_fallback_gate_is_not_applicable_off_local_shards() -> None:
    gate = fallback_gate(shard_card())  # fallback_required is False: not a local shard
    assert gate.name == FALLBACK_GATE and gate.status == "not_applicable"
    assert gate.as_dict()["applicable"] is False
    verdict = gate_verdict(gate)
    assert isinstance(verdict, str) and verdict.startswith("not applicable")
