"""Saved per-record suite results score any weight vector exactly as the build's suite."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_microsim_outputs import WEIGHTS, baseline, reform

from microplex_assets.validation.microsim.outputs import SimulationResults
from microplex_assets.validation.microsim.persist import load_suite, save_suite
from microplex_assets.validation.microsim.suite import ReformRun, SuiteRun


def with_tanf(results: SimulationResults) -> SimulationResults:
    """The suite tracks TANF too (``suite.BENEFITS``); the hand-made frames have none."""
    return SimulationResults(results.household.assign(tanf=0.0), results.person)


def as_json(value) -> str:
    """Exact comparison that treats NaN (an empty decile) as equal to NaN."""
    return json.dumps(value, sort_keys=True, default=float)


def suite_with_add_back() -> SuiteRun:
    suite = SuiteRun("abc123", 7, with_tanf(baseline()))
    add_back = pd.Series({30: 2_500.0})  # e.g. the indexation's untaxed gain, restored
    suite.runs["taxes_more"] = ReformRun("taxes_more", 4, 12.5, with_tanf(reform()), add_back)
    return suite


def test_saved_suite_gives_the_same_impacts_and_levels_for_any_weights(tmp_path):
    suite = suite_with_add_back()
    save_suite(suite, tmp_path)
    loaded = load_suite(tmp_path)
    other = WEIGHTS * pd.Series([1.0, 0.5, 3.0, 2.0, 1.0, 4.0], index=WEIGHTS.index)
    weights = {"a": WEIGHTS, "b": other}
    assert as_json(loaded.impacts(weights)) == as_json(suite.impacts(weights))
    assert as_json(loaded.levels(weights)) == as_json(suite.levels(weights))
    assert loaded.impacts(weights)["taxes_more"]["b"]["budget_impact_bn"] != 0
    assert (loaded.manifest_hash, loaded.manifest_version) == ("abc123", 7)
    assert loaded.seconds() == {"taxes_more": 12.5}
    # the add-back is in the saved net income: household 30 keeps 2,500 more under the reform
    saved = loaded.runs["taxes_more"].results.household.loc[30, "household_net_income"]
    assert saved == reform().household.loc[30, "household_net_income"] + 2_500.0
    assert saved != reform().household.loc[30, "household_net_income"]


def test_missing_results_name_the_file(tmp_path):
    save_suite(suite_with_add_back(), tmp_path)
    (tmp_path / "suite_results" / "taxes_more_person.parquet").unlink()
    with pytest.raises(FileNotFoundError, match="taxes_more_person.parquet"):
        load_suite(tmp_path)
    with pytest.raises(FileNotFoundError, match="no saved suite results"):
        load_suite(tmp_path / "elsewhere")
