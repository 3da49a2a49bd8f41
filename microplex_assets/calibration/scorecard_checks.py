"""The scorecard's gates as blocking asset checks on ``calibration_scorecard`` (one check
per gate, named like the gate), and the gate-to-check-result conversion the weight checks
share."""

from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from microplex_assets.calibration.assets import calibration_scorecard
from microplex_assets.calibration.scorecard import (
    FALLBACK_GATE,
    HELD_OUT_GATE,
    PROTECTED_FAMILIES_GATE,
    SALIENT_AGGREGATES_GATE,
    TARGET_LOSS_GATE,
    GateResult,
    broad_loss_gate,
    fallback_gate,
    held_out_gate,
    protected_families_gate,
    salient_aggregates_gate,
)
from microplex_assets.calibration.target_quality import TARGETS_KEPT_GATE, targets_kept_gate
from microplex_assets.gate_checks import blocking_gate_check


def gate_check_result(gate: GateResult) -> AssetCheckResult:
    """A gate verdict as an asset-check result with its numbers in the metadata."""
    metadata: dict[str, Any] = {
        "summary": gate.summary,
        "value": gate.value if gate.value is not None else float("nan"),
        "threshold": gate.threshold if gate.threshold is not None else float("nan"),
    }
    for key, detail in gate.details.items():
        # numbers and text as they are (MetadataValue.json refuses a bare scalar)
        plain = isinstance(detail, (int, float, str, bool))
        metadata[key] = detail if plain else MetadataValue.json(detail)
    return AssetCheckResult(
        passed=gate.passed,
        severity=AssetCheckSeverity(gate.severity),
        metadata=metadata,
        description=gate.summary,
    )


def gate_verdict(gate: GateResult) -> AssetCheckResult | str:
    """The check result of a gate, or why it does not apply (then no result: "Skipped")."""
    return gate_check_result(gate) if gate.applicable else gate.summary


def _gate_check(gate_fn, name: str, description: str):
    """A blocking asset check on the scorecard that shows one gate (named like the gate)."""
    return blocking_gate_check(
        calibration_scorecard,
        name,
        description,
        lambda scorecard: gate_verdict(gate_fn(scorecard["card"])),
    )


target_loss_below_baseline = _gate_check(
    broad_loss_gate,
    TARGET_LOSS_GATE,
    "Candidate loss below the eCPS-method baseline's on all kept targets.",
)
protected_families_hold = _gate_check(
    protected_families_gate,
    PROTECTED_FAMILIES_GATE,
    "No protected family (SSI, SNAP, wages, self-employment, capital gains, interest, "
    "dividends, retirement income, disability, household net income) worse than the "
    "baseline by more than max(5% relative, 0.005 absolute).",
)
held_out_loss_below_baseline = _gate_check(
    held_out_gate,
    HELD_OUT_GATE,
    "Candidate loss on the test split (whole families never shown to a solver; cells "
    "without one: the validation groups) below the baseline's.",
)
protected_targets_kept = _gate_check(
    targets_kept_gate,
    TARGETS_KEPT_GATE,
    "No protected family lost more than a quarter (build setting) of its registry targets "
    "to drops before fitting.",
)
high_salience_aggregates = _gate_check(
    salient_aggregates_gate,
    SALIENT_AGGREGATES_GATE,
    "APE of the high-salience aggregates vs the baseline's; worse ones are marked (WARN).",
)
beats_national_fallback = _gate_check(
    fallback_gate,
    FALLBACK_GATE,
    "A local shard's loss on its state's held-in targets below its national|<state> "
    "fallback's (national|US weights on the state's records); other cells: not applicable.",
)
