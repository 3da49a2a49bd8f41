"""Report plumbing without PolicyEngine: the same-records check and the loss-record summary."""

from __future__ import annotations

import h5py
import jsonschema
import numpy as np

from microplex_assets.validation.loss_record import loss_record_schema
from microplex_assets.validation.microsim.benchmark_report import (
    loss_record_summary,
    not_applicable,
)
from microplex_assets.validation.microsim.gates import benchmarks_gate, runtime_gate, size_gate
from microplex_resources.simulation_reuse import records_digest


def write_h5(path, weights, income):
    with h5py.File(path, "w") as h5:
        h5.create_group("household_id").create_dataset("2024", data=np.arange(1, 4))
        h5.create_group("household_weight").create_dataset("2024", data=np.asarray(weights))
        h5.create_group("employment_income").create_dataset("2024", data=np.asarray(income))
    return path


def test_digest_ignores_weights_only(tmp_path):
    a = write_h5(tmp_path / "a.h5", [1.0, 2.0, 3.0], [10.0, 20.0, 30.0])
    b = write_h5(tmp_path / "b.h5", [9.0, 0.0, 3.0], [10.0, 20.0, 30.0])
    c = write_h5(tmp_path / "c.h5", [1.0, 2.0, 3.0], [10.0, 20.0, 31.0])
    assert records_digest(a) == records_digest(b)
    assert records_digest(a) != records_digest(c)


def summary_schema():
    return loss_record_schema()["properties"]["microsim_benchmarks"]


def test_summary_matches_the_loss_record_schema():
    impact = {
        "budget_impact_bn": -100.0,
        "household_net_income_change_bn": 100.0,
        "spm_poverty_rate_change_pp": -1.0,
    }
    report = {
        "manifest": {"version": 1, "content_hash": "a" * 64},
        "impacts": {"arpa_ctc": {"candidate": impact, "ecps_method": impact}},
        "gates": {
            "microsim_benchmarks_hold": benchmarks_gate([]),
            "runtime_within_budget": runtime_gate([1.0], [1.0]),
            "artifact_size_within_budget": size_gate(1, 1),
        },
    }
    summary = loss_record_summary(report)
    jsonschema.validate(summary, summary_schema())
    assert summary["reforms"][0]["candidate"]["budget_impact_bn"] == -100.0
    assert [g["gate"] for g in summary["gates"]] == [
        "microsim_benchmarks_hold",
        "runtime_within_budget",
        "artifact_size_within_budget",
    ]
    skipped = loss_record_summary(not_applicable("local shard"))
    jsonschema.validate(skipped, summary_schema())
    assert skipped == {"skipped": "local shard"}


def test_every_gate_becomes_a_check_result_with_its_numbers():
    from microplex_assets.validation.benchmark_assets import gate_result

    report = {
        "manifest": {"version": 1, "content_hash": "a" * 64},
        "gates": {
            "microsim_benchmarks_hold": benchmarks_gate([]),
            "runtime_within_budget": runtime_gate([2.0], [1.0]),
            "artifact_size_within_budget": size_gate(384_842, 384_000),
        },
    }
    size = gate_result(report, "artifact_size_within_budget")
    assert size.passed and size.metadata["candidate_bytes"].value == 384_842
    runtime = gate_result(report, "runtime_within_budget")
    assert not runtime.passed and runtime.severity.value == "WARN"
    assert gate_result(report, "microsim_benchmarks_hold").passed
    # Not applicable: no result at all (the UI shows Skipped), never a pass.
    skipped = gate_result(not_applicable("local shard"), "runtime_within_budget")
    assert skipped == "not applicable: local shard"
