"""The top-tail spine: appended with fixed weights, its contribution taken out of the targets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex_assets.calibration.fixed_records import drop_fixed_overshoots, residual_problem
from microplex_assets.calibration.solver_config import SolverConfig
from microplex_assets.calibration.weights import solve_weights
from microplex_assets.candidate.spine import append_spine, dependent_ages
from microplex_assets.constants import FIXED_FLAG
from microplex_assets.entities.build import build_entity_bundle
from microplex_assets.sources.frame import ObservationFrame, SourceFormatError
from microplex_assets.sources.top_tail_income import GAINS, INCOME_COLUMNS
from tests.calibration.problems import synthetic_matrix
from tests.frames import tiny_scaffold


def top_wealth(n: int = 5) -> ObservationFrame:
    """A small list with income columns as stage 2 attaches them (1% of net worth each)."""
    household = pd.DataFrame(
        {
            "household_id": np.arange(1, n + 1),
            "net_worth": np.linspace(50e9, 3e9, n),
            "age_head": np.array([70, 40, 80, 45, 66])[:n],
            "state_fips": np.array([6, 36, 48, 6, 12])[:n],
            "household_weight": np.ones(n),
            "rank": np.arange(1, n + 1),
            "is_married": np.array([True, True, False, False, True])[:n],
            "children": np.array([4, 2, 3, 1, 0])[:n],
        }
    )
    for column in INCOME_COLUMNS:
        household[column] = household["net_worth"] * 0.01
    return ObservationFrame("forbes_test", 2024, {"household": household}, {}, {"kind": "real"})


def test_spine_is_appended_with_new_ids_fixed_flag_and_the_lists_income():
    candidate = tiny_scaffold(households=30)
    frame, report = append_spine(candidate, top_wealth())
    household = frame.tables["household"]
    assert len(household) == 35 and household["household_id"].is_unique
    assert household[FIXED_FLAG].sum() == 5
    spine_ids = household.loc[household[FIXED_FLAG], "household_id"]
    assert spine_ids.min() > candidate.tables["household"]["household_id"].max()
    person = frame.tables["person"]
    spine = person[person["household_id"].isin(spine_ids)]
    heads = spine[spine["role"] == "head"]
    income = heads[list(INCOME_COLUMNS)].sum(axis=1).to_numpy()
    expected = np.linspace(50e9, 3e9, 5) * 0.01 * len(INCOME_COLUMNS)
    np.testing.assert_allclose(np.sort(income), np.sort(expected))
    assert (spine.loc[spine["role"] != "head", list(INCOME_COLUMNS)] == 0).all().all()
    # Scaffold persons keep their values; new columns are zero for them.
    scaffold = person[~person["household_id"].isin(spine_ids)]
    assert (scaffold[GAINS] == 0).all()
    assert report["records"] == 5 and report["weight_total"] == 5.0
    bundle = build_entity_bundle(frame)
    assert bundle.household[FIXED_FLAG].sum() == 5
    assert bundle.household["net_worth"].max() == pytest.approx(50e9)


def test_spine_households_follow_marriage_and_children_rules():
    candidate = tiny_scaffold(households=10)
    frame, report = append_spine(candidate, top_wealth())
    first_spine_unit = candidate.tables["tax_unit"]["tax_unit_id"].max() + 1
    units = frame.tables["tax_unit"]
    spine_units = units[units["tax_unit_id"] >= first_spine_unit].sort_values("tax_unit_id")
    # Net worth order: aged 70 married, 40 married + 2 minors, 80 single (adult children),
    # 45 single + 1 minor (head of household), 66 married.
    assert spine_units["filing_status"].tolist() == [2, 2, 1, 4, 2]
    person = frame.tables["person"]
    spine = person[person["tax_unit_id"] >= first_spine_unit]
    assert spine.groupby("tax_unit_id")["role"].apply(list).tolist() == [
        ["head", "spouse"],
        ["head", "spouse", "dependent", "dependent"],
        ["head"],
        ["head", "dependent"],
        ["head", "spouse"],
    ]
    assert spine.loc[spine["role"] == "dependent", "age"].tolist() == [10, 8, 15]
    assert report["married"] == 3 and report["dependents"] == 3 and report["persons"] == 11
    assert dependent_ages(49, 3) == [17, 17, 15] and dependent_ages(50, 3) == []


def test_malformed_top_wealth_list_names_the_problem():
    bad = top_wealth()
    bad.tables["household"] = bad.tables["household"].drop(columns=["net_worth"])
    with pytest.raises(SourceFormatError, match="net_worth"):
        append_spine(tiny_scaffold(households=5), bad)


def test_fixed_records_keep_weights_and_the_rest_fits_the_residual():
    matrix, truth = synthetic_matrix(households=200, seed=3)
    fixed_ids = matrix.household_ids[:10]
    initial = pd.Series(truth * 0.7, index=pd.Index(matrix.household_ids, name="household_id"))
    initial.loc[fixed_ids] = truth[:10]  # the spine's weights are right
    problem = residual_problem(matrix, matrix.aligned(initial), fixed_ids)
    np.testing.assert_allclose(
        problem.values,
        (matrix.values - matrix.estimates(np.where(problem.free, 0.0, truth)))[problem.rows],
    )
    assert problem.report["fixed_households"] == 10
    run = solve_weights(
        matrix, initial, SolverConfig(epochs=300, seed=1), "microplex", "test", fixed_ids=fixed_ids
    )
    np.testing.assert_array_equal(run.weights.loc[fixed_ids].to_numpy(), truth[:10])
    assert matrix.loss(matrix.aligned(run.weights)) < matrix.loss(matrix.aligned(initial))


def test_targets_the_spine_overshoots_leave_the_fit_and_are_reported():
    matrix, truth = synthetic_matrix(households=50, seed=4)
    initial = np.full(50, 1.0)
    initial[0] = 1e9  # one fixed record far bigger than every target it touches
    touched = np.asarray(matrix.matrix[:, 0].todense()).ravel() > 0
    problem = residual_problem(matrix, initial, matrix.household_ids[:1])
    assert (~problem.rows == touched).all()
    assert problem.report["targets_left_unfittable"] == int(touched.sum())


def test_targets_the_spine_alone_overshoots_are_dropped_into_the_ledger():
    matrix, _ = synthetic_matrix(households=50, seed=5)
    column = np.asarray(matrix.matrix[:, 0].todense()).ravel()
    fixed = pd.Series([1e9], index=pd.Index([matrix.household_ids[0]], name="household_id"))
    kept = drop_fixed_overshoots(matrix, fixed)
    assert len(kept.targets) == int((column == 0).sum())
    dropped = kept.ledger[kept.ledger["reason"].str.startswith("fixed records overshoot")]
    assert set(dropped["name"]) == {
        t.name for t, c in zip(matrix.targets, column, strict=True) if c > 0
    }
    assert (dropped["status"] == "dropped").all()
    assert drop_fixed_overshoots(matrix, fixed.iloc[:0]) is matrix
