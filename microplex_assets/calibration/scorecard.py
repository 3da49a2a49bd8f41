"""Scores of weight vectors on the kept targets, and the release gates that judge them.

One scorecard per cell: the candidate's weights, the eCPS-method reproduction's, the
design weights and (when pinned) an external H5's estimates, each scored with the one
loss of ``loss.py`` on the same kept targets, split into train and held-out. The gate
rules are plain functions of the scorecard, so the asset checks (which show them in the
UI and block publication) and the loss record (which keeps them in the bundle) can
never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.calibration.loss import (
    absolute_percentage_error,
    relative_errors,
    target_loss,
)
from microplex_assets.calibration.matrix import TargetMatrix

PROTECTED_FAMILIES: tuple[str, ...] = (
    "ssi",
    "snap",
    "wages",
    "self_employment",
    "capital_gains",
    "interest",
    "dividends",
    "retirement_income",
    "disability",
    "household_net_income",
)
PROTECTED_RELATIVE_TOLERANCE = 0.05
PROTECTED_ABSOLUTE_TOLERANCE = 0.005
# quantity -> (family, aggregation, PolicyEngine variables that name it)
HIGH_SALIENCE: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "SSI recipients": ("ssi", "count", ("ssi",)),
    "SSI value": ("ssi", "sum", ("ssi",)),
    "SNAP recipients": ("snap", "count", ("snap",)),
    "SNAP value": ("snap", "sum", ("snap",)),
    "wages": ("wages", "sum", ("employment_income", "irs_employment_income")),
    "long-term capital gains": ("capital_gains", "sum", ("long_term_capital_gains",)),
    "taxable interest": ("interest", "sum", ("taxable_interest_income",)),
    "ordinary dividends": ("dividends", "sum", ("ordinary_dividend_income",)),
    "self-employment income": ("self_employment", "sum", ("self_employment_income",)),
    "household net income": ("household_net_income", "sum", ("household_net_income",)),
}
CANDIDATE = "candidate"
# Gate names: the loss record's gate names and the asset checks' names are these.
TARGET_LOSS_GATE = "target_loss_below_baseline"
PROTECTED_FAMILIES_GATE = "protected_families_hold"
HELD_OUT_GATE = "held_out_loss_below_baseline"
SALIENT_AGGREGATES_GATE = "high_salience_aggregates"
ECPS_METHOD = "ecps_method"
FALLBACK_GATE = "beats_national_fallback"
FALLBACK = "national_fallback"  # national|US weights scored on a local shard's targets


@dataclass
class Scorecard:
    """Per-target estimates of every scored weight vector, with the split and families."""

    targets: pd.DataFrame  # name, family, group, geography, value, is_national, train
    estimates: dict[str, np.ndarray]  # method -> estimate per kept target (nan: not scored)
    gate_severity: str = "ERROR"  # WARN where the cell is not calibrated (reported only)
    notes: list[str] = field(default_factory=list)
    fallback: dict[str, Any] | None = None  # the national bundle a local shard is scored against
    ledger: pd.DataFrame | None = None  # every registry target of the cell, kept or dropped
    max_dropped_share: float = 0.25  # protected_targets_kept: largest dropped share allowed
    target_loss_tolerance: float = 0.0  # target_loss_below_baseline: relative allowance
    # beats_national_fallback: set for local shards (they must beat their fallback); the
    # reason the fallback could not be scored, when it could not (a failure, never a pass)
    fallback_required: bool = False
    fallback_error: str | None = None

    @classmethod
    def from_matrix(
        cls, matrix: TargetMatrix, weights: dict[str, np.ndarray], **kwargs: Any
    ) -> Scorecard:
        frame = matrix.targets.to_frame()[
            ["name", "family", "group", "geography", "value", "aggregation", "variable", "filters"]
        ]
        frame["is_national"] = matrix.is_national
        frame["train"] = matrix.train
        frame["split"] = matrix.split
        kwargs.setdefault("ledger", matrix.ledger)
        return cls(frame, {m: matrix.estimates(w) for m, w in weights.items()}, **kwargs)

    def loss(self, method: str, mask: np.ndarray | None = None) -> float:
        """The shared loss of ``method`` over the masked targets it scored."""
        mask = np.ones(len(self.targets), bool) if mask is None else np.asarray(mask, bool)
        estimates = self.estimates[method]
        mask = mask & np.isfinite(estimates)
        return target_loss(
            estimates[mask],
            self.targets["value"].to_numpy()[mask],
            self.targets["is_national"].to_numpy()[mask],
        )

    @property
    def train(self) -> np.ndarray:
        return self.targets["train"].to_numpy(bool)

    def split_mask(self, name: str) -> np.ndarray:
        """train / validation / test targets (a card without a split column: no test)."""
        if "split" in self.targets:
            return (self.targets["split"] == name).to_numpy()
        if name == "test":
            return np.zeros(len(self.targets), dtype=bool)
        return self.train if name == "train" else ~self.train

    @property
    def judged_held_out(self) -> np.ndarray:
        """What the held-out gates judge: the test split, else (no test) the validation."""
        test = self.split_mask("test")
        return test if test.any() else ~self.train

    def within_share(self, method: str, mask: np.ndarray | None = None, tol: float = 0.1) -> float:
        """Share of the masked targets whose estimate is within ``tol`` of the value."""
        mask = np.ones(len(self.targets), bool) if mask is None else np.asarray(mask, bool)
        values = self.targets["value"].to_numpy(float)[mask]
        estimates = self.estimates[method][mask]
        if not len(values):
            return float("nan")
        return float(np.mean(np.abs(estimates - values) <= tol * np.abs(values)))

    def within_ceiling(self, method: str, tol: float = 0.1) -> float:
        """Share of kept targets within ``tol`` if every train target were hit and the
        held-out ones stayed as they are: the most any fit of the train split can reach."""
        held_out = ~self.train
        hits = self.train.sum() + self.within_share(method, held_out, tol) * held_out.sum()
        return float(hits / len(self.targets)) if len(self.targets) else float("nan")

    def losses(self) -> dict[str, dict[str, float]]:
        """train / validation / test / held_out (validation + test) / all loss, the share of
        kept (and of train) targets within 10%, and the ceiling on the kept share that the
        unfitted held-out targets leave, for every scored method."""
        return {
            method: {
                "train": self.loss(method, self.train),
                "validation": self.loss(method, self.split_mask("validation")),
                "test": self.loss(method, self.split_mask("test")),
                "held_out": self.loss(method, ~self.train),
                "all": self.loss(method),
                "within_10pct": self.within_share(method),
                "within_10pct_train": self.within_share(method, self.train),
                "within_10pct_ceiling": self.within_ceiling(method),
            }
            for method in self.estimates
        }

    def family_losses(self) -> pd.DataFrame:
        """One row per family: targets, and each method's loss over the family's targets."""
        rows = []
        for family, part in self.targets.groupby("family", sort=True):
            mask = self.targets["family"].to_numpy() == family
            row: dict[str, Any] = {
                "family": family,
                "targets": int(len(part)),
                "held_out": int((~part["train"]).sum()),
            }
            row.update({method: self.loss(method, mask) for method in self.estimates})
            rows.append(row)
        return pd.DataFrame(rows)

    def salient_aggregates(self, baseline: str = ECPS_METHOD) -> pd.DataFrame:
        """The high-salience quantities: target, estimates and APE for candidate and baseline.

        The target of a quantity is the national target of its family and aggregation on
        one of its variables with the fewest filters (the headline total); quantities
        with no such target are listed as "no target".
        """
        rows = []
        frame = self.targets
        for quantity, (family, aggregation, variables) in HIGH_SALIENCE.items():
            pick = frame[
                (frame["family"] == family)
                & (frame["aggregation"] == aggregation)
                & frame["variable"].isin(variables)
                & frame["is_national"]
            ]
            if pick.empty:
                rows.append(
                    {
                        "quantity": quantity,
                        "target_name": "no target",
                        "value": np.nan,
                        "candidate_ape": np.nan,
                        "baseline_ape": np.nan,
                    }
                )
                continue
            filters = pick["filters"].str.count(";") + (pick["filters"] != "")
            order = pd.DataFrame({"f": filters, "v": -pick["value"].abs()}).sort_values(["f", "v"])
            index = order.index[0]
            value = float(frame.loc[index, "value"])
            position = frame.index.get_loc(index)
            row = {"quantity": quantity, "target_name": frame.loc[index, "name"], "value": value}
            for method, label in ((CANDIDATE, "candidate"), (baseline, "baseline")):
                estimate = float(self.estimates[method][position])
                row[f"{label}_estimate"] = estimate
                row[f"{label}_ape"] = absolute_percentage_error(estimate, value)
            rows.append(row)
        return pd.DataFrame(rows)

    def target_deltas(self, baseline: str = ECPS_METHOD) -> pd.DataFrame:
        """Per target: relative error of candidate and baseline; positive gain = candidate
        closer to the target."""
        values = self.targets["value"].to_numpy()
        candidate = np.abs(relative_errors(self.estimates[CANDIDATE], values))
        other = np.abs(relative_errors(self.estimates[baseline], values))
        frame = self.targets[["name", "family", "geography", "value", "train"]].copy()
        frame["candidate_rel_error"] = candidate
        frame["baseline_rel_error"] = other
        frame["gain"] = other - candidate
        return frame


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict with the numbers behind it."""

    name: str
    passed: bool
    value: float | None
    threshold: float | None
    severity: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    applicable: bool = True  # False: nothing to judge in this cell (the summary says why)

    @property
    def status(self) -> str:
        if not self.applicable:
            return "not_applicable"
        if self.passed:
            return "pass"
        return "fail" if self.severity == "ERROR" else "warn"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "applicable": self.applicable,
            "passed": self.passed,
            "value": _finite_or_none(self.value),
            "threshold": _finite_or_none(self.threshold),
            "severity": self.severity,
            "summary": self.summary,
        }


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def broad_loss_gate(card: Scorecard, baseline: str = ECPS_METHOD) -> GateResult:
    """Candidate loss below the baseline's on every kept target both scored (times
    1 + ``target_loss_tolerance``, 0 unless a build setting opens it)."""
    ours, theirs = card.loss(CANDIDATE), card.loss(baseline)
    allowed = theirs * (1 + card.target_loss_tolerance)
    margin = f" (allowed {allowed:.4g})" if card.target_loss_tolerance else ""
    return GateResult(
        TARGET_LOSS_GATE,
        bool(ours < allowed),
        ours,
        allowed,
        card.gate_severity,
        f"loss on {len(card.targets):,} kept targets: candidate {ours:.4g} vs "
        f"{baseline} {theirs:.4g}{margin}",
    )


