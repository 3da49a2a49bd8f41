"""The synthetic returns of the PUF-like donor: cells, AGI draws, item holders and their
amounts, and the demographic assumptions (see ``synthetic_puf`` for the method)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from microplex_assets.sources.soi_bands import (
    ITEMIZED_SOI,
    STATUS_MARS,
    band_index,
    band_lows,
    banded,
)
from microplex_assets.sources.tax_records import AGI, FILING_STATUS, TAX_RECORD_AMOUNTS, WEIGHT

MIN_SCALE = 1_000.0  # AGI floor for amount scales, so near-zero-AGI holders get amounts
_LATENTS = ("_wealth", "_business", "_retire", "_itemizer")
Uprate = Callable[[str, int, int], float]


@dataclass(frozen=True)
class Item:
    """One SOI column given to holders, and how holders are keyed and amounts spread."""

    soi: str  # SOI column (or a derived name with targets in Context.derived)
    latents: tuple[tuple[str, float], ...] = ()
    tilt: float = 0.5  # weight of the within-band AGI rank in the holder key
    sigma: float = 0.8  # lognormal spread of amounts among holders


# ---------------------------------------------------------------- records


@dataclass
class Context:
    """What every item step needs: SOI facts of the year, band bounds, the generator."""

    facts: pd.DataFrame
    soi_year: int
    lows: np.ndarray
    lows_itemized: np.ndarray
    rng: np.random.Generator
    derived: dict[str, tuple[dict[int, float], dict[int, float]]]

    def targets(self, variable: str) -> tuple[dict[int, float], dict[int, float]]:
        """Per band index: SOI count and amount (amount 0 -> no holders)."""
        if variable in self.derived:
            return self.derived[variable]
        rows = banded(self.facts, self.soi_year, variable)
        lows = self.lows_itemized if variable in ITEMIZED_SOI else self.lows
        index = band_index(band_lows(rows), lows).tolist()
        amount = rows["amount"].fillna(0.0).to_numpy()
        count = np.where(amount > 0, rows["count"].fillna(0.0).to_numpy(), 0.0)
        return dict(zip(index, count, strict=True)), dict(zip(index, amount, strict=True))

    def band(self, ret: Returns, itemized: bool = False) -> np.ndarray:
        if itemized:
            return np.where(ret[AGI] >= 1.0, band_index(ret[AGI], self.lows_itemized), -1)
        return band_index(ret[AGI], self.lows)


class Returns:
    """Columns of the synthetic returns; ``split`` keeps weighted totals while halving."""

    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        self.columns = columns

    def __len__(self) -> int:
        return len(self.columns[WEIGHT])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __setitem__(self, name: str, values: np.ndarray) -> None:
        self.columns[name] = values

    def split(self, rows: np.ndarray, holder_weight: np.ndarray) -> None:
        """Copy ``rows`` to the end; the originals keep ``holder_weight``, copies the rest."""
        rest = self.columns[WEIGHT][rows] - holder_weight
        for name, values in self.columns.items():
            self.columns[name] = np.concatenate([values, values[rows]])
        self.columns[WEIGHT][rows] = holder_weight
        self.columns[WEIGHT][-len(rows) :] = rest


def allocate_records(counts: np.ndarray, agi: np.ndarray, records: int) -> np.ndarray:
    """Records per cell: a floor, the rest in proportion to sqrt(returns x |AGI|).

    sqrt allocation puts far more records per return in the thin, rich top bands than
    proportional sampling would, so the tail that drives tax revenue is resolved.
    """
    live = counts > 0
    floor = max(2, min(25, records // (4 * max(int(live.sum()), 1))))
    if records < floor * live.sum():
        raise ValueError(f"records={records} is below {floor} per non-empty cell")
    score = np.where(live, np.sqrt(counts * np.maximum(np.abs(agi), counts)), 0.0)
    share = score / score.sum() * (records - floor * live.sum())
    alloc = np.floor(share).astype(int) + np.where(live, floor, 0)
    remainder = records - alloc.sum()
    alloc[np.argsort(-(share - np.floor(share)), kind="stable")[:remainder]] += 1
    return alloc


def _power_mean_fit(u: np.ndarray, low: float, high: float, mean: float) -> np.ndarray:
    """low + (high-low) * u**k with k solved so the mean is ``mean`` (clipped to reach)."""
    target = min(max((mean - low) / (high - low), 1e-6), 1 - 1e-6)
    lo, hi = -12.0, 12.0  # log k
    for _ in range(80):
        mid = (lo + hi) / 2
        if np.mean(u ** math.exp(mid)) > target:
            lo = mid
        else:
            hi = mid
    x = u ** math.exp((lo + hi) / 2)
    x = x * target / x.mean()  # remove the last bisection error
    return low + (high - low) * np.minimum(x, np.nextafter(1.0, 0.0))


def draw_agi(rng: np.random.Generator, n: int, low: float, high: float, mean: float) -> np.ndarray:
    """``n`` equal-weight AGIs in [low, high) whose mean is ``mean`` (open ends unbounded)."""
    if n == 0:
        return np.zeros(0)
    if math.isinf(low):  # no-AGI band: mean <= 0; lognormal magnitudes rescaled
        e = rng.lognormal(0.0, 1.5, n)
        return np.minimum(mean * e / e.mean(), 0.0) if mean < 0 else np.zeros(n)
    if math.isinf(high):  # open top band: Pareto excess over the lower bound
        p = rng.pareto(1.6, n) + 0.05
        return low + (mean - low) * p / p.mean()
    u = (rng.permutation(n) + rng.random(n)) / n  # stratified uniforms
    return _power_mean_fit(u, low, high, mean)


def band_cells(facts: pd.DataFrame, soi_year: int) -> pd.DataFrame:
    """AGI band x filing status: returns and AGI (Table 1.2)."""
    parts = []
    for status, mars in STATUS_MARS.items():
        count = banded(facts, soi_year, "count", status)[["low", "high", "count"]]
        agi = banded(facts, soi_year, "adjusted_gross_income", status)[["low", "high", "amount"]]
        cell = count.merge(agi, on=["low", "high"], how="left").fillna({"amount": 0.0})
        parts.append(cell.assign(status=status, mars=mars))
    return pd.concat(parts, ignore_index=True).fillna({"count": 0.0})


def initial_returns(cells: pd.DataFrame, records: int, rng: np.random.Generator) -> Returns:
    alloc = allocate_records(cells["count"].to_numpy(), cells["amount"].to_numpy(), records)
    weight, mars, agi = [], [], []
    for cell, n in zip(cells.itertuples(), alloc, strict=True):
        if n == 0:
            continue
        weight.append(np.full(n, cell.count / n))
        mars.append(np.full(n, cell.mars))
        agi.append(draw_agi(rng, n, cell.low, cell.high, cell.amount / cell.count))
    columns = {WEIGHT: np.concatenate(weight), FILING_STATUS: np.concatenate(mars)}
    columns[AGI] = np.concatenate(agi)
    n = len(columns[WEIGHT])
    for latent in _LATENTS:
        columns[latent] = rng.standard_normal(n)
    for column in TAX_RECORD_AMOUNTS:
        columns[column] = np.zeros(n)
    return Returns(columns)


# ---------------------------------------------------------------- holders and amounts


def rank_score(agi: np.ndarray, band: np.ndarray) -> np.ndarray:
    """Logit of each record's AGI rank inside its band (0 at the band's median)."""
    score = np.zeros(len(agi))
    for b in np.unique(band):
        rows = np.flatnonzero(band == b)
        ranks = np.argsort(np.argsort(agi[rows], kind="stable"), kind="stable")
        p = (ranks + 0.5) / len(rows)
        score[rows] = np.log(p / (1 - p))
    return score


def holder_key(ret: Returns, band: np.ndarray, item: Item, rng: np.random.Generator) -> np.ndarray:
    key = item.tilt * 0.5 * rank_score(ret[AGI], band) + rng.standard_normal(len(ret))
    for latent, loading in item.latents:
        key = key + loading * ret[latent]
    return key


def pick_holders(weight: np.ndarray, key: np.ndarray, eligible: np.ndarray, target: float):
    """Holders by descending key, eligible first, until their weight is ``target``.

    Returns (positions, boundary position or None, boundary holder weight).
    """
    order = np.lexsort((-key, ~eligible))
    cum = np.cumsum(weight[order])
    k = int(np.searchsorted(cum, target * (1 - 1e-12)))
    if k >= len(order):
        return order, None, 0.0
    part = target - (cum[k - 1] if k else 0.0)
    if part <= 1e-9 * target:
        return order[:k], None, 0.0
    if part >= weight[order[k]] * (1 - 1e-9):
        return order[: k + 1], None, 0.0
    return order[: k + 1], order[k], part


def holders(
    ret: Returns, band: np.ndarray, counts: dict[int, float], key: np.ndarray, eligible
) -> np.ndarray:
    """Mask of holders whose weight per band equals ``counts``; splits boundary returns."""
    weight = ret[WEIGHT]
    chosen, split_rows, split_weight = [], [], []
    for b, target in counts.items():
        rows = np.flatnonzero(band == b)
        if target <= 0 or rows.size == 0:
            continue
        positions, boundary, part = pick_holders(weight[rows], key[rows], eligible[rows], target)
        chosen.append(rows[positions])
        if boundary is not None:
            split_rows.append(rows[boundary])
            split_weight.append(part)
    mask = np.zeros(len(ret), dtype=bool)
    if chosen:
        mask[np.concatenate(chosen)] = True
    if split_rows:
        ret.split(np.array(split_rows), np.array(split_weight))
        mask = np.concatenate([mask, np.zeros(len(split_rows), dtype=bool)])
    return mask


def scale_to_total(
    raw: np.ndarray, weight: np.ndarray, total: float, cap: np.ndarray | None = None
) -> np.ndarray:
    """c x raw (capped per record) with weighted sum ``total``; all caps if unreachable."""
    base = float(np.sum(weight * raw))
    if base <= 0 or total <= 0:
        return np.zeros_like(raw)
    if cap is None:
        return raw * (total / base)
    if total >= float(np.sum(weight * cap)):
        return cap.copy()
    lo, hi = 0.0, total / base
    while np.sum(weight * np.minimum(hi * raw, cap)) < total:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.sum(weight * np.minimum(mid * raw, cap)) < total else (lo, mid)
    return np.minimum(hi * raw, cap)


def holder_amounts(
    ret: Returns,
    mask: np.ndarray,
    band: np.ndarray,
    totals: dict[int, float],
    raw: np.ndarray,
    cap: np.ndarray | None = None,
) -> np.ndarray:
    """Non-negative amounts on holders whose weighted band sums are ``totals``."""
    out = np.zeros(len(ret))
    for b, total in totals.items():
        rows = np.flatnonzero(mask & (band == b))
        if rows.size:
            capped = None if cap is None else cap[rows]
            out[rows] = scale_to_total(raw[rows], ret[WEIGHT][rows], total, capped)
    return out


def raw_amounts(ret: Returns, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Amount shape before scaling: proportional to |AGI| with lognormal noise."""
    scale = np.maximum(np.abs(ret[AGI]), MIN_SCALE)
    return scale * rng.lognormal(-sigma * sigma / 2, sigma, len(ret))


