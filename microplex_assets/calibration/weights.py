"""Stage 7: household weights and the diagnostics every weight vector carries.

The only backend so far is ``none``: the sample's design weights pass through
unchanged (honestly labelled: the published dataset is not calibrated to targets).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

CALIBRATION_BACKENDS = ("none",)


def weight_diagnostics(weights: np.ndarray) -> dict[str, Any]:
    """Records, nonzero weights, effective sample size (Kish) and concentration."""
    weights = np.asarray(weights, dtype=float)
    total = float(weights.sum())
    squares = float(np.square(weights).sum())
    ess = total**2 / squares if squares > 0 else 0.0
    ordered = np.sort(weights)[::-1]
    top_1pct = ordered[: max(1, len(ordered) // 100)].sum()
    return {
        "records": int(len(weights)),
        "nonzero_weights": int((weights > 0).sum()),
        "weight_total": total,
        "effective_sample_size": ess,
        "ess_share": ess / len(weights) if len(weights) else 0.0,
        "largest_weight_share": float(ordered[0] / total) if total > 0 else 0.0,
        "top_1pct_records_weight_share": float(top_1pct / total) if total > 0 else 0.0,
        "non_finite_weights": int((~np.isfinite(weights)).sum()),
        "negative_weights": int((weights < 0).sum()),
    }


def calibrate_weights(household: pd.DataFrame, backend: str) -> pd.Series:
    """Household weights indexed by household_id for the chosen backend."""
    if backend not in CALIBRATION_BACKENDS:
        raise ValueError(
            f"unknown calibration backend '{backend}'; expected one of {CALIBRATION_BACKENDS}"
        )
    return pd.Series(
        household["household_weight"].to_numpy(dtype=float),
        index=pd.Index(household["household_id"].to_numpy(), name="household_id"),
        name="household_weight",
    )
