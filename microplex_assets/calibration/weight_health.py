"""Checks on a weight vector itself: valid (finite, non-negative, not collapsed) and healthy
(enough records carry the weight, none far from its design weight).

Every reform estimate rests on the records that carry the weights: the unbounded solver
left a Kish ESS of about 2% of 40,000 records and final / design ratios of 650, so a
reform's answer hung on a few hundred households. ``weights_healthy`` makes that a release
gate for national|US; other cells report the same numbers without enforcing them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.calibration.loss import kish_ess
from microplex_assets.calibration.scorecard import GateResult
from microplex_assets.calibration.weights import CalibrationRun

WEIGHTS_HEALTHY_GATE = "weights_healthy"


def weight_health(weights: pd.Series, design: pd.Series, fixed_ids: np.ndarray) -> dict[str, Any]:
    """ESS share and largest final / design ratio of the free (non-spine) households.

    The spine's weights are fixed facts (one Forbes household each), so they neither add to
    nor subtract from the health of the fitted weights."""
    design = design.reindex(weights.index)
    if design.isna().any():
        raise KeyError("design weights lack households of the weight vector")
    free = ~np.isin(weights.index.to_numpy(), fixed_ids)
    w = weights.to_numpy(dtype=float)[free]
    w0 = design.to_numpy(dtype=float)[free]
    ratio = np.divide(w, w0, out=np.full_like(w, np.inf), where=w0 > 0)
    ordered = np.sort(w)[::-1]
    return {
        "free_records": int(free.sum()),
        "fixed_records": int((~free).sum()),
        "ess_free": kish_ess(w),
        "ess_share_free": kish_ess(w) / len(w) if len(w) else 0.0,
        "max_ratio": float(ratio.max()) if len(w) else 0.0,
        "min_ratio": float(ratio.min()) if len(w) else 0.0,
        "top_1pct_weight_share": float(ordered[: max(1, len(w) // 100)].sum() / w.sum())
        if len(w) and w.sum() > 0
        else 0.0,
    }


def weights_healthy_gate(run: CalibrationRun) -> GateResult:
    """ESS share at least the limit and largest ratio at most the limit (ERROR where the
    run's limits are enforced, national|US; WARN, reported only, elsewhere)."""
    health = run.health
    limits = health.get("limits", {})
    min_share = float(limits.get("min_ess_share", 0.25))
    max_ratio = float(limits.get("max_ratio", 50.0))
    ess_ok = health["ess_share_free"] >= min_share
    ratio_ok = health["max_ratio"] <= max_ratio * (1 + 1e-6)
    enforced = bool(limits.get("enforced", False))
    return GateResult(
        WEIGHTS_HEALTHY_GATE,
        bool(ess_ok and ratio_ok),
        health["ess_share_free"],
        min_share,
        "ERROR" if enforced else "WARN",
        f"Kish ESS {health['ess_free']:,.0f} = {health['ess_share_free']:.1%} of "
        f"{health['free_records']:,} free records (at least {min_share:.0%}); largest "
        f"final / design weight {health['max_ratio']:.1f} (at most {max_ratio:g})"
        + ("" if enforced else "; reported, not enforced for this cell"),
        {
            "max_ratio": health["max_ratio"],
            "max_ratio_limit": max_ratio,
            "top_1pct_weight_share": health["top_1pct_weight_share"],
            "fixed_records_excluded": health["fixed_records"],
        },
    )