def held_out_gate(card: Scorecard, baseline: str = ECPS_METHOD) -> GateResult:
    """Candidate loss on the test split (never shown to a solver) below the baseline's;
    a cell without a test split is judged on its validation groups, and says so."""
    held_out = card.judged_held_out
    split = "test" if card.split_mask("test").any() else "validation"
    ours, theirs = card.loss(CANDIDATE, held_out), card.loss(baseline, held_out)
    groups = sorted(card.targets.loc[held_out, "group"].unique().tolist())
    return GateResult(
        HELD_OUT_GATE,
        bool(ours < theirs),
        ours,
        theirs,
        card.gate_severity,
        f"{split} loss on {int(held_out.sum()):,} targets in {len(groups)} groups: candidate "
        f"{ours:.4g} vs {baseline} {theirs:.4g}",
        {"groups": groups, "split": split},
    )


def protected_allowed_loss(baseline_loss: float) -> float:
    """The protected-families gate's largest allowed loss of a family: the baseline's loss
    plus max(5% of it, 0.005). One rule for the gate, the solver's refits and benchmarks."""
    return baseline_loss + max(
        PROTECTED_RELATIVE_TOLERANCE * baseline_loss, PROTECTED_ABSOLUTE_TOLERANCE
    )


def protected_families_gate(card: Scorecard, baseline: str = ECPS_METHOD) -> GateResult:
    """No protected family worse than the baseline by more than max(5% rel., 0.005 abs.)."""
    table = card.family_losses().set_index("family")
    rows, failing = [], []
    for family in PROTECTED_FAMILIES:
        if family not in table.index:
            rows.append({"family": family, "status": "no kept targets"})
            continue
        ours, theirs = float(table.loc[family, CANDIDATE]), float(table.loc[family, baseline])
        allowed = protected_allowed_loss(theirs)
        ok = ours <= allowed
        rows.append(
            {
                "family": family,
                "targets": int(table.loc[family, "targets"]),
                "candidate": ours,
                "baseline": theirs,
                "allowed": allowed,
                "status": "pass" if ok else "fail",
            }
        )
        if not ok:
            failing.append(family)
    judged = [r for r in rows if "candidate" in r]
    worst = max((r["candidate"] - r["allowed"] for r in judged), default=float("nan"))
    return GateResult(
        PROTECTED_FAMILIES_GATE,
        not failing,
        worst,
        0.0,
        card.gate_severity,
        f"{len(judged)} protected families judged, {len(failing)} worse than allowed"
        + (f": {failing}" if failing else "")
        + f"; {len(rows) - len(judged)} without kept targets",
        {"families": rows},
    )


