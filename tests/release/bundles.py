"""Tiny hand-made run bundles (no PolicyEngine): a fake H5, manifest and loss record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from microplex_assets.release.bundle import publish_run_bundle


def gate(name: str, passed: bool = True, severity: str = "ERROR", value: float = 1.0) -> dict:
    status = "pass" if passed else ("fail" if severity == "ERROR" else "warn")
    return {"name": name, "status": status, "passed": passed, "value": value,
            "threshold": 2.0, "severity": severity, "summary": f"{name}: {status}"}  # fmt: skip


def suite(passed: bool = True) -> dict[str, Any]:
    return {
        "manifest_version": 1,
        "manifest_hash": "abc",
        "reforms": [
            {
                "reform": "ctc",
                "candidate": {"budget_impact_bn": -10.0},
                "ecps_method": {"budget_impact_bn": -11.0},
            }
        ],  # fmt: skip
        "gates": [
            {
                "gate": "microsim_benchmarks_hold",
                "passed": passed,
                "severity": "ERROR",
                "value": 0.1,
                "threshold": 0.05,
                "summary": "benchmarks " + str(passed),
            },
            {
                "gate": "runtime_within_budget",
                "passed": True,
                "severity": "WARN",
                "value": 1.1,
                "threshold": 1.25,
                "summary": "runtime ok",
            },
        ],  # fmt: skip
    }


def loss_record(
    product: str = "national",
    geography: str = "US",
    gates: list[dict] | None = None,
    benchmarks: dict | None = None,
    train: float = 0.5,
    run_id: str = "run",
) -> dict[str, Any]:
    return {
        "schema_version": 3,
        "product": product,
        "geography": geography,
        "year": 2024,
        "run_id": run_id,
        "target_set_hash": "t" * 16,
        "target_counts": {"kept": 10},
        "losses": {
            "candidate": {"train": train, "validation": train * 1.2, "test": train * 1.3,
                          "held_out": train * 1.25, "all": train, "within_10pct": 0.6},
            "ecps_method": {"train": 1.0, "validation": 1.1, "test": 1.2, "held_out": 1.15,
                            "all": 1.0, "within_10pct": 0.4},
        },  # fmt: skip
        "family_losses": [
            {"family": "soi_agi", "targets": 5, "held_out": 1, "candidate": 0.2,
             "ecps_method": 0.5},
            {"family": "snap", "targets": 5, "held_out": 1, "candidate": 0.9,
             "ecps_method": 0.3},
        ],  # fmt: skip
        "gates": gates if gates is not None else [gate("target_loss_below_baseline")],
        "weight_diagnostics": {"records": 100, "nonzero_weights": 90,
                               "effective_sample_size": 40.0, "largest_weight_share": 0.05},
        "microsim_benchmarks": benchmarks if benchmarks is not None else suite(),
    }  # fmt: skip


def make_bundle(
    cell_dir: Path,
    key: str,
    record: dict[str, Any] | None = None,
    h5_text: str | None = None,
    derived: bool = False,
    scores: list[dict[str, Any]] | None = None,
) -> Path:
    """Publish a tiny bundle as run ``key`` of ``cell_dir``; returns its folder."""
    src = Path(cell_dir).parent / f"_src_{Path(cell_dir).name}_{key}"
    src.mkdir(parents=True)
    (src / "policyengine_us_2024.h5").write_text(h5_text or f"h5 of {key}")
    manifest: dict[str, Any] = {"manifest_schema_version": 1, "dataset": "policyengine_us_2024.h5",
                                "h5": {"sha256": "x", "size_bytes": 10},
                                "record_counts": {"household": 100}}  # fmt: skip
    files = {"policyengine_us_2024.h5": src / "policyengine_us_2024.h5"}
    if derived:
        manifest["derived_from"] = "national|US"
        (src / "scores.json").write_text(json.dumps({"scores": scores or []}))
        files["scores.json"] = src / "scores.json"
    else:
        (src / "loss_record.json").write_text(json.dumps(record or loss_record()))
        files["loss_record.json"] = src / "loss_record.json"
        (src / "aggregates.json").write_text(json.dumps({"aggregates": []}))
        files["validation/aggregates.json"] = src / "aggregates.json"
    (src / "manifest.json").write_text(json.dumps(manifest))
    files["manifest.json"] = src / "manifest.json"
    return publish_run_bundle(files, cell_dir, key, {"run_id": key})
