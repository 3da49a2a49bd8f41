"""The embedded PUF-like tax-record donor, synthesized from published IRS SOI aggregates.

No IRS Public Use File can be had in this build, so while none is configured the donor
stage uses this stand-in. It is *not* tax or survey data: every return is drawn so that
weighted totals reproduce the carried SOI table (Publication 1304 Tables 1.1, 1.2, 1.4
and 2.1, ``soi_targets.csv``) and nothing else. Provenance says ``kind="synthetic"``.

How it is built (all-returns rows only, ``Taxable only == False``):

- Cells are AGI band x filing status (Table 1.2). ``records`` are spread over the cells
  in proportion to sqrt(returns x |AGI|) with a floor, so the top bands get many more
  records per return than the middle (the top tail is resolved); each record's weight is
  cell returns / cell records, so weighted return counts are SOI's exactly.
- AGI is drawn inside each cell's band and rescaled so the cell's weighted AGI is SOI's:
  a power-of-uniform inside bounded bands, lognormal below zero, Pareto above $10m.
- Each amount is given, band by band, to returns chosen in descending order of a random
  key (rising with AGI inside the band and sharing latent "wealth", "business",
  "retirement" and "itemizer" factors so items co-occur) until their weight equals SOI's
  count of returns with the item. The one return at the boundary is split in two (same
  values, weights summing to the original) so holder counts are exact; this adds at most
  one record per item and band. Amounts of the AGI components a return holds share its
  |AGI| (each in proportion to SOI's mean per holder in the band, with lognormal noise),
  so one return's components add to about its AGI; each item is then scaled so its band
  total is SOI's. Items outside AGI (exempt interest, Schedule A) are sized to AGI.
- Losses are separate SOI columns with their own holders (disjoint from the income
  holders of the same item) and negative amounts.

SOI columns to donor inputs (policyengine-us names):

- employment_income -> employment_income_before_lsr; taxable_interest_income;
  exempt_interest -> tax_exempt_interest_income; taxable_pension_income ->
  taxable_private_pension_income (SOI's column includes government pensions);
  ira_distributions -> taxable_ira_distributions; unemployment_compensation.
- ordinary_dividends and qualified_dividends: qualified holders are a subset of ordinary
  holders, qualified <= ordinary per return; non_qualified = ordinary - qualified.
- capital_gains_gross / capital_gains_losses (Schedule D net gain / limited net loss)
  are split into long- and short-term with LONG_TERM_SHARE; capital_gains_distributions
  (reported without Schedule D, so their holders are disjoint) are all long-term. Losses
  stay within the $3,000 ($1,500 separate) limit SOI's amounts are after.
- s_corporation_net_income/losses -> s_corp_income; partnership_income is SOI's combined
  partnership + S-corporation column minus the S-corporation column, for counts too (the
  combined count adds the two return counts; see targets/soi.py).
- business_net_profits/losses -> self_employment_income_before_lsr;
  rent_and_royalty_net_income/losses -> rental_income (royalties included).
- Itemized deductions use Table 2.1's bands: charitable_contributions_deductions is
  split into cash and non-cash with NON_CASH_SHARE; itemized_real_estate_tax_deductions
  -> real_estate_taxes; mortgage_interest_deductions -> home_mortgage_interest;
  medical_expense_deductions_uncapped -> other_medical_expenses. Only itemizers carry
  them (as on a real PUF).

The rest of AGI (taxable Social Security, other income, estates, less adjustments) is an
implicit residual AGI - sum(components); it is not exported. In the no-AGI band and low
bands components can exceed AGI, as they do on real returns with offsetting losses.

Demographics are assumptions, not SOI facts (the calibration stage fixes totals): see
``_ages`` and ``_dependents``. Joint filers and surviving spouses, which SOI combines,
are all MARS 2.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.files import file_sha256
from microplex_assets.sources.frame import ObservationFrame, SourceFormatError
from microplex_assets.sources.tax_records import (
    AGI,
    FILING_STATUS,
    ID,
    REQUIRED_COLUMNS,
    TAX_RECORD_AMOUNTS,
    TAX_UNIT_TABLE,
    WEIGHT,
    validate_tax_records,
)
from microplex_assets.targets.carried import (
    DATA_DIR,
    CarriedTableError,
    carried_table,
    read_carried_csv,
)
from microplex_assets.targets.common import band_label
from microplex_assets.targets.soi import SOI_COLUMNS, SOI_VARIABLES, TABLE_PREFERENCE

SOURCE = "synthetic_puf"
SOI_FILE = "soi_targets.csv"
LABEL = (
    "Synthetic tax records drawn to reproduce published IRS SOI aggregates "
    "(Publication 1304 Tables 1.1, 1.2, 1.4, 2.1); not survey or tax data"
)
# SOI filing-status rows (Table 1.2) -> MARS. SOI combines joint filers and surviving
# spouses (about 0.1% of returns); all become 2.
STATUS_MARS: dict[str, int] = {
    "Single": 1,
    "Married Filing Jointly/Surviving Spouse": 2,
    "Married Filing Separately": 3,
    "Head of Household": 4,
}
ALL = "All"
# Share of a Schedule D net gain (or limited loss) that is long-term. A modelling
# assumption: SOI's Sales of Capital Assets studies (SOI Bulletin, e.g. tax years
# 1999-2015) show net long-term gains as nearly all of net gains, short-term net gains a
# few percent. Capital gain distributions are long-term by law (1099-DIV box 2a).
LONG_TERM_SHARE = 0.95
# Non-cash share of itemized charitable deductions: TY2017 itemizers reported $88.1bn of
# non-cash gifts (SOI Bulletin Fall 2019, Williams & Wilson) of about $256bn deducted
# (Table 2.1), i.e. about one third; 23.2m of the ~37m returns with gifts had non-cash
# gifts (NON_CASH_HOLDER_SHARE of holders carry a non-cash part).
NON_CASH_SHARE = 0.34
NON_CASH_HOLDER_SHARE = 0.6
CAPITAL_LOSS_LIMIT = 3_000.0  # IRC 1211(b); 1,500 for married filing separately
MIN_SCALE = 1_000.0  # AGI floor for amount scales, so near-zero-AGI holders get amounts
SOI_NEEDED: tuple[str, ...] = (
    "count", "adjusted_gross_income", "employment_income", "taxable_interest_income",
    "exempt_interest", "ordinary_dividends", "qualified_dividends", "capital_gains_gross",
    "capital_gains_losses", "capital_gains_distributions", "business_net_profits",
    "business_net_losses", "partnership_and_s_corp_income", "partnership_and_s_corp_losses",
    "s_corporation_net_income", "s_corporation_net_losses", "rent_and_royalty_net_income",
    "rent_and_royalty_net_losses", "taxable_pension_income", "ira_distributions",
    "unemployment_compensation", "charitable_contributions_deductions",
    "itemized_real_estate_tax_deductions", "mortgage_interest_deductions",
    "medical_expense_deductions_uncapped",
)  # fmt: skip
ITEMIZED_SOI = SOI_NEEDED[-4:]  # Table 2.1 (itemizers' bands)
_LATENTS = ("_wealth", "_business", "_retire", "_itemizer")

Uprate = Callable[[str, int, int], float]


@dataclass(frozen=True)
class _Item:
    """One SOI column given to holders, and how holders are keyed and amounts spread."""

    soi: str  # SOI column (or a derived name with targets in _Context.derived)
    latents: tuple[tuple[str, float], ...] = ()
    tilt: float = 0.5  # weight of the within-band AGI rank in the holder key
    sigma: float = 0.8  # lognormal spread of amounts among holders


_W, _B, _R, _I = "_wealth", "_business", "_retire", "_itemizer"
# AGI components, in selection order. Losses are chosen among the item's non-earners;
# capital gain distributions (no Schedule D) among returns with no net gain or loss.
_COMPONENTS: tuple[_Item, ...] = (
    _Item("employment_income", ((_R, -0.8),), 0.2, 0.5),
    _Item("taxable_interest_income", ((_W, 1.0),), 0.6, 1.2),
    _Item("taxable_pension_income", ((_R, 1.2),)),
    _Item("ira_distributions", ((_R, 1.0),)),
    _Item("unemployment_compensation", ((_R, -0.5),), -0.3, 0.5),
    _Item("business_net_profits", ((_B, 1.0),), 0.8, 1.0),
    _Item("business_net_losses", ((_B, 1.0),), 0.3, 1.2),
    _Item("s_corporation_net_income", ((_B, 1.0), (_W, 0.5)), 0.8, 1.0),
    _Item("s_corporation_net_losses", ((_B, 1.0), (_W, 0.5)), 0.3, 1.2),
    _Item("partnership_income", ((_B, 1.0), (_W, 0.5)), 0.8, 1.0),
    _Item("partnership_losses", ((_B, 1.0), (_W, 0.5)), 0.3, 1.2),
    _Item("rent_and_royalty_net_income", ((_W, 1.0),), 0.8, 1.0),
    _Item("rent_and_royalty_net_losses", ((_W, 1.0),), 0.3, 1.2),
    _Item("ordinary_dividends", ((_W, 1.2),), 0.8, 1.3),
    _Item("capital_gains_gross", ((_W, 1.5),), 1.0, 1.5),
    _Item("capital_gains_distributions", ((_W, 0.8),), 0.3, 1.0),
)
_EXCLUSIVE: dict[str, tuple[str, ...]] = {  # chosen among returns holding none of these
    "business_net_losses": ("business_net_profits",),
    "s_corporation_net_losses": ("s_corporation_net_income",),
    "partnership_losses": ("partnership_income",),
    "rent_and_royalty_net_losses": ("rent_and_royalty_net_income",),
    "capital_gains_losses": ("capital_gains_gross",),
    "capital_gains_distributions": ("capital_gains_gross", "capital_gains_losses"),
}
_EXEMPT = _Item("exempt_interest", ((_W, 1.2),), 0.8, 1.2)
_QUALIFIED = _Item("qualified_dividends", ((_W, 1.2),), 0.8)
_CAPITAL_LOSS = _Item("capital_gains_losses", ((_W, 1.5),), 0.3)
_SCHEDULE_A: tuple[tuple[_Item, str], ...] = (
    (_Item("itemized_real_estate_tax_deductions", ((_I, 1.5),)), "real_estate_taxes"),
    (_Item("mortgage_interest_deductions", ((_I, 1.5),), 0.3), "home_mortgage_interest"),
    (_Item("medical_expense_deductions_uncapped", ((_I, 1.0), (_R, 0.7)), -0.3, 1.2),
     "other_medical_expenses"),
)  # fmt: skip
_PLAIN_COLUMNS = {
    "employment_income": "employment_income_before_lsr",
    "taxable_interest_income": "taxable_interest_income",
    "taxable_pension_income": "taxable_private_pension_income",
    "ira_distributions": "taxable_ira_distributions",
    "unemployment_compensation": "unemployment_compensation",
}
_SIGNED_COLUMNS = {  # donor column: (income item, loss item)
    "self_employment_income_before_lsr": ("business_net_profits", "business_net_losses"),
    "s_corp_income": ("s_corporation_net_income", "s_corporation_net_losses"),
    "partnership_income": ("partnership_income", "partnership_losses"),
    "rental_income": ("rent_and_royalty_net_income", "rent_and_royalty_net_losses"),
}


# ---------------------------------------------------------------- SOI table


def read_soi_table(path: Path | None = None) -> tuple[pd.DataFrame, Path]:
    """The SOI table (hash-checked against SOURCES.json when it is the carried copy).

    A missing or malformed file raises SourceFormatError naming the file and column.
    """
    try:
        if path is None:
            table, _ = carried_table(SOI_FILE, SOI_COLUMNS)
            return table, DATA_DIR / SOI_FILE
        table, _ = read_carried_csv(Path(path), SOI_COLUMNS)
    except CarriedTableError as error:
        raise SourceFormatError(str(error)) from error
    return table, Path(path)


def soi_facts(table: pd.DataFrame) -> pd.DataFrame:
    """All-returns facts, one per (year, variable, status, band, count), tables deduplicated."""
    facts = table.loc[~table["Taxable only"].astype(bool)].rename(
        columns={
            "Year": "year", "SOI table": "table", "Variable": "variable",
            "Filing status": "status", "AGI lower bound": "low", "AGI upper bound": "high",
            "Count": "is_count", "Value": "value",
        }
    )  # fmt: skip
    facts = facts.assign(
        year=facts["year"].astype(int),
        low=facts["low"].astype(float),
        high=facts["high"].astype(float),
        is_count=facts["is_count"].astype(bool) | (facts["variable"] == "count"),
        value=facts["value"].astype(float),
        rank=facts["table"].map({t: i for i, t in enumerate(TABLE_PREFERENCE)}).fillna(99),
    ).sort_values("rank", kind="stable")
    keys = ["year", "variable", "status", "low", "high", "is_count"]
    return facts.drop_duplicates(keys)[[*keys, "value"]].reset_index(drop=True)


def _has_full_coverage(facts: pd.DataFrame, year: int) -> list[str]:
    """SOI variables needed but missing for ``year`` (empty when it is usable)."""
    present = set(facts.loc[facts["year"] == year, "variable"])
    missing = [v for v in SOI_NEEDED if v not in present]
    statuses = set(facts.loc[(facts["year"] == year) & (facts["variable"] == "count"), "status"])
    missing += [f"count[{s}]" for s in STATUS_MARS if s not in statuses]
    return missing


def choose_soi_year(facts: pd.DataFrame, year: int, soi_year: int | None = None) -> int:
    """The latest SOI year <= ``year`` with every needed column (else the earliest later)."""
    if soi_year is not None:
        missing = _has_full_coverage(facts, soi_year)
        if missing:
            raise SourceFormatError(f"{SOI_FILE}: SOI year {soi_year} lacks {missing}")
        return soi_year
    usable = [y for y in sorted(set(facts["year"])) if not _has_full_coverage(facts, y)]
    if not usable:
        raise SourceFormatError(f"{SOI_FILE}: no SOI year has all of {list(SOI_NEEDED)}")
    earlier = [y for y in usable if y <= year]
    return earlier[-1] if earlier else usable[0]


def _banded(facts: pd.DataFrame, year: int, variable: str, status: str = ALL) -> pd.DataFrame:
    """Rows of one column by AGI band (total row dropped), ascending, count and amount."""
    rows = facts[
        (facts["year"] == year)
        & (facts["variable"] == variable)
        & (facts["status"] == status)
        & ~(np.isinf(facts["low"]) & np.isinf(facts["high"]))
    ]
    wide = rows.pivot_table(index=["low", "high"], columns="is_count", values="value")
    wide = wide.rename(columns={True: "count", False: "amount"}).reset_index()
    for column in ("count", "amount"):
        if column not in wide:
            wide[column] = np.nan
    return wide.sort_values("low").reset_index(drop=True)


def band_lows(bands: pd.DataFrame) -> np.ndarray:
    """Lower bounds for band lookup; a Table 2.1 band starting at 0 starts at $1 (no-AGI
    returns have no itemized deductions in SOI: Table 1.2 shows none)."""
    lows = bands["low"].to_numpy(dtype=float).copy()
    lows[lows == 0.0] = 1.0
    return lows


def band_index(agi: np.ndarray, lows: np.ndarray) -> np.ndarray:
    """Band of each AGI (-1 below the first band); band i is [lows[i], lows[i + 1])."""
    return np.searchsorted(lows, agi, side="right") - 1


# ---------------------------------------------------------------- records


class _Returns:
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


def _cells(facts: pd.DataFrame, soi_year: int) -> pd.DataFrame:
    """AGI band x filing status: returns and AGI (Table 1.2)."""
    parts = []
    for status, mars in STATUS_MARS.items():
        count = _banded(facts, soi_year, "count", status)[["low", "high", "count"]]
        agi = _banded(facts, soi_year, "adjusted_gross_income", status)[["low", "high", "amount"]]
        cell = count.merge(agi, on=["low", "high"], how="left").fillna({"amount": 0.0})
        parts.append(cell.assign(status=status, mars=mars))
    return pd.concat(parts, ignore_index=True).fillna({"count": 0.0})


def _initial_returns(cells: pd.DataFrame, records: int, rng: np.random.Generator) -> _Returns:
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
    return _Returns(columns)


# ---------------------------------------------------------------- holders and amounts


def _rank_score(agi: np.ndarray, band: np.ndarray) -> np.ndarray:
    """Logit of each record's AGI rank inside its band (0 at the band's median)."""
    score = np.zeros(len(agi))
    for b in np.unique(band):
        rows = np.flatnonzero(band == b)
        ranks = np.argsort(np.argsort(agi[rows], kind="stable"), kind="stable")
        p = (ranks + 0.5) / len(rows)
        score[rows] = np.log(p / (1 - p))
    return score


def _key(ret: _Returns, band: np.ndarray, item: _Item, rng: np.random.Generator) -> np.ndarray:
    key = item.tilt * 0.5 * _rank_score(ret[AGI], band) + rng.standard_normal(len(ret))
    for latent, loading in item.latents:
        key = key + loading * ret[latent]
    return key


def _pick(weight: np.ndarray, key: np.ndarray, eligible: np.ndarray, target: float):
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


def _holders(
    ret: _Returns, band: np.ndarray, counts: dict[int, float], key: np.ndarray, eligible
) -> np.ndarray:
    """Mask of holders whose weight per band equals ``counts``; splits boundary returns."""
    weight = ret[WEIGHT]
    chosen, split_rows, split_weight = [], [], []
    for b, target in counts.items():
        rows = np.flatnonzero(band == b)
        if target <= 0 or rows.size == 0:
            continue
        positions, boundary, part = _pick(weight[rows], key[rows], eligible[rows], target)
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


def _amounts(
    ret: _Returns,
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


def _raw(ret: _Returns, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Amount shape before scaling: proportional to |AGI| with lognormal noise."""
    scale = np.maximum(np.abs(ret[AGI]), MIN_SCALE)
    return scale * rng.lognormal(-sigma * sigma / 2, sigma, len(ret))


