"""Fixed-weight records (the top-tail spine): taken out of the targets before calibration.

Spine households keep their weights. Their weighted contribution to every target is
subtracted first, and the solver fits only the other households to the residual: the
rest of the population is calibrated to what the spine leaves. A target the spine alone
meets or overshoots (residual of the wrong sign or below the solver's zero threshold)
cannot be fitted by the free households; it leaves the fit and is reported, while the
scorecard still scores every method on the full target with the full weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from microplex_assets.calibration.matrix import MIN_ABS_TARGET, TargetMatrix
from microplex_assets.constants import FIXED_FLAG


def fixed_household_ids(household: pd.DataFrame) -> np.ndarray:
    """Ids of households whose weight is fixed (none when the flag column is absent)."""
    if FIXED_FLAG not in household.columns:
        return np.zeros(0, dtype=np.int64)
    flagged = household[FIXED_FLAG].fillna(False).astype(bool).to_numpy()
    return household.loc[flagged, "household_id"].to_numpy(dtype=np.int64)


@dataclass
class ResidualProblem:
    """The free households' problem: their columns, the residual targets they can fit."""

    matrix: sparse.csr_matrix
    values: np.ndarray
    is_national: np.ndarray
    train: np.ndarray
    initial: np.ndarray
    free: np.ndarray  # bool per matrix column
    rows: np.ndarray  # bool per kept target: True = still fittable after the spine
    fixed_weights: np.ndarray  # full-length weights, nonzero only on fixed columns
    report: dict[str, Any] = field(default_factory=dict)

    def merge(self, free_weights: np.ndarray) -> np.ndarray:
        """Full weight vector: solved weights on free columns, fixed ones unchanged."""
        weights = self.fixed_weights.copy()
        weights[self.free] = free_weights
        return weights


def residual_problem(
    matrix: TargetMatrix, initial: np.ndarray, fixed_ids: np.ndarray
) -> ResidualProblem:
    """Subtract the fixed households' weighted contributions from every kept target."""
    initial = np.asarray(initial, dtype=float)
    fixed = np.isin(matrix.household_ids, fixed_ids)
    fixed_weights = np.where(fixed, initial, 0.0)
    values = matrix.values
    contribution = matrix.estimates(fixed_weights)
    residual = values - contribution
    fittable = (np.abs(residual) >= MIN_ABS_TARGET) & (np.sign(residual) == np.sign(values))
    # Test targets never reach a solver: not fitted, not used to choose an epoch.
    rows = fittable & ~matrix.test
    free = ~fixed
    share = np.divide(contribution, values, out=np.zeros_like(values), where=values != 0)
    by_family = (
        pd.DataFrame({"family": matrix.families, "share": share})
        .groupby("family")["share"]
        .max()
        .sort_values(ascending=False)
    )
    names = np.array([t.name for t in matrix.targets])
    report = {
        "fixed_households": int(fixed.sum()),
        "fixed_weight_total": float(fixed_weights.sum()),
        "targets_touched": int((contribution != 0).sum()),
        "targets_left_unfittable": int((~fittable).sum()),
        "unfittable_targets": names[~fittable][:20].tolist(),
        "test_targets_withheld": int(matrix.test.sum()),
        "largest_share_by_family": {k: round(float(v), 4) for k, v in by_family.head(10).items()},
    }
    return ResidualProblem(
        matrix=matrix.matrix[rows][:, free].tocsr(),
        values=residual[rows],
        is_national=matrix.is_national[rows],
        train=matrix.train[rows],
        initial=initial[free],
        free=free,
        rows=rows,
        fixed_weights=fixed_weights,
        report=report,
    )


def fixed_weights(household: pd.DataFrame) -> pd.Series:
    """The fixed households' weights by household_id (empty without a spine)."""
    flagged = np.isin(household["household_id"].to_numpy(), fixed_household_ids(household))
    return pd.Series(
        household.loc[flagged, "household_weight"].to_numpy(dtype=float),
        index=pd.Index(household.loc[flagged, "household_id"].to_numpy(), name="household_id"),
    )


def drop_fixed_overshoots(matrix: TargetMatrix, fixed: pd.Series) -> TargetMatrix:
    """Drop (into the ledger, with the ratio) targets the fixed records alone meet or exceed.

    No weighting of the free households can fit such a target; keeping it would give every
    method the same huge error and drown the loss (a count of 14 medical-deduction returns
    above $10m AGI, say, against 264 spine couples of Medicare age)."""
    if fixed.empty:
        return matrix
    weights = np.where(
        np.isin(matrix.household_ids, fixed.index.to_numpy()),
        fixed.reindex(matrix.household_ids).fillna(0.0).to_numpy(),
        0.0,
    )
    values = matrix.values
    residual = values - matrix.estimates(weights)
    keep = (np.abs(residual) >= MIN_ABS_TARGET) & (np.sign(residual) == np.sign(values))
    if keep.all():
        return matrix
    ratio = matrix.estimates(weights) / values
    names = np.array([t.name for t in matrix.targets])
    return matrix.drop_targets(
        {
            name: f"fixed records overshoot: the spine alone gives {share:.2f}x"
            for name, share in zip(names[~keep], ratio[~keep], strict=True)
        }
    )
