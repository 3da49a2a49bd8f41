"""Support for a local shard's targets: records borrowed from similar states (stage 4).

A state's own CPS records can leave one of its targets without support: a small state
may have two sampled tax units with $1m+ income, or almost no SNAP households, and no
reweighting reaches a target nobody contributes to. Each target the state has (AGI
bands, SNAP) gets a need of ``min_support`` sampled tax units (households for SNAP);
short needs borrow whole households from the most similar states, geography reassigned,
with weights scaled by the ratio of the two states' household totals (a record standing
for x% of Texas households stands for x% of Wyoming's). The similarity is computed from
the states' own targets, so it says "similar in what we calibrate to".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from microplex_assets.constants import AGI
from microplex_assets.geography.states import fips_from_code
from microplex_assets.seed.canonical import INCOME_COLUMNS
from microplex_assets.targets.model import TargetSet

WEIGHT = "household_weight"
# State target groups whose shape describes a state: shares within each group are compared.
PROFILE_GROUPS: tuple[str, ...] = (
    "irs_soi/agi_by_state",
    "irs_soi/returns_by_state",
    "census/population_by_age_by_state",
)
# Per-person rates compared as well (target value / state population).
RATE_FAMILIES: tuple[str, ...] = ("snap", "eitc", "medicaid")


@dataclass(frozen=True)
class SupportNeed:
    """Records the state's targets need: tax units in an income band, or flagged households."""

    label: str
    low: float = -math.inf
    high: float = math.inf
    flag: str | None = None  # a canonical household flag (e.g. receives_snap)
    nonzero: bool = True  # an amount target: only units with income contribute

    def matches_units(self, income: pd.Series) -> pd.Series:
        inside = (income >= self.low) & (income < self.high)
        return inside & (income != 0) if self.nonzero else inside


def support_needs(state_targets: TargetSet) -> list[SupportNeed]:
    """One need per distinct AGI band of the state's targets, plus SNAP households. A band
    is counted in units with nonzero income: a zero-income unit adds nothing to the band's
    AGI amount (the "under $1" band needs losses, not zeros)."""
    bands: dict[tuple[float, float], str] = {}
    snap = False
    for target in state_targets:
        for target_filter in target.filters:
            if target_filter.variable == AGI:
                band = (target_filter.low, target_filter.high)
                bands.setdefault(band, target.name.split("/")[-3])
        snap = snap or target.family == "snap"
    needs = [SupportNeed(f"AGI {label}", low, high) for (low, high), label in sorted(bands.items())]
    if snap:
        needs.append(SupportNeed("SNAP households", flag="receives_snap"))
    return needs


def state_profiles(target_set: TargetSet) -> pd.DataFrame:
    """Per state: within-group shares of the profile groups and per-person program rates."""
    frame = target_set.to_frame()
    frame = frame[frame["geography"] != "US"]
    features: dict[str, pd.Series] = {}
    for group in PROFILE_GROUPS:
        rows = frame[frame["group"] == group]
        if rows.empty:
            continue
        table = rows.assign(band=rows["name"].str.split("/").str[-3]).pivot_table(
            index="geography", columns="band", values="value", aggfunc="sum"
        )
        shares = table.div(table.abs().sum(axis=1), axis=0)
        for band in shares.columns:
            features[f"{group}:{band}"] = shares[band]
    population = (
        frame[frame["group"] == "census/population_by_state"].groupby("geography")["value"].max()
    )
    for family in RATE_FAMILIES:
        rows = frame[frame["family"] == family]
        for aggregation, part in rows.groupby("aggregation"):
            values = part.groupby("geography")["value"].sum()
            features[f"{family}:{aggregation}"] = values / population
    profiles = pd.DataFrame(features).fillna(0.0)
    spread = profiles.std(ddof=0).replace(0.0, 1.0)
    return (profiles - profiles.mean()) / spread


def similar_states(target_set: TargetSet, state: str) -> list[str]:
    """Other states nearest first (Euclidean distance of standardised target profiles)."""
    profiles = state_profiles(target_set)
    if state not in profiles.index:
        raise ValueError(f"no state targets for {state}: cannot rank similar states")
    distance = ((profiles - profiles.loc[state]) ** 2).sum(axis=1).drop(state)
    return distance.sort_values(kind="stable").index.tolist()