@dataclass
class _Context:
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
        rows = _banded(self.facts, self.soi_year, variable)
        lows = self.lows_itemized if variable in ITEMIZED_SOI else self.lows
        index = band_index(band_lows(rows), lows).tolist()
        amount = rows["amount"].fillna(0.0).to_numpy()
        count = np.where(amount > 0, rows["count"].fillna(0.0).to_numpy(), 0.0)
        return dict(zip(index, count, strict=True)), dict(zip(index, amount, strict=True))

    def band(self, ret: _Returns, itemized: bool = False) -> np.ndarray:
        if itemized:
            return np.where(ret[AGI] >= 1.0, band_index(ret[AGI], self.lows_itemized), -1)
        return band_index(ret[AGI], self.lows)


def _partnership_targets(ctx: _Context) -> dict[str, tuple[dict, dict]]:
    """Partnership = SOI's partnership + S-corp column less the S-corp column (counts too:
    the combined count adds the two return counts)."""
    out = {}
    for name, combined, s_corp in (
        ("partnership_income", "partnership_and_s_corp_income", "s_corporation_net_income"),
        ("partnership_losses", "partnership_and_s_corp_losses", "s_corporation_net_losses"),
    ):
        (c_all, a_all), (c_s, a_s) = ctx.targets(combined), ctx.targets(s_corp)
        out[name] = (
            {b: max(c_all[b] - c_s.get(b, 0.0), 0.0) for b in c_all},
            {b: max(a_all[b] - a_s.get(b, 0.0), 0.0) for b in a_all},
        )
    return out


