"""The three release gates on the benchmark report (pure functions: numbers in, verdicts out).

- ``microsim_benchmarks_hold``: no unexplained fiscal or household-net-income delta
  between the candidate and the eCPS-method baseline larger than max(5% of the
  baseline's estimate, $5bn); a tracked explanations file may mark a delta as explained.
- ``runtime_within_budget``: median wall time of the suite's simulations on the candidate
  at most 1.25x the baseline's (WARN up to 2.0x, the beta band; ERROR above).
- ``artifact_size_within_budget``: the H5 at most 2x the baseline's (extensions excluded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

BENCHMARKS_GATE = "microsim_benchmarks_hold"
RUNTIME_GATE = "runtime_within_budget"
SIZE_GATE = "artifact_size_within_budget"
RELATIVE_TOLERANCE = 0.05
ABSOLUTE_TOLERANCE_BN = 5.0
RUNTIME_RATIO_PASS = 1.25
RUNTIME_RATIO_BETA = 2.0
SIZE_RATIO = 2.0
# The outputs the benchmark gate compares, as keys of ``reform_impacts``.
GATED_OUTPUTS: tuple[str, ...] = ("budget_impact_bn", "household_net_income_change_bn")
EXPLANATIONS_PATH = Path(__file__).with_name("explained_deltas.json")


@dataclass
class MicrosimGate:
    """A gate verdict: name, pass, severity (ERROR/WARN), summary and numbers."""

    name: str
    passed: bool
    severity: str
    summary: str
    value: float | None = None
    threshold: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "gate": self.name,
            "passed": self.passed,
            "severity": self.severity,
            "value": self.value,
            "threshold": self.threshold,
            "summary": self.summary,
        }


@dataclass(frozen=True)
class Explanation:
    """Why a delta is expected, and the largest |delta| ($bn) the reason covers (None: any):
    a bounded explanation still fails a regression beyond what was looked into."""

    reason: str
    up_to_bn: float | None = None

    def covers(self, delta_bn: float) -> bool:
        return self.up_to_bn is None or abs(delta_bn) <= self.up_to_bn


def load_explanations(path: Path = EXPLANATIONS_PATH) -> dict[tuple[str, str], Explanation]:
    """(reform id, output) -> explanation, from the tracked explanations file (an entry's
    optional ``up_to_bn`` bounds the delta it covers); bad entries named."""
    document = json.loads(Path(path).read_text())
    explained: dict[tuple[str, str], Explanation] = {}
    for number, entry in enumerate(document.get("explained", [])):
        missing = [k for k in ("reform", "output", "reason") if not entry.get(k)]
        if missing:
            raise ValueError(f"{path}: explained[{number}] lacks {missing}")
        if entry["output"] not in GATED_OUTPUTS:
            raise ValueError(
                f"{path}: explained[{number}] output {entry['output']!r} is not one of "
                f"{list(GATED_OUTPUTS)}"
            )
        bound = entry.get("up_to_bn")
        if bound is not None and not (isinstance(bound, int | float) and bound > 0):
            raise ValueError(f"{path}: explained[{number}] up_to_bn must be a positive number")
        explained[(entry["reform"], entry["output"])] = Explanation(
            entry["reason"], None if bound is None else float(bound)
        )
    return explained


def benchmark_deltas(
    impacts: dict[str, dict[str, dict[str, Any]]],
    candidate: str,
    baseline: str,
    explanations: dict[tuple[str, str], Explanation],
    relative: float = RELATIVE_TOLERANCE,
    absolute_bn: float = ABSOLUTE_TOLERANCE_BN,
) -> list[dict[str, Any]]:
    """One row per reform and gated output: both estimates, the delta, its allowance
    max(relative x |baseline|, absolute_bn) (the release rule's 5% and $5bn by default)."""
    rows = []
    for reform_id, by_dataset in impacts.items():
        for output in GATED_OUTPUTS:
            ours = float(by_dataset[candidate][output])
            theirs = float(by_dataset[baseline][output])
            allowed = max(relative * abs(theirs), absolute_bn)
            delta = ours - theirs
            explanation = explanations.get((reform_id, output))
            reason = explanation.reason if explanation and explanation.covers(delta) else None
            rows.append(
                {
                    "reform": reform_id,
                    "output": output,
                    "candidate_bn": ours,
                    "baseline_bn": theirs,
                    "delta_bn": delta,
                    "allowed_bn": allowed,
                    "within": abs(delta) <= allowed,
                    "explained": reason,
                }
            )
    return rows


def benchmarks_gate(rows: list[dict[str, Any]]) -> MicrosimGate:
    """Fails on any delta beyond its allowance that the explanations file does not mark."""
    unexplained = [r for r in rows if not r["within"] and not r["explained"]]
    explained = [r for r in rows if not r["within"] and r["explained"]]
    worst = max((abs(r["delta_bn"]) / r["allowed_bn"] for r in rows), default=0.0)
    names = ", ".join(f"{r['reform']}.{r['output']}" for r in unexplained)
    return MicrosimGate(
        BENCHMARKS_GATE,
        passed=not unexplained,
        severity="ERROR",
        summary=(
            f"{len(rows)} deltas checked; {len(unexplained)} unexplained beyond their "
            f"allowance{': ' + names if names else ''}; {len(explained)} explained"
        ),
        value=worst,
        threshold=1.0,
        details={"deltas": rows},
    )


def runtime_gate(candidate_seconds: list[float], baseline_seconds: list[float], note: str = ""):
    """Median candidate wall time over the baseline's: pass <= 1.25, WARN <= 2.0, else ERROR."""
    ours, theirs = median(candidate_seconds), median(baseline_seconds)
    ratio = ours / theirs if theirs > 0 else float("inf")
    passed = ratio <= RUNTIME_RATIO_PASS
    severity = "WARN" if ratio <= RUNTIME_RATIO_BETA else "ERROR"
    band = "within budget" if passed else ("beta band" if severity == "WARN" else "over budget")
    return MicrosimGate(
        RUNTIME_GATE,
        passed=passed,
        severity="ERROR" if passed else severity,
        summary=f"median {ours:.1f}s vs baseline {theirs:.1f}s: ratio {ratio:.2f} ({band})"
        + (f"; {note}" if note else ""),
        value=ratio,
        threshold=RUNTIME_RATIO_PASS,
        details={"candidate_seconds": candidate_seconds, "baseline_seconds": baseline_seconds},
    )


def size_gate(candidate_bytes: int, baseline_bytes: int) -> MicrosimGate:
    """The candidate H5 (extensions excluded) at most 2x the baseline H5."""
    ratio = candidate_bytes / baseline_bytes if baseline_bytes > 0 else float("inf")
    return MicrosimGate(
        SIZE_GATE,
        passed=ratio <= SIZE_RATIO,
        severity="ERROR",
        summary=f"H5 {candidate_bytes / 1e6:,.1f} MB vs baseline {baseline_bytes / 1e6:,.1f} MB: "
        f"ratio {ratio:.2f} (limit {SIZE_RATIO:g})",
        value=ratio,
        threshold=SIZE_RATIO,
        details={"candidate_bytes": candidate_bytes, "baseline_bytes": baseline_bytes},
    )
