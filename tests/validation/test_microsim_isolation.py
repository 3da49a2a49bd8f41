"""Reform slices in forked children: results come back, failures surface, memory does not."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from microplex_assets.validation.microsim.isolation import call_in_fork, fork_available
from microplex_assets.validation.microsim.memory import current_rss_gb

pytestmark = pytest.mark.skipif(not fork_available(), reason="needs the 'fork' start method")


def _frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"x": np.arange(rows, dtype=float)}, index=pd.RangeIndex(rows))


def _fail() -> None:
    raise ValueError("slice went wrong")


def _die() -> None:
    os._exit(9)


def _allocate_and_sum(megabytes: int) -> float:
    block = np.ones(megabytes * 2**20 // 8)
    return float(block.sum())


def test_result_comes_back_with_the_childs_memory():
    frame, memory = call_in_fork(_frame, 1_000)
    pd.testing.assert_frame_equal(frame, _frame(1_000))
    assert memory["peak_rss_gb"] >= memory["rss_gb"] > 0


def test_an_exception_in_the_child_is_raised_with_its_traceback():
    with pytest.raises(RuntimeError, match="ValueError: slice went wrong"):
        call_in_fork(_fail)


def test_a_child_that_dies_without_a_result_names_its_exit_code():
    with pytest.raises(RuntimeError, match="exit code 9"):
        call_in_fork(_die)


def test_memory_the_child_allocates_does_not_stay_in_the_parent():
    before = current_rss_gb()
    total, memory = call_in_fork(_allocate_and_sum, 400)
    assert total == 400 * 2**20 // 8
    assert memory["peak_rss_gb"] > before + 0.3
    assert current_rss_gb() < before + 0.1