def _flag(name: str) -> str:
    return f"_has_{name}"


def _select(ctx: _Context, ret: _Returns, item: _Item, eligible: np.ndarray | None = None):
    """Mark holders of ``item`` (column ``_has_<soi>``), returns outside ``_EXCLUSIVE``
    first; splits boundary returns, so masks must be re-read from columns afterwards."""
    itemized = item.soi in ITEMIZED_SOI
    counts, _ = ctx.targets(item.soi)
    band = ctx.band(ret, itemized)
    if eligible is None:
        eligible = np.ones(len(ret), dtype=bool)
    for other in _EXCLUSIVE.get(item.soi, ()):
        eligible = eligible & (ret[_flag(other)] == 0)
    ret[_flag(item.soi)] = np.zeros(len(ret))
    mask = _holders(ret, band, counts, _key(ret, band, item, ctx.rng), eligible)
    ret[_flag(item.soi)] = mask.astype(float)


def _fill(
    ctx: _Context, ret: _Returns, item: _Item, raw: np.ndarray, cap: np.ndarray | None = None
) -> np.ndarray:
    """Amounts on ``item``'s holders, shaped by ``raw``, scaled to SOI's band totals."""
    itemized = item.soi in ITEMIZED_SOI
    mask = ret[_flag(item.soi)] > 0
    _, totals = ctx.targets(item.soi)
    return _amounts(ret, mask, ctx.band(ret, itemized), totals, raw, cap)


