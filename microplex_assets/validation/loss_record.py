"""The loss record: a build's fit to its targets, next to every baseline, in the bundle.

``loss_record.json`` is the machine-readable evidence of a release: target-set hash,
target counts, train and held-out loss per method, per-family losses, each gate's
verdict with value and threshold, weight diagnostics. It is validated against
``loss_record.schema.json`` (kept beside this module) before it is published, so a
record that lacks a field never reaches a bundle.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from microplex_assets.calibration.scorecard import GateResult, Scorecard
from microplex_assets.calibration.target_quality import dropped_targets
from microplex_assets.files import json_safe

SCHEMA_PATH = Path(__file__).with_name("loss_record.schema.json")
# 2: microsim_benchmarks (the frozen reform suite's summary); 3: train / validation / test
# split (losses, counts, test_groups), share within 10%, dropped targets, weight health
SCHEMA_VERSION = 3


class LossRecordError(ValueError):
    """A loss record does not match its JSON Schema; the message names the field."""


@cache
def loss_record_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def validate_loss_record(record: dict[str, Any]) -> None:
    """Raise LossRecordError naming the first field that breaks the schema."""
    validator = jsonschema.Draft202012Validator(loss_record_schema())
    errors = sorted(validator.iter_errors(record), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise LossRecordError(
            f"loss record field '{where}': {first.message} ({len(errors)} schema errors)"
        )


def build_loss_record(
    *,
    cell: dict[str, Any],
    run_id: str,
    target_set_hash: str,
    target_counts: dict[str, int],
    held_out_groups: list[str],
    card: Scorecard,
    test_groups: list[str] | None = None,
    gates: list[GateResult],
    weight_diagnostics: dict[str, Any],
    calibration: dict[str, Any],
    pinned_baseline: dict[str, Any] | None = None,
    donor_integration: dict[str, Any] | None = None,
    top_tail: dict[str, Any] | None = None,
    microsim_benchmarks: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The loss record of one build (validated: raises LossRecordError if incomplete)."""
    record = {
        "schema_version": SCHEMA_VERSION,
        "product": cell["product"],
        "geography": cell["geography"],
        "year": int(cell["year"]),
        "run_id": run_id,
        "target_set_hash": target_set_hash,
        "target_counts": target_counts,
        "held_out_groups": list(held_out_groups),
        "test_groups": list(test_groups or []),
        "losses": card.losses(),
        "dropped_targets": (
            [] if card.ledger is None else dropped_targets(card.ledger).to_dict(orient="records")
        ),
        "family_losses": card.family_losses().to_dict(orient="records"),
        "salient_aggregates": card.salient_aggregates().to_dict(orient="records"),
        "gates": [gate.as_dict() for gate in gates],
        "weight_diagnostics": weight_diagnostics,
        "calibration": calibration,
        "pinned_baseline": pinned_baseline,
        "donor_integration": donor_integration,
        "top_tail": top_tail,
        "microsim_benchmarks": microsim_benchmarks,
    }
    record = json_safe(record)
    validate_loss_record(record)
    return record
