"""How much each target counts in the fitted objective (never in a reported loss).

The shared loss (``loss.target_loss``) weighs every target alike, so a family of two
targets (SSI: recipients and spending) is 2 of about 3,900 train terms and the solver's
weight-health penalties (KL pull to the design weights, bounded ratio) win against it:
on the 40k national matrix the plain objective left SSI recipients 28% short while the
eCPS method, with no health limits, hit them exactly. Fit weights first balance the
families (each family's terms sum to the same total, so 148 state self-employment
targets do not outvote 2 SSI targets) and then multiply the protected families' terms
by ``protected_boost``: the protected-families gate judges those families one by one.
Measured on that matrix: benchmarks/results/protected_fit_2026-12-02.json.
"""

from __future__ import annotations

import numpy as np


def family_fit_weights(
    families: np.ndarray,
    protected: tuple[str, ...] | frozenset[str],
    protected_boost: float = 1.0,
    balance_families: bool = True,
) -> np.ndarray:
    """One multiplier per target.

    ``balance_families``: each family's multipliers sum to (targets / families), i.e. a
    family of n targets gives each 1 / n of an equal share (mean 1 over the targets).
    ``protected_boost`` then multiplies the terms of families in ``protected``, raising
    their pull against the weight-health penalties (not renormalised: that would weaken
    the penalties' counterweight instead).
    """
    families = np.asarray(families, dtype=object)
    if protected_boost <= 0 or not np.isfinite(protected_boost):
        raise ValueError(f"protected_boost must be finite and > 0, got {protected_boost}")
    if len(families) == 0:
        return np.ones(0)
    weights = np.ones(len(families), dtype=float)
    if balance_families:
        labels, inverse, counts = np.unique(families, return_inverse=True, return_counts=True)
        weights = len(families) / (len(labels) * counts[inverse].astype(float))
    return np.where(np.isin(families, list(protected)), weights * protected_boost, weights)
