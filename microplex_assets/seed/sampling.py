"""Stratified household sampling to a product size, keeping the rare and the rich (stage 4).

Design: households at the top of the income distribution and recipients of rare
programs are taken with certainty (weight unchanged); the rest are sampled without
replacement within state x income-group strata at one sampling fraction, and each
stratum's sampled weights are ratio-adjusted so the stratum's weighted household total
is preserved exactly. Every state keeps at least one household (support).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

WEIGHT = "household_weight"


@dataclass(frozen=True)
class SamplingDesign:
    """Knobs of the stratified design."""

    households: int
    seed: int
    top_income_share: float = 0.005  # weighted top share of households taken with certainty
    rare_flags: tuple[str, ...] = ("receives_ssi", "receives_tanf")
    rare_budget_share: float = 0.25  # at most this share of the sample spent on certainty units
    min_per_state: int = 1


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The q-quantile of values under weights (sorted cumulative weight)."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    index = np.searchsorted(cumulative, q * cumulative[-1], side="left")
    return float(values[order][min(index, len(values) - 1)])


def certainty_reasons(households: pd.DataFrame, design: SamplingDesign) -> pd.Series:
    """Why each household is taken with certainty ("" if not): top income, then rare flags."""
    income = households["household_income"].to_numpy(dtype=float)
    weights = households[WEIGHT].to_numpy(dtype=float)
    cutoff = weighted_quantile(income, weights, 1.0 - design.top_income_share)
    budget = int(design.rare_budget_share * design.households)
    reasons = pd.Series("", index=households.index, dtype=object)
    top = np.flatnonzero((income >= cutoff) & (income > 0))
    top = top[np.argsort(-income[top], kind="stable")][:budget]  # the richest within budget
    reasons.iloc[top] = "top_income"
    rng = np.random.default_rng(design.seed)
    for flag in design.rare_flags:
        room = budget - int((reasons != "").sum())
        if flag not in households.columns or room <= 0:
            continue
        candidates = households.index[households[flag].to_numpy() & (reasons == "").to_numpy()]
        if len(candidates) > room:
            candidates = np.sort(rng.choice(candidates, size=room, replace=False))
        reasons.loc[candidates] = flag
    return reasons


def income_groups(households: pd.DataFrame, groups: int) -> pd.Series:
    """Weighted income quantile group (0..groups-1) of each household."""
    if groups <= 1:
        return pd.Series(0, index=households.index)
    income = households["household_income"].to_numpy(dtype=float)
    weights = households[WEIGHT].to_numpy(dtype=float)
    edges = [weighted_quantile(income, weights, k / groups) for k in range(1, groups)]
    return pd.Series(np.searchsorted(edges, income, side="right"), index=households.index)


def allocate(sizes: pd.Series, total: int, minimum: int) -> pd.Series:
    """Proportional allocation with a floor per stratum, summing exactly to ``total``."""
    floor = np.minimum(sizes.to_numpy(), minimum)
    remaining = total - int(floor.sum())
    if remaining < 0:
        raise ValueError(
            f"sample of {total} households cannot give {minimum} to each of {len(sizes)} strata"
        )
    capacity = sizes.to_numpy() - floor
    share = capacity / max(capacity.sum(), 1) * remaining
    extra = np.minimum(np.floor(share).astype(int), capacity)
    leftover = remaining - int(extra.sum())
    order = np.argsort(-(share - np.floor(share)), kind="stable")
    for index in order:
        if leftover <= 0:
            break
        if extra[index] < capacity[index]:
            extra[index] += 1
            leftover -= 1
    return pd.Series(floor + extra, index=sizes.index)


def stratified_sample(
    households: pd.DataFrame, design: SamplingDesign
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Sample households; returns the sample with adjusted weights and a design report."""
    n_total = len(households)
    if design.households >= n_total:
        sample = households.copy()
        sample["sampling_stratum"] = "all"
        return sample, {"households_in": n_total, "households_out": n_total, "certainty": n_total}
    if design.households < 1:
        raise ValueError(f"sample size must be positive, got {design.households}")

    reasons = certainty_reasons(households, design)
    certain = reasons != ""
    rest = households[~certain]
    budget = design.households - int(certain.sum())
    states = rest["state_fips"].nunique()
    groups = int(np.clip(budget // max(states * 20, 1), 1, 10))
    strata = rest["state_fips"].astype(str) + ":" + income_groups(rest, groups).astype(str)
    sizes = strata.value_counts().sort_index()
    # The floor goes to each state, not each state x income cell, so small samples still work.
    allocation = allocate(sizes, budget, design.min_per_state if groups == 1 else 0)
    if groups > 1:
        allocation = enforce_state_floor(allocation, sizes, design.min_per_state)

    rng = np.random.default_rng(design.seed)
    chosen_parts = []
    for stratum, take in allocation.items():
        if take <= 0:
            continue
        members = rest.index[strata == stratum]
        picked = rng.choice(members, size=int(take), replace=False)
        part = rest.loc[np.sort(picked)].copy()
        stratum_total = rest.loc[members, WEIGHT].sum()
        part[WEIGHT] = part[WEIGHT] * stratum_total / part[WEIGHT].sum()
        part["sampling_stratum"] = stratum
        chosen_parts.append(part)
    certain_part = households[certain].copy()
    certain_part["sampling_stratum"] = "certainty"
    sample = pd.concat([certain_part, *chosen_parts]).sort_values("household_id")

    dropped_strata = int((allocation == 0).sum())
    report = {
        "households_in": n_total,
        "households_out": int(len(sample)),
        "certainty": int(certain.sum()),
        "certainty_by_reason": reasons[certain].value_counts().to_dict(),
        "income_groups_per_state": groups,
        "strata": int(len(sizes)),
        "strata_without_sample": dropped_strata,
        "weighted_households_in": float(households[WEIGHT].sum()),
        "weighted_households_out": float(sample[WEIGHT].sum()),
        "sampling_fraction": round(budget / max(len(rest), 1), 4),
    }
    return sample, report


def enforce_state_floor(allocation: pd.Series, sizes: pd.Series, minimum: int) -> pd.Series:
    """Give every state at least ``minimum`` sampled households, taken from the largest strata."""
    allocation = allocation.copy()
    state_of = pd.Series([key.split(":")[0] for key in allocation.index], index=allocation.index)
    for keys in allocation.groupby(state_of).groups.values():
        short = minimum - int(allocation[keys].sum())
        while short > 0:
            room = sizes[keys] - allocation[keys]
            target = room.idxmax()
            donor = allocation.drop(keys).idxmax()
            allocation[target] += 1
            allocation[donor] -= 1
            short -= 1
    return allocation