def _give(ctx: _Context, ret: _Returns, item: _Item) -> np.ndarray:
    """Select holders and give them AGI-proportional amounts (items outside AGI)."""
    _select(ctx, ret, item)
    return _fill(ctx, ret, item, _raw(ret, ctx.rng, item.sigma))


def _compose(ctx: _Context, ret: _Returns) -> dict[str, np.ndarray]:
    """Amounts of the AGI components a return holds, sharing |AGI| between them.

    Each held item's share is its SOI mean per holder in the band times lognormal noise,
    normalised over the items the return holds, so one return's components add to about
    |AGI| instead of each being sized to AGI independently; band totals are then exact.
    """
    band = ctx.band(ret)
    shares = {}
    for item in _COMPONENTS:
        counts, totals = ctx.targets(item.soi)
        mean = {b: totals[b] / counts[b] for b in counts if counts[b] > 0}
        per_holder = np.vectorize(lambda b, m=mean: m.get(int(b), 0.0))(band)
        noise = ctx.rng.lognormal(-(item.sigma**2) / 2, item.sigma, len(ret))
        shares[item.soi] = ret[_flag(item.soi)] * per_holder * noise
    held = sum(shares.values())
    scale = np.maximum(np.abs(ret[AGI]), MIN_SCALE) / np.where(held > 0, held, 1.0)
    return {item.soi: _fill(ctx, ret, item, shares[item.soi] * scale) for item in _COMPONENTS}


