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

A single boost for every protected family either leaves some failing or, raised for all,
spends the effective sample size on families that already pass. ``fit_to_family_limits``
refits a few times, raising only the boosts of the families whose *train* loss is still
above their limit (the eCPS method's train family loss + the gate's tolerance,
``scorecard.protected_allowed_loss``): no held-out target ever moves a boost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from microplex_assets.calibration.loss import target_loss
from microplex_assets.targets.children import CHILDREN_FAMILY

# The families ``SolverConfig.population_boost`` multiplies: who lives here (household
# count, population by state and age) and the national children by benefit age, which the
# state age bands leave free (their 15-19 band let the weights swap 18-19-year-olds for
# 15-17-year-olds: 6.5m aged 18-19 against about 9m, on build a3edfce7).
DEMOGRAPHIC_FAMILIES: tuple[str, ...] = ("population", CHILDREN_FAMILY)


def demographic_boosts(
    population_boost: float, boosts: Mapping[str, float] | None = None
) -> dict[str, float] | None:
    """``boosts`` with every demographic family at ``population_boost`` unless ``boosts``
    names it (a refit's own boosts take precedence); unchanged when the boost is 1."""
    if population_boost == 1.0:
        return None if boosts is None else dict(boosts)
    return {family: population_boost for family in DEMOGRAPHIC_FAMILIES} | dict(boosts or {})


def with_target_boost(
    fit_weight: np.ndarray | None, boosted: np.ndarray, boost: float
) -> np.ndarray | None:
    """``fit_weight`` (None: all 1) with the targets marked in ``boosted`` multiplied by
    ``boost`` (the national household count's ``SolverConfig.household_count_boost``);
    unchanged when the boost is 1 or no target is marked."""
    if boost == 1.0 or not np.any(boosted):
        return fit_weight
    base = np.ones(len(boosted)) if fit_weight is None else fit_weight
    return np.where(boosted, boost, 1.0) * base


def family_fit_weights(
    families: np.ndarray,
    protected: tuple[str, ...] | frozenset[str],
    protected_boost: float = 1.0,
    balance_families: bool = True,
    family_boosts: Mapping[str, float] | None = None,
) -> np.ndarray:
    """One multiplier per target.

    ``balance_families``: each family's multipliers sum to (targets / families), i.e. a
    family of n targets gives each 1 / n of an equal share (mean 1 over the targets).
    ``protected_boost`` then multiplies the terms of families in ``protected``, raising
    their pull against the weight-health penalties (not renormalised: that would weaken
    the penalties' counterweight instead). ``family_boosts`` (family -> boost) replaces
    that boost for the families it names (protected or not).
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
    boost = np.where(np.isin(families, list(protected)), protected_boost, 1.0)
    for family, value in (family_boosts or {}).items():
        if value <= 0 or not np.isfinite(value):
            raise ValueError(f"family_boosts[{family!r}] must be finite and > 0, got {value}")
        boost = np.where(families == family, value, boost)
    return weights * boost


def family_losses(
    estimates: np.ndarray,
    values: np.ndarray,
    is_national: np.ndarray,
    families: np.ndarray,
    which: tuple[str, ...] | frozenset[str],
    mask: np.ndarray | None = None,
) -> dict[str, float]:
    """``loss.target_loss`` of each family in ``which`` over its (masked) targets; families
    with no such target are left out."""
    families = np.asarray(families, dtype=object)
    mask = np.ones(len(families), dtype=bool) if mask is None else np.asarray(mask, bool)
    out = {}
    for family in which:
        rows = mask & (families == family)
        if rows.any():
            out[family] = target_loss(estimates[rows], values[rows], is_national[rows])
    return out


def raised_boosts(
    boosts: Mapping[str, float],
    losses: Mapping[str, float],
    limits: Mapping[str, float],
    margin: float = 0.9,
    max_step: float = 10.0,
) -> dict[str, float]:
    """The boosts for the next refit: a family whose loss is above ``margin`` x its limit
    has its boost multiplied by (loss / (margin x limit))^2, at most ``max_step``; the
    others keep theirs (boosts only rise, so the refits cannot cycle)."""
    out = dict(boosts)
    for family, limit in limits.items():
        goal = margin * limit
        if family in losses and losses[family] > goal:
            step = min(max_step, (losses[family] / max(goal, 1e-12)) ** 2)
            out[family] = out[family] * step
    return out


@dataclass
class FamilyLimitFit:
    """What ``fit_to_family_limits`` returns: the chosen round's fit and every round."""

    weights: np.ndarray
    result: Any  # the chosen round's fit result (a ``solver.CalibrationResult``)
    boosts: dict[str, float]
    chosen_round: int
    rounds: list[dict[str, Any]] = field(default_factory=list)


def fit_to_family_limits(
    fit: Callable[[dict[str, float]], tuple[np.ndarray, Any]],
    losses_of: Callable[[np.ndarray], dict[str, float]],
    limits: Mapping[str, float],
    boosts: Mapping[str, float],
    rounds: int,
    margin: float = 0.9,
    max_step: float = 10.0,
) -> FamilyLimitFit:
    """Fit, then up to ``rounds`` refits; ``losses_of(weights)`` must score train targets
    only. A round better than every earlier one (less total relative excess
    sum_f max(0, loss_f / limit_f - 1)) has the boosts of its families over their limit
    raised (``raised_boosts``); a worse one (too strong a pull can leave the ESS floor of
    epoch selection only an early, barely fitted epoch) backs off halfway, geometrically,
    towards the best round's boosts. Returns the first round with every family within its
    limit, else the round with the least total excess."""
    boosts = dict(boosts)
    history: list[dict[str, Any]] = []
    fits: list[tuple[np.ndarray, Any, dict[str, float]]] = []
    best = -1
    for number in range(rounds + 1):
        weights, result = fit(boosts)
        losses = losses_of(weights)
        over = {f: losses[f] / limits[f] - 1 for f in limits if losses.get(f, 0) > limits[f]}
        excess = float(sum(over.values()))
        history.append(
            {
                "round": number,
                "boosts": dict(boosts),
                "losses": losses,
                "over_limit": over,
                "excess": excess,
            }
        )
        fits.append((weights, result, dict(boosts)))
        if best < 0 or excess < history[best]["excess"]:
            best = number
            following = raised_boosts(boosts, losses, limits, margin, max_step)
        else:
            anchor = history[best]["boosts"]
            following = {f: float(np.sqrt(anchor[f] * boosts[f])) for f in boosts}
        if not over or number == rounds:
            break
        boosts = following
    weights, result, chosen_boosts = fits[best]
    return FamilyLimitFit(weights, result, chosen_boosts, best, history)