def tax_unit_income(tax_unit: pd.DataFrame, person: pd.DataFrame) -> pd.Series:
    """A pre-simulation AGI proxy per tax unit: its persons' income columns summed."""
    columns = [c for c in INCOME_COLUMNS if c in person.columns]
    income = person[columns].sum(axis=1).groupby(person["tax_unit_id"]).sum()
    return tax_unit["tax_unit_id"].map(income).fillna(0.0).set_axis(tax_unit.index)


def support_counts(
    households: pd.DataFrame, units: pd.DataFrame, needs: list[SupportNeed]
) -> dict[str, int]:
    """Supporting records per need: tax units in the band, or flagged households."""
    in_sample = units[units["household_id"].isin(households["household_id"])]
    counts = {}
    for need in needs:
        if need.flag is not None:
            counts[need.label] = int(households.get(need.flag, pd.Series(False)).sum())
        else:
            counts[need.label] = int(need.matches_units(in_sample["income"]).sum())
    return counts


def borrow_for_support(
    sample: pd.DataFrame,
    pool: pd.DataFrame,
    units: pd.DataFrame,
    state: str,
    needs: list[SupportNeed],
    similar: list[str],
    min_support: int,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Households borrowed into ``state`` for every short need, and the per-need report.

    ``sample`` is the state's sampled households, ``pool`` every scaffold household
    (canonical, with ``state_fips`` and weights), ``units`` every tax unit with
    ``household_id`` and ``income``. Borrowed rows carry ``borrowed_from_state_fips``.
    """
    rng = np.random.default_rng(seed)
    state_fips = fips_from_code(state)
    totals = pool.groupby("state_fips")[WEIGHT].sum()
    taken: list[pd.DataFrame] = []
    report = []
    have = support_counts(sample, units, needs)  # the state's own records, reported
    for need in needs:
        # Households borrowed for an earlier need count toward this one too.
        current = pd.concat([sample, *taken], ignore_index=True) if taken else sample
        short = min_support - support_counts(current, units, [need])[need.label]
        borrowed_from: dict[str, int] = {}
        if short > 0:
            used = pd.Index(sample["household_id"]).append(
                pd.Index([i for frame in taken for i in frame["household_id"]])
            )
            for other in similar:
                if short <= 0:
                    break
                fips = fips_from_code(other)
                candidates = pool[(pool["state_fips"] == fips) & ~pool["household_id"].isin(used)]
                if need.flag is not None:
                    eligible = candidates[candidates[need.flag].astype(bool)]
                    gain = pd.Series(1, index=eligible["household_id"])
                else:
                    hits = units[
                        units["household_id"].isin(candidates["household_id"])
                        & need.matches_units(units["income"])
                    ]
                    gain = hits.groupby("household_id").size()
                if gain.empty:
                    continue
                order = rng.permutation(gain.index.to_numpy())
                cumulative = gain.reindex(order).cumsum().to_numpy()
                chosen = order[: int(np.searchsorted(cumulative, short) + 1)]
                rows = candidates[candidates["household_id"].isin(chosen)].copy()
                rows["borrowed_from_state_fips"] = fips
                rows[WEIGHT] = rows[WEIGHT] * totals.get(state_fips, 0.0) / totals[fips]
                rows["state_fips"] = state_fips
                taken.append(rows)
                borrowed_from[other] = len(rows)
                short -= int(gain.reindex(chosen).sum())
        report.append(
            {
                "need": need.label,
                "own_support": have[need.label],
                "min_support": min_support,
                "households_borrowed": sum(borrowed_from.values()),
                "borrowed_from": ", ".join(f"{s} ({n})" for s, n in borrowed_from.items()),
                "still_short": max(short, 0),
            }
        )
    borrowed = pd.concat(taken, ignore_index=True) if taken else sample.iloc[:0].copy()
    if "borrowed_from_state_fips" not in borrowed.columns:
        borrowed["borrowed_from_state_fips"] = pd.Series(dtype="int64")
    return borrowed, pd.DataFrame(report)