def _loss_limit(ret: _Returns) -> np.ndarray:
    return np.where(ret[FILING_STATUS] == 3, CAPITAL_LOSS_LIMIT / 2, CAPITAL_LOSS_LIMIT)


# ---------------------------------------------------------------- items


def _income(ctx: _Context, ret: _Returns) -> None:
    """All AGI components, dividends and capital gains included, plus exempt interest."""
    for item in _COMPONENTS[:-1]:
        _select(ctx, ret, item)
        if item.soi == "capital_gains_gross":  # losses come between gains and distributions
            _select(ctx, ret, _CAPITAL_LOSS)
    _select(ctx, ret, _COMPONENTS[-1])
    _select(ctx, ret, _QUALIFIED, eligible=ret[_flag("ordinary_dividends")] > 0)
    amounts = _compose(ctx, ret)
    for soi, column in _PLAIN_COLUMNS.items():
        ret[column] = amounts[soi]
    for column, (income, loss) in _SIGNED_COLUMNS.items():
        ret[column] = amounts[income] - amounts[loss]
    ordinary = amounts["ordinary_dividends"]
    shape = ordinary * ctx.rng.uniform(0.5, 1.0, len(ret))
    qualified = _fill(ctx, ret, _QUALIFIED, shape, cap=ordinary)
    ret["qualified_dividend_income"] = qualified
    ret["non_qualified_dividend_income"] = np.maximum(ordinary - qualified, 0.0)
    limit = _loss_limit(ret)
    loss = _fill(ctx, ret, _CAPITAL_LOSS, limit * ctx.rng.beta(3.0, 1.5, len(ret)), limit)
    net = amounts["capital_gains_gross"] - loss
    ret["long_term_capital_gains_before_response"] = (
        LONG_TERM_SHARE * net + amounts["capital_gains_distributions"]
    )
    ret["short_term_capital_gains"] = (1 - LONG_TERM_SHARE) * net
    ret["tax_exempt_interest_income"] = _give(ctx, ret, _EXEMPT)