def salient_aggregates_gate(card: Scorecard, baseline: str = ECPS_METHOD) -> GateResult:
    """High-salience aggregates: APE at least as good as the baseline's, else marked (WARN)."""
    table = card.salient_aggregates(baseline)
    judged = table.dropna(subset=["candidate_ape"])
    worse = judged[judged["candidate_ape"] > judged["baseline_ape"] + 1e-12]
    marked = [
        f"{r.quantity}: APE {r.candidate_ape:.2%} vs {r.baseline_ape:.2%}"
        for r in worse.itertuples()
    ]
    missing = table.loc[table["target_name"] == "no target", "quantity"].tolist()
    return GateResult(
        SALIENT_AGGREGATES_GATE,
        worse.empty,
        float(judged["candidate_ape"].mean()) if len(judged) else None,
        float(judged["baseline_ape"].mean()) if len(judged) else None,
        "WARN",
        f"{len(judged)} aggregates judged, {len(worse)} worse than {baseline}"
        + (f" ({'; '.join(marked)})" if marked else "")
        + (f"; no target for {missing}" if missing else ""),
        {"table": table.to_dict(orient="records")},
    )


def fallback_gate(card: Scorecard, baseline: str = ECPS_METHOD) -> GateResult:
    """A local shard's train (held-in) loss below its national fallback's on the same state
    targets; held-out losses reported beside. Not applicable to other cells (they have no
    fallback to beat); a shard whose fallback could not be scored fails, naming why."""
    if not card.fallback_required:
        return GateResult(
            FALLBACK_GATE,
            True,
            None,
            None,
            card.gate_severity,
            "not applicable: only a local|<state> shard is compared with a national fallback",
            applicable=False,
        )
    if FALLBACK not in card.estimates:
        reason = card.fallback_error or "no fallback estimates on the scorecard"
        return GateResult(
            FALLBACK_GATE,
            False,
            None,
            None,
            card.gate_severity,
            f"national fallback could not be scored ({reason}); expected national|US "
            "published before its shards (make build, then make backfill)",
            {"fallback_error": reason},
        )
    train, held_out = card.train, ~card.train
    ours, theirs = card.loss(CANDIDATE, train), card.loss(FALLBACK, train)
    ours_out, theirs_out = card.loss(CANDIDATE, held_out), card.loss(FALLBACK, held_out)
    return GateResult(
        FALLBACK_GATE,
        bool(ours < theirs),
        ours,
        theirs,
        card.gate_severity,
        f"held-in loss on {int(train.sum())} state targets: shard {ours:.4g} vs national "
        f"fallback {theirs:.4g}; held-out {ours_out:.4g} vs {theirs_out:.4g}",
        {"fallback": card.fallback or {}, "held_out": {"shard": ours_out, "fallback": theirs_out}},
    )


