"""National consistency targets for a local shard: which totals, their values, their rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from microplex_assets.calibration.consistency import (
    add_consistency_targets,
    is_consistency,
    is_national_total,
    national_name,
    state_share_weights,
)
from microplex_assets.calibration.loss import count_normalisation
from microplex_assets.calibration.matrix import LEDGER_COLUMNS, SavedMatrix, TargetMatrix
from microplex_assets.calibration.targets.model import Target, TargetSet

SOURCE = {"agency": "test", "table": "synthetic", "year": 2024}
TOTAL = "irs_soi/unemployment_compensation/sum/agi_all/all_statuses"
BANDED = "irs_soi/unemployment_compensation/sum/agi_1_5k/all_statuses"
CBO = "cbo/snap_outlays"


def target(name: str, value: float, geography: str, group: str) -> Target:
    return Target(
        name=name, value=value, period=2024, variable="unemployment_compensation",
        aggregation="sum", entity="person", scope="population", geography=geography,
        family="unemployment", group=group, source=SOURCE,
    )  # fmt: skip


def shard_matrix() -> TargetMatrix:
    """Two state targets over households 10, 11, 12 (columns in that order)."""
    targets = TargetSet((target("DE/a", 5.0, "DE", "g/a"), target("DE/b", 7.0, "DE", "g/b")))
    ledger = pd.DataFrame(
        [{"name": t.name, "family": t.family, "group": t.group, "geography": "DE",
          "value": t.value, "status": "kept", "reason": "", "supporting_households": 3}
         for t in targets],
        columns=list(LEDGER_COLUMNS),
    )  # fmt: skip
    ledger["held_out"] = [False, True]
    return TargetMatrix(
        sparse.csr_matrix(np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]])),
        targets, np.array([10, 11, 12]), ledger, np.array([True, False]),
    )  # fmt: skip


def contributions() -> SavedMatrix:
    """The shard's rows for three national targets, columns in another household order."""
    frame = pd.DataFrame({"name": [TOTAL, BANDED, CBO]})
    rows = np.array([[3.0, 1.0, 2.0], [1.0, 1.0, 1.0], [0.0, 0.0, 4.0]])  # cols 12, 10, 11
    return SavedMatrix(sparse.csr_matrix(rows), frame, np.array([12, 10, 11]))


def national_targets() -> TargetSet:
    return TargetSet(
        (target(TOTAL, 1e9, "US", "irs_soi/uc"), target(BANDED, 1e8, "US", "irs_soi/uc"),
         target(CBO, 5e9, "US", "cbo/snap"))
    )  # fmt: skip


def test_only_unbanded_all_status_totals_are_shared_out():
    assert is_national_total(TOTAL)
    assert is_national_total(CBO)
    assert is_national_total(TOTAL + "/taxable")
    assert not is_national_total(BANDED)
    assert not is_national_total("irs_soi/returns/count/agi_all/single")


def test_consistency_rows_follow_the_shards_columns_and_are_always_fitted():
    shares = pd.Series({TOTAL: 40.0, BANDED: 9.0, CBO: 0.0})
    out = add_consistency_targets(shard_matrix(), contributions(), national_targets(), shares,
                                  {**SOURCE, "agency": "microplex"})  # fmt: skip
    # BANDED is not a total and CBO's share is zero: one consistency target.
    names = [t.name for t in out.targets]
    assert names == ["DE/a", "DE/b", "consistency/" + TOTAL]
    added = out.targets.targets[-1]
    assert (added.value, added.geography, added.group) == (40.0, "US", "consistency/irs_soi/uc")
    assert added.source["national_target"] == TOTAL and added.source["national_value"] == 1e9
    assert national_name(added.name) == TOTAL
    # household 10 contributes 1, 11 contributes 2, 12 contributes 3 (re-ordered columns)
    assert out.matrix.toarray()[-1].tolist() == [1.0, 2.0, 3.0]
    assert out.train.tolist() == [True, False, True]
    assert is_consistency(names).tolist() == [False, False, True]
    assert out.ledger["name"].tolist() == names and not out.ledger["held_out"].iloc[-1]
    # the national flag puts the block at half the loss weight against the state targets
    weights = count_normalisation(out.is_national)
    assert weights[-1] == pytest.approx(weights[:2].sum())


def test_no_total_to_share_leaves_the_matrix_alone():
    matrix = shard_matrix()
    same = add_consistency_targets(matrix, contributions(), national_targets(),
                                   pd.Series({BANDED: 3.0}), {})  # fmt: skip
    assert same is matrix


def test_contributions_missing_a_shard_household_is_an_error():
    partial = contributions()
    partial = SavedMatrix(partial.matrix[:, :2], partial.targets, partial.household_ids[:2])
    with pytest.raises(KeyError, match="lack households"):
        add_consistency_targets(shard_matrix(), partial, national_targets(),
                                pd.Series({TOTAL: 1.0}), {})  # fmt: skip


def test_state_share_weights_zero_every_other_state():
    weights = pd.Series([1.0, 2.0, 3.0], index=[5, 6, 7])
    assert state_share_weights(weights, np.array([6, 7])).tolist() == [0.0, 2.0, 3.0]
