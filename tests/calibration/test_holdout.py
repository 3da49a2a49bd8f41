"""The held-out split moves whole groups and refuses splits that hide overfitting."""

from __future__ import annotations

import numpy as np
import pytest

from microplex_assets.calibration.holdout import HoldoutError, split_by_groups
from tests.calibration.problems import synthetic_matrix

GROUPS = ("irs_soi/agi_by_state", "irs_soi/partnership_s_corp_income")


def test_whole_groups_are_held_out_and_nothing_else():
    matrix, _ = synthetic_matrix()
    split = split_by_groups(matrix, GROUPS)
    held = split.groups[~split.train]
    assert set(held) == set(GROUPS)
    for group in set(matrix.groups):
        in_group = split.groups == group
        assert split.train[in_group].all() or (~split.train[in_group]).all(), group
    assert split.ledger["held_out"].sum() == (~split.train).sum() == 10


def test_a_group_with_no_kept_target_is_named():
    matrix, _ = synthetic_matrix()
    with pytest.raises(HoldoutError, match="census/age_by_state"):
        split_by_groups(matrix, ("census/age_by_state", *GROUPS))


def test_split_needs_a_state_level_and_a_national_group():
    matrix, _ = synthetic_matrix()
    with pytest.raises(HoldoutError, match="no state-level group"):
        split_by_groups(matrix, ("irs_soi/partnership_s_corp_income",))
    with pytest.raises(HoldoutError, match="no national group"):
        split_by_groups(matrix, ("irs_soi/agi_by_state",))


def test_holding_out_everything_is_refused():
    matrix, _ = synthetic_matrix()
    with pytest.raises(HoldoutError, match="nothing left to fit"):
        split_by_groups(matrix, tuple(sorted(set(matrix.groups.tolist()))))


def test_the_original_matrix_is_untouched():
    matrix, _ = synthetic_matrix()
    split_by_groups(matrix, GROUPS)
    assert matrix.train.all() and not matrix.ledger["held_out"].any()
    assert np.array_equal(matrix.values, split_by_groups(matrix, GROUPS).values)
