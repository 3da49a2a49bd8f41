"""Whether a run bundle may become current: its blocking gates, read from the bundle itself.

The verdicts are the ones the build recorded in ``loss_record.json`` (the calibration
gates, and the microsim benchmark suite's under ``microsim_benchmarks``); promotion
re-reads them from the bundle so a bundle promoted by hand weeks later is judged on
exactly what it shipped with, and checks the bundle against its SHA256SUMS.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from microplex_assets.release.bundle import verify_bundle

# validation.microsim.gates.BENCHMARKS_GATE (release does not import validation; a test
# checks the two agree).
BENCHMARKS_GATE = "microsim_benchmarks_hold"
# The cell whose release replaces the eCPS: it needs a passing benchmark suite too.
BENCHMARKED_CELLS = {("national", "US")}


def gate_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Every gate of a loss record as ``{source, gate, passed, severity, status, value,
    threshold, summary}``: the calibration gates, then the benchmark suite's."""
    rows = []
    for gate in record.get("gates") or []:
        rows.append({"source": "calibration", "gate": gate.get("name"), **_verdict(gate)})
    suite = record.get("microsim_benchmarks") or {}
    for gate in suite.get("gates") or []:
        rows.append({"source": "microsim", "gate": gate.get("gate") or gate.get("name"),
                     **_verdict(gate)})  # fmt: skip
    return rows


def _verdict(gate: dict[str, Any]) -> dict[str, Any]:
    passed = bool(gate.get("passed"))
    severity = str(gate.get("severity") or "ERROR").upper()
    status = gate.get("status") or ("pass" if passed else "fail" if severity == "ERROR" else "warn")
    return {
        "passed": passed,
        "severity": severity,
        "status": status,
        "value": gate.get("value"),
        "threshold": gate.get("threshold"),
        "summary": gate.get("summary"),
    }


def is_blocking_failure(row: dict[str, Any]) -> bool:
    """A gate that did not pass at ERROR severity (a WARN gate never blocks)."""
    return not row["passed"] and row["severity"] == "ERROR"


def read_json(folder: Path, name: str) -> dict[str, Any] | None:
    path = Path(folder) / name
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error


def promotion_blockers(folder: Path, product: str, geography: str) -> list[str]:
    """Why bundle ``folder`` may not become current for ``product|geography`` (empty: it
    may). Record cells need a loss record whose blocking gates all passed; national|US
    also a benchmark suite whose gates all passed; a derived cell (fallback, fan-in) has
    no gates of its own and needs only an intact bundle."""
    folder = Path(folder)
    if not folder.is_dir():
        return [f"no run bundle at {folder}"]
    problems = verify_bundle(folder)
    manifest = read_json(folder, "manifest.json")
    if manifest is None:
        problems.append(f"{folder.name}: no manifest.json")
    record = read_json(folder, "loss_record.json")
    derived = manifest is not None and "derived_from" in manifest
    if record is None:
        if not derived:
            problems.append(f"{folder.name}: no loss_record.json, so its gates are unmeasured")
        return problems
    cell = f"{record.get('product')}|{record.get('geography')}"
    if cell != f"{product}|{geography}":
        problems.append(f"{folder.name}: its loss record is for {cell}, not {product}|{geography}")
    rows = gate_rows(record)
    problems += [
        f"blocking gate '{row['gate']}' ({row['source']}) failed: {row['summary']}"
        for row in rows
        if is_blocking_failure(row)
    ]
    if (product, geography) in BENCHMARKED_CELLS:
        suite = record.get("microsim_benchmarks") or {}
        held = [r for r in rows if r["source"] == "microsim" and r["gate"] == BENCHMARKS_GATE]
        if "skipped" in suite or not held:
            why = suite.get("skipped", "no benchmark suite in the loss record")
            problems.append(f"{product}|{geography} needs a passing benchmark suite: {why}")
        elif not held[0]["passed"] and not is_blocking_failure(held[0]):
            problems.append(f"gate '{BENCHMARKS_GATE}' did not pass: {held[0]['summary']}")
    return problems