def _itemized(ctx: _Context, ret: _Returns) -> None:
    """Schedule A items by Table 2.1 band; charitable split into cash and non-cash."""
    gifts = _give(ctx, ret, _Item(ITEMIZED_SOI[0], ((_I, 1.5),), 0.8, 1.2))
    has_non_cash = (gifts > 0) & (ctx.rng.random(len(ret)) < NON_CASH_HOLDER_SHARE)
    weighted = ret[WEIGHT] * gifts
    share = min(1.0, NON_CASH_SHARE * weighted.sum() / max(weighted[has_non_cash].sum(), 1.0))
    non_cash = np.where(has_non_cash, gifts * share, 0.0)
    ret["charitable_non_cash_donations"] = non_cash
    ret["charitable_cash_donations"] = gifts - non_cash
    for item, column in _SCHEDULE_A:
        ret[column] = _give(ctx, ret, item)


# ---------------------------------------------------------------- demographics


# Mean head age offsets by MARS (assumption: joint filers older, heads of household
# younger than single filers at the same AGI).
_AGE_OFFSET = {1: -3.0, 2: 6.0, 3: 2.0, 4: -4.0}


def _ages(ret: _Returns, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
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


def _dependents(status: np.ndarray, age: np.ndarray, rng: np.random.Generator) -> np.ndarray:
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


# ---------------------------------------------------------------- the donor


def synthesize_tax_records(
    year: int,
    records: int = 50_000,
    seed: int = 1456,
    soi_year: int | None = None,
    uprate: Uprate | None = None,
    *,
    soi_path: Path | None = None,
) -> ObservationFrame:
    """A PUF-like tax-record donor whose weighted SOI-year totals reproduce the SOI table.

    ``uprate(variable, soi_year, year)`` gives a factor per amount column (and AGI);
    weights stay SOI-year return counts (the calibration stage reweights to the build
    year). ``records`` returns are drawn; boundary splits add up to one per item and band.
    """
    started = time.perf_counter()
    table, path = read_soi_table(soi_path)
    facts = soi_facts(table)
    chosen = choose_soi_year(facts, year, soi_year)
    rng = np.random.default_rng(seed)
    cells = _cells(facts, chosen)
    ctx = _Context(
        facts,
        chosen,
        band_lows(_banded(facts, chosen, "count")),
        band_lows(_banded(facts, chosen, ITEMIZED_SOI[0])),
        rng,
        {},
    )
    ctx.derived.update(_partnership_targets(ctx))
    ret = _initial_returns(cells, records, rng)
    _income(ctx, ret)
    _itemized(ctx, ret)
    head, spouse = _ages(ret, rng)
    frame_table = pd.DataFrame(
        {
            ID: np.arange(1, len(ret) + 1),
            WEIGHT: ret[WEIGHT],
            FILING_STATUS: ret[FILING_STATUS].astype(int),
            "age_head": head,
            "age_spouse": spouse,
            "count_dependents": _dependents(ret[FILING_STATUS], head, rng),
            AGI: ret[AGI],
            **{column: ret[column] for column in TAX_RECORD_AMOUNTS},
        }
    )[list(REQUIRED_COLUMNS)]
    uprating = _uprate(frame_table, chosen, year, uprate)
    frame = ObservationFrame(
        source=SOURCE,
        year=year,
        tables={TAX_UNIT_TABLE: frame_table},
        links={},
        provenance={
            "kind": "synthetic",
            "label": LABEL,
            "file": str(path),
            "sha256": file_sha256(path),
            "soi_year": chosen,
            "seed": seed,
            "records": records,
            "rows": len(frame_table),
            "boundary_splits": len(frame_table) - records,
            "uprating": uprating,
            "assumptions": {
                "long_term_share_of_schedule_d": LONG_TERM_SHARE,
                "non_cash_share_of_charitable": NON_CASH_SHARE,
                "non_cash_holder_share": NON_CASH_HOLDER_SHARE,
                "capital_loss_limit": CAPITAL_LOSS_LIMIT,
                "surviving_spouse": "SOI combines them with joint filers: all MARS 2",
                "weights": "SOI-year return counts (not scaled to the build year)",
            },
        },
    )
    validate_tax_records(frame)
    reproduction = soi_reproduction(frame, soi_path=soi_path)
    frame.provenance["reproduction"] = reproduction_summary(reproduction).to_dict("records")
    frame.provenance["seconds"] = round(time.perf_counter() - started, 3)
    return frame


def _uprate(table: pd.DataFrame, soi_year: int, year: int, uprate: Uprate | None) -> dict:
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


# ---------------------------------------------------------------- evidence


def _measures(t: pd.DataFrame) -> dict[str, tuple[tuple[str, ...], pd.Series, pd.Series]]:
    """SOI column(s) -> (SOI columns summed, per-return amount, per-return count)."""

    def pos(x: pd.Series) -> pd.Series:
        return x.clip(lower=0.0)

    def neg(x: pd.Series) -> pd.Series:
        return (-x).clip(lower=0.0)

    def has(x: pd.Series) -> pd.Series:
        return (x > 0).astype(float)

    net_gain = t["long_term_capital_gains_before_response"] + t["short_term_capital_gains"]
    ordinary = t["qualified_dividend_income"] + t["non_qualified_dividend_income"]
    gifts = t["charitable_cash_donations"] + t["charitable_non_cash_donations"]
    partnership, s_corp = t["partnership_income"], t["s_corp_income"]
    simple = {
        "employment_income": t["employment_income_before_lsr"],
        "taxable_interest_income": t["taxable_interest_income"],
        "exempt_interest": t["tax_exempt_interest_income"],
        "taxable_pension_income": t["taxable_private_pension_income"],
        "ira_distributions": t["taxable_ira_distributions"],
        "unemployment_compensation": t["unemployment_compensation"],
        "ordinary_dividends": ordinary,
        "qualified_dividends": t["qualified_dividend_income"],
        "business_net_profits": pos(t["self_employment_income_before_lsr"]),
        "business_net_losses": neg(t["self_employment_income_before_lsr"]),
        "s_corporation_net_income": pos(s_corp),
        "s_corporation_net_losses": neg(s_corp),
        "rent_and_royalty_net_income": pos(t["rental_income"]),
        "rent_and_royalty_net_losses": neg(t["rental_income"]),
        "capital_gains_losses": neg(net_gain),
        "charitable_contributions_deductions": gifts,
        "itemized_real_estate_tax_deductions": t["real_estate_taxes"],
        "mortgage_interest_deductions": t["home_mortgage_interest"],
        "medical_expense_deductions_uncapped": t["other_medical_expenses"],
    }
    out = {name: ((name,), x, has(x)) for name, x in simple.items()}
    out["capital_gains_gross+distributions"] = (
        ("capital_gains_gross", "capital_gains_distributions"),
        pos(net_gain),
        has(net_gain),
    )
    for name, p, s in (
        ("partnership_and_s_corp_income", pos(partnership), pos(s_corp)),
        ("partnership_and_s_corp_losses", neg(partnership), neg(s_corp)),
    ):
        out[name] = ((name,), p + s, has(p) + has(s))
    return out


def _row(band: Any, status: str, variable: str, measure: str, soi: float, synth: float) -> dict:
    error = (synth - soi) / abs(soi) if soi else (0.0 if synth == 0 else math.inf)
    return {
        "band": band_label(band.low, band.high),
        "agi_low": band.low,
        "agi_high": band.high,
        "filing_status": status,
        "variable": variable,
        "measure": measure,
        "soi": soi,
        "synthetic": synth,
        "relative_error": error,
    }


def _deflated(frame: ObservationFrame) -> pd.DataFrame:
    """The donor table in SOI-year dollars (undoing recorded uprating factors)."""
    table = frame.tables[TAX_UNIT_TABLE].copy()
    for column, factor in frame.provenance.get("uprating", {}).get("factors", {}).items():
        table[column] = table[column] / factor
    return table


def soi_reproduction(
    frame: ObservationFrame, soi_year: int | None = None, soi_path: Path | None = None
) -> pd.DataFrame:
    """SOI value vs weighted synthetic value per AGI band x variable (x filing status for
    return counts and AGI), in SOI-year dollars; the evidence the donor asset shows."""
    facts = soi_facts(read_soi_table(soi_path)[0])
    soi_year = int(soi_year if soi_year is not None else frame.provenance["soi_year"])
    table = _deflated(frame)
    weight, agi = table[WEIGHT].to_numpy(), table[AGI].to_numpy()
    rows = []
    for status, mars in {ALL: 0, **STATUS_MARS}.items():
        in_status = np.ones(len(table), bool) if not mars else table[FILING_STATUS].eq(mars)
        count = _banded(facts, soi_year, "count", status)
        money = _banded(facts, soi_year, "adjusted_gross_income", status)
        index = band_index(agi, band_lows(count))
        for i, band in enumerate(count.itertuples()):
            held = weight * ((index == i) & in_status)
            rows.append(_row(band, status, "count", "count", band.count, held.sum()))
            rows.append(_row(band, status, AGI, "amount", money["amount"][i], (held * agi).sum()))
    for name, (columns, amount, holders) in _measures(table).items():
        bands = sum(_banded(facts, soi_year, c).set_index(["low", "high"]) for c in columns)
        bands = bands.reset_index()
        index = band_index(agi, band_lows(bands))
        if columns[0] in ITEMIZED_SOI:
            index = np.where(agi >= 1.0, index, -1)
        for i, band in enumerate(bands.itertuples()):
            w = weight * (index == i)
            rows.append(_row(band, ALL, name, "count", band.count, (w * holders).sum()))
            rows.append(_row(band, ALL, name, "amount", band.amount, (w * amount).sum()))
    out = pd.DataFrame(rows)
    out["pe_variable"] = out["variable"].map(
        lambda v: SOI_VARIABLES[v.split("+")[0]].pe if v.split("+")[0] in SOI_VARIABLES else ""
    )
    return out


def reproduction_summary(reproduction: pd.DataFrame) -> pd.DataFrame:
    """Per variable and measure: max |relative error| over bands, SOI and synthetic totals."""
    finite = reproduction.assign(abs_error=reproduction["relative_error"].abs())
    return (
        finite.groupby(["variable", "measure"], sort=False)
        .agg(
            max_abs_relative_error=("abs_error", "max"),
            soi_total=("soi", "sum"),
            synthetic_total=("synthetic", "sum"),
            bands=("band", "nunique"),
        )
        .reset_index()
    )
