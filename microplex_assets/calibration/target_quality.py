"""Absolute quality of a fit, beside the relative gates: how many targets were dropped before
fitting (by reason and family), and whether a protected family lost too many of them.

A fit can beat its baseline on the targets it kept while having quietly dropped most of a
family (no PolicyEngine variable, no supporting household, a spine overshoot): the loss then
says nothing about that family. ``protected_targets_kept`` blocks a release where a protected
family lost more than a quarter of its registry targets (the share is a build setting).
"""

from __future__ import annotations

import pandas as pd

from microplex_assets.calibration.scorecard import PROTECTED_FAMILIES, GateResult, Scorecard

TARGETS_KEPT_GATE = "protected_targets_kept"


def drop_reason(reason: pd.Series) -> pd.Series:
    """The reason's kind: the text before its first colon ("no support", ...)."""
    return reason.fillna("").astype(str).str.split(":").str[0].str.strip()


def dropped_targets(ledger: pd.DataFrame) -> pd.DataFrame:
    """One row per family x drop reason: dropped targets, with the family's registry count."""
    dropped = ledger[ledger["status"] == "dropped"].assign(
        reason=lambda f: drop_reason(f["reason"])
    )
    table = dropped.groupby(["family", "reason"]).size().rename("dropped").reset_index()
    loaded = ledger.groupby("family").size().rename("registry_targets")
    return table.join(loaded, on="family").sort_values(
        ["family", "dropped"], ascending=[True, False]
    )


def family_drop_shares(ledger: pd.DataFrame) -> pd.DataFrame:
    """Per family: registry targets, kept, dropped and the dropped share."""
    frame = ledger.assign(dropped=ledger["status"] == "dropped")
    table = frame.groupby("family").agg(
        registry_targets=("name", "size"), dropped=("dropped", "sum")
    )
    table["kept"] = table["registry_targets"] - table["dropped"]
    table["dropped_share"] = table["dropped"] / table["registry_targets"]
    return table.reset_index()


def targets_kept_gate(card: Scorecard, baseline: str = "") -> GateResult:
    """No protected family dropped more than ``card.max_dropped_share`` of its targets."""
    limit = card.max_dropped_share
    if card.ledger is None or card.ledger.empty:
        return GateResult(TARGETS_KEPT_GATE, True, None, limit, "WARN", "no target ledger")
    shares = family_drop_shares(card.ledger).set_index("family")
    rows, failing = [], []
    for family in PROTECTED_FAMILIES:
        if family not in shares.index:
            rows.append({"family": family, "status": "no registry targets"})
            continue
        share = float(shares.loc[family, "dropped_share"])
        ok = share <= limit
        rows.append(
            {
                "family": family,
                "registry_targets": int(shares.loc[family, "registry_targets"]),
                "dropped": int(shares.loc[family, "dropped"]),
                "dropped_share": share,
                "status": "pass" if ok else "fail",
            }
        )
        if not ok:
            failing.append(f"{family} {share:.0%}")
    judged = [r for r in rows if "dropped_share" in r]
    worst = max((r["dropped_share"] for r in judged), default=0.0)
    return GateResult(
        TARGETS_KEPT_GATE,
        not failing,
        worst,
        limit,
        card.gate_severity,
        f"{len(judged)} protected families with registry targets; largest dropped share "
        f"{worst:.0%} (at most {limit:.0%})"
        + (f"; too many dropped: {failing}" if failing else "")
        + f"; {len(rows) - len(judged)} families have no registry targets",
        {"families": rows},
    )