GATES = (
    broad_loss_gate,
    protected_families_gate,
    held_out_gate,
    salient_aggregates_gate,
    fallback_gate,
)


def evaluate_gates(card: Scorecard, baseline: str = ECPS_METHOD) -> list[GateResult]:
    """Every target gate, in the order the UI lists them."""
    return [gate(card, baseline) for gate in GATES]


def wins_and_losses_markdown(card: Scorecard, baseline: str, top: int = 3) -> str:
    """Per family, the targets where the candidate gained most and lost most vs baseline."""
    deltas = card.target_deltas(baseline)
    lines = [
        f"Relative error |est - t + 1| / |t + 1|: {CANDIDATE} vs {baseline}; "
        "gain > 0 means the candidate is closer.",
        "",
        "| family | kind | target | held out | candidate | baseline | gain |",
        "|---|---|---|---|---|---|---|",
    ]
    for family, part in deltas.groupby("family", sort=True):
        ordered = part.sort_values("gain", ascending=False)
        picks = [("win", ordered.head(top)), ("loss", ordered.tail(top).iloc[::-1])]
        for kind, rows in picks:
            rows = rows[rows["gain"] > 0] if kind == "win" else rows[rows["gain"] < 0]
            for row in rows.itertuples():
                lines.append(
                    f"| {family} | {kind} | `{row.name}` | {'yes' if not row.train else ''} | "
                    f"{row.candidate_rel_error:.2%} | {row.baseline_rel_error:.2%} | "
                    f"{row.gain:+.2%} |"
                )
    return "\n".join(lines)


def losses_table(card: Scorecard) -> pd.DataFrame:
    """method x (train, validation, test, held_out, all, within 10%) losses, as a table."""
    return pd.DataFrame([{"method": method, **values} for method, values in card.losses().items()])
