"""The benchmark suite's three gates on hand-made numbers (no PolicyEngine)."""

from __future__ import annotations

import json

import pytest

from microplex_assets.validation.microsim.gates import (
    benchmark_deltas,
    benchmarks_gate,
    load_explanations,
    runtime_gate,
    size_gate,
)


def impacts(candidate_budget: float, baseline_budget: float, net: float = 0.0):
    return {
        "broad": {
            "candidate": {
                "budget_impact_bn": candidate_budget,
                "household_net_income_change_bn": -candidate_budget + net,
            },
            "ecps_method": {
                "budget_impact_bn": baseline_budget,
                "household_net_income_change_bn": -baseline_budget,
            },
        }
    }


def test_delta_within_five_percent_or_five_billion_passes():
    # 5% of 200 = 10 > 5: a 9.9bn delta is allowed, 10.1bn is not.
    assert benchmarks_gate(benchmark_deltas(impacts(209.9, 200.0), "candidate", "ecps_method", {}))
    rows = benchmark_deltas(impacts(210.1, 200.0), "candidate", "ecps_method", {})
    gate = benchmarks_gate(rows)
    assert not gate.passed and gate.severity == "ERROR"
    assert "broad.budget_impact_bn" in gate.summary
    # Small estimates get the $5bn floor: 4.9bn off a 10bn estimate passes.
    assert benchmarks_gate(
        benchmark_deltas(impacts(14.9, 10.0), "candidate", "ecps_method", {})
    ).passed


def test_explained_delta_passes_and_is_reported(tmp_path):
    path = tmp_path / "explained.json"
    entry = {"reform": "broad", "output": "budget_impact_bn", "reason": "known: spine"}
    entry2 = {**entry, "output": "household_net_income_change_bn"}
    path.write_text(json.dumps({"version": 1, "explained": [entry, entry2]}))
    explanations = load_explanations(path)
    rows = benchmark_deltas(impacts(300.0, 200.0), "candidate", "ecps_method", explanations)
    gate = benchmarks_gate(rows)
    assert gate.passed
    assert "2 explained" in gate.summary
    assert {r["explained"] for r in rows} == {"known: spine"}


def test_a_bounded_explanation_covers_only_deltas_up_to_its_bound(tmp_path):
    path = tmp_path / "explained.json"
    entry = {"reform": "broad", "output": "budget_impact_bn", "reason": "r", "up_to_bn": 120}
    path.write_text(json.dumps({"version": 1, "explained": [entry]}))
    explanations = load_explanations(path)
    seen = benchmark_deltas(impacts(300.0, 200.0), "candidate", "ecps_method", explanations)
    assert [r["explained"] for r in seen if r["output"] == "budget_impact_bn"] == ["r"]
    beyond = benchmark_deltas(impacts(330.0, 200.0), "candidate", "ecps_method", explanations)
    assert [r["explained"] for r in beyond if r["output"] == "budget_impact_bn"] == [None]
    assert not benchmarks_gate(beyond).passed
    path.write_text(json.dumps({"explained": [{**entry, "up_to_bn": -1}]}))
    with pytest.raises(ValueError, match="up_to_bn must be a positive number"):
        load_explanations(path)


def test_explanations_file_names_a_bad_entry(tmp_path):
    path = tmp_path / "explained.json"
    path.write_text(json.dumps({"explained": [{"reform": "broad", "output": "gini"}]}))
    with pytest.raises(ValueError, match=r"explained\[0\] lacks \['reason'\]"):
        load_explanations(path)


def test_tracked_explanations_file_loads():
    assert isinstance(load_explanations(), dict)


def test_runtime_gate_bands():
    assert runtime_gate([10.0, 12.0, 11.0], [10.0, 10.0, 10.0]).passed  # 1.1x
    beta = runtime_gate([15.0], [10.0])
    assert not beta.passed and beta.severity == "WARN"
    over = runtime_gate([25.0], [10.0])
    assert not over.passed and over.severity == "ERROR"
    assert over.value == pytest.approx(2.5)


def test_size_gate():
    assert size_gate(199, 100).passed
    failed = size_gate(201, 100)
    assert not failed.passed and failed.value == pytest.approx(2.01)