# ---------------------------------------------------------------- demographics


# Mean head age offsets by MARS (assumption: joint filers older, heads of household
# younger than single filers at the same AGI).
_AGE_OFFSET = {1: -3.0, 2: 6.0, 3: 2.0, 4: -4.0}


def draw_ages(ret: Returns, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Head and spouse ages (18-85, the PUF's top code).

    Mean 40 years at $50k AGI, +3.5 years per tenfold AGI, shifted by status; returns with
    taxable pensions or IRA distributions are mostly 60+ (pensions and penalty-free IRA
    withdrawals start near retirement). Spouses are about two years younger than heads.
    """
    n = len(ret)
    status = ret[FILING_STATUS]
    agi = np.maximum(ret[AGI], 2_000.0)
    mean = 40 + 3.5 * np.log10(agi / 50_000) + np.vectorize(_AGE_OFFSET.get)(status)
    age = rng.normal(mean, 12.0)
    retiree = (ret["taxable_private_pension_income"] > 0) | (ret["taxable_ira_distributions"] > 0)
    older = retiree & (rng.random(n) < 0.85)
    age = np.where(older, 60 + rng.gamma(2.0, 4.5, n), age)
    head = np.clip(np.rint(age), 18, 85).astype(int)
    spouse = np.clip(np.rint(head + rng.normal(-2.0, 4.0, n)), 18, 85).astype(int)
    return head, np.where(status == 2, spouse, 0)


# Dependents: distributions by MARS for heads under 60 (assumptions near SOI's
# dependents-per-return pattern: every head of household has a qualifying person; about
# half of working-age joint returns claim children; few single filers claim anyone).
_DEPENDENTS = {
    1: (0.97, 0.02, 0.01, 0.0),
    2: (0.45, 0.20, 0.23, 0.12),
    3: (0.70, 0.15, 0.10, 0.05),
    4: (0.0, 0.60, 0.28, 0.12),
}
_DEPENDENTS_60_PLUS = (0.95, 0.04, 0.01, 0.0)


def draw_dependents(status: np.ndarray, age: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """0-3 dependents; heads of household always >= 1."""
    u = rng.random(len(status))
    out = np.zeros(len(status), dtype=int)
    for mars, probs in _DEPENDENTS.items():
        rows = status == mars
        old = rows & (age >= 60)
        for mask, p in ((rows & ~old, probs), (old, _DEPENDENTS_60_PLUS)):
            out[mask] = np.searchsorted(np.cumsum(p), u[mask], side="right")
    out = np.minimum(out, 3)
    return np.where(status == 4, np.maximum(out, 1), out)


def uprate_amounts(table: pd.DataFrame, soi_year: int, year: int, uprate: Uprate | None) -> dict:
    """Scale AGI and amounts by ``uprate`` factors in place; what was done, for provenance."""
    if uprate is None:
        return {"uprated": False, "note": f"not uprated: amounts are {soi_year} dollars"}
    factors = {
        column: float(uprate(column, soi_year, year)) for column in (AGI, *TAX_RECORD_AMOUNTS)
    }
    for column, factor in factors.items():
        table[column] = table[column] * factor
    return {
        "uprated": True,
        "from": soi_year,
        "to": year,
        "factors": factors,
        "note": "weights are not scaled: return counts stay SOI-year counts",
    }
