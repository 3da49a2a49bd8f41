"""The embedded SCF-like asset donor: published SCF tables below $2.1m, real SCF records above.

No SCF microdata ships with the build, yet SSI and SNAP resource tests read
``bank_account_assets``, ``stock_assets`` and ``bond_assets`` and the household input
``net_worth``; with none, every asset test passes. This donor supplies them for stage 4
(``seed/asset_imputation.py``). It is *not* survey data below the top tail: provenance says
``kind="synthetic"``, and only the 6,092 top-tail rows are real SCF 2022 records.

Built from ``data/scf_2022_published_assets.csv`` (each row published / derived /
assumption, sources in SOURCES.json):

- Cells are age of reference person (6 SCF groups) x income percentile group (the SCF's
  0-20, 20-40, 40-60, 60-80, 80-90, 90-100). Ages and income ranks are spread uniformly
  inside the cell. Cells have equal age shares (families by age were not found) and
  income shares equal to the group widths, totalling the published 131.3m families less
  the top tail's weight.
- Holding rate of an asset in a cell: the published age and income gradients (2010 SCF)
  combined on the logit scale, logit p = logit p_all + (logit p_age - logit p_all) +
  (logit p_income - logit p_all), then shifted by one constant so the cells' weighted
  mean is the 2022 all-family rate net of the real top tail's holders. Exactly
  round(p x n) of the cell's records hold it, chosen by a key sharing a latent wealth
  factor (loading an assumption row).
- Holders' amounts are lognormal by rank among the cell's holders: cell median = the
  all-family median x the age ratio (2022 where published, else 2013) x the income ratio
  (2013); log spread from the published mean/median ratio less the spread between cells;
  one factor per asset then puts the whole population's holders' median (top tail
  included) on the published one.
- Net worth = max(liquid assets, other wealth), other wealth lognormal around Table 2's
  2022 median by age x (the 2013 income ratio of financial-asset medians) ** slope, its log
  spread from Table 2's mean/median by age x a scale; slope (grid 0-1) and scale
  (bisection) are solved so the total with the real tail is the published 131.3m x
  $1,063,700 and the population median is nearest $192,900 (2022 net worth by income
  was not found). Draws stop below the top-tail floor: above it the real records donate.
- ``bond_assets`` = directly held bonds + savings bonds (PolicyEngine: bonds and
  government securities, U.S. savings bonds included).
- Top-tail records: net worth, age and income are the record's; each holds an asset with
  its age group's top-income-decile rate; liquid assets are a stated share of non-housing
  net worth split over the held assets by stated portfolio shares (assumption rows:
  published top-decile portfolio shares were not found).

What the donor cannot carry: marital status, children and tenure jointly with assets are
not in the published cross-tabs used, so only age and income rank condition the draw.
Negative net worth is not modelled (every synthetic record is >= 0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from scipy.stats import norm

from microplex_assets.sources.frame import ObservationFrame
from microplex_assets.sources.reference_microdata import load_scf_top_tail
from microplex_assets.sources.scf_published_table import (
    AGE_BOUNDS,
    AGE_GROUPS,
    ASSET_PARTS,
    DATA_DIR,
    IMPUTED,
    INCOME_BOUNDS,
    INCOME_GROUPS,
    SCF_PARTS,
    SCF_YEAR,
    SOURCE,
    TABLE_FILE,
    TOP_TAIL_INCOME,
    Uprate,
    figure,
    figure_years,
    holder_median,
    holding_rate,
    log_spread,
    net_worth_median,
    read_published_table,
)

__all__ = ["AGE_BOUNDS", "AGE_GROUPS", "ASSET_PARTS", "DATA_DIR", "IMPUTED", "INCOME_BOUNDS",
           "INCOME_GROUPS", "SCF_PARTS", "TABLE_FILE", "cell_reproduction", "figure",
           "read_published_table", "synthesize_asset_donor"]  # fmt: skip


def _cells() -> list[tuple[int, int]]:
    return [(a, g) for a in range(len(AGE_GROUPS)) for g in range(len(INCOME_GROUPS))]


def _stratified(rng: np.random.Generator, n: int) -> np.ndarray:
    return (rng.permutation(n) + rng.random(n)) / n


def cell_weights() -> np.ndarray:
    """Share of families per cell: equal age shares (families by age not found) x income
    group widths."""
    widths = np.diff(INCOME_BOUNDS)
    return np.array([widths[g] / len(AGE_GROUPS) for _, g in _cells()])


def cell_holding_rates(table: pd.DataFrame, asset: str, target: float | None = None) -> np.ndarray:
    """Per cell: gradient rates shifted on the logit scale so their cell-weighted mean is
    ``target`` (default: the latest all-family rate)."""
    raw = logit(np.array([holding_rate(table, asset, AGE_GROUPS[a], INCOME_GROUPS[g])
                          for a, g in _cells()]))  # fmt: skip
    share = cell_weights()
    target = figure(table, "holding_rate", asset) / 100 if target is None else target
    target = min(max(target, 1e-4), 1 - 1e-4)
    low, high = -10.0, 10.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if share @ expit(raw + mid) < target else (low, mid)
    return expit(raw + (low + high) / 2)


def _weighted_quantile(values: np.ndarray, weight: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weight[order])
    return float(values[order][np.searchsorted(cumulative, q * cumulative[-1])])


def _truncated_lognormal(mu: np.ndarray, sigma: np.ndarray, u: np.ndarray, floor: float):
    """exp(mu + sigma z) at quantile u of the lognormal truncated above at ``floor``."""
    top = norm.cdf((np.log(floor) - mu) / sigma)
    return np.exp(mu + sigma * norm.ppf(np.clip(u * top, 1e-12, 1 - 1e-12)))


def synthetic_records(
    table: pd.DataFrame,
    records: int,
    families: float,
    floor: float,
    residual: float,
    seed: int,
    factors: dict[str, float],
    targets: dict[str, float] | None = None,
    median_target: float = 0.0,
    median_quantile: float = 0.5,
    tail_holders: dict[str, float] | None = None,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Cell-structured synthetic families below ``floor`` (net worth), amounts x factors.

    Net worth's income slope (see ``net_worth_median``) and a multiplier of its log spread
    are solved so the weighted total is ``residual`` (published total less the real top
    tail's) and the donor's weighted ``median_quantile`` (the population median, the tail
    all lying above) is nearest ``median_target``;
    returns both.
    """
    rng = np.random.default_rng([seed, 22])
    cells, n = _cells(), max(records // len(_cells()), 20)
    rho = figure(table, "correlation", "latent_wealth")
    cell = np.repeat(np.arange(len(cells)), n)
    age, income = np.array([c[0] for c in cells])[cell], np.array([c[1] for c in cells])[cell]
    u_age, u_income = (
        np.concatenate([_stratified(rng, n) for _ in cells]),
        np.concatenate([_stratified(rng, n) for _ in cells]),
    )
    out = pd.DataFrame({
        "age_head": np.floor(np.take(AGE_BOUNDS, age) + u_age * np.diff(AGE_BOUNDS)[age]),
        "income_rank": np.take(INCOME_BOUNDS, income) + u_income * np.diff(INCOME_BOUNDS)[income],
        "household_weight": families * cell_weights()[cell] / n,
        "age_group": np.take(AGE_GROUPS, age), "income_group": np.take(INCOME_GROUPS, income),
    })  # fmt: skip
    wealth = rng.standard_normal(len(out))
    weight = out["household_weight"].to_numpy()

    def loaded() -> np.ndarray:
        return rho * wealth + np.sqrt(1 - rho**2) * rng.standard_normal(len(out))

    liquid = np.zeros(len(out))
    for part in SCF_PARTS:
        medians = np.array([holder_median(table, part, AGE_GROUPS[a], INCOME_GROUPS[g])
                            for a, g in cells])  # fmt: skip
        year = figure_years(table, "mean_holders", part)[0]
        ratio = figure(table, "mean_holders", part, year=year) / figure(
            table, "median_holders", part, year=year
        )
        spread, draw = log_spread(ratio, medians), loaded()
        key, holds = loaded(), np.zeros(len(out), dtype=bool)
        z = np.zeros(len(out))
        target = None if targets is None else targets[part]
        for k, rate in enumerate(cell_holding_rates(table, part, target)):
            rows = np.flatnonzero(cell == k)
            held = rows[np.argsort(-key[rows], kind="stable")[: int(round(rate * n))]]
            holds[held] = True
            # Amounts by rank among the cell's holders: their median is the cell median
            # (drawing first and selecting holders on a shared factor would raise it).
            rank = np.argsort(np.argsort(draw[held], kind="stable"), kind="stable")
            z[held] = norm.ppf((rank + 0.5) / max(len(held), 1))
        amount = np.where(holds, medians[cell] * np.exp(spread * z) * factors[part], 0.0)
        # The published holders' median counts the real top tail's holders too, all above
        # these: scale so the whole population's holders' median (the synthetic holders'
        # quantile 0.5 x all holders / synthetic holders) is the published one.
        tail = 0.0 if tail_holders is None else tail_holders[part]
        synthetic = float(weight[holds].sum())
        position = 0.5 * (synthetic + tail) / synthetic if synthetic else 0.0
        if 0.0 < position < 1.0:
            level = figure(table, "median_holders", part) * factors[part]
            amount *= level / _weighted_quantile(amount[holds], weight[holds], position)
        out[part] = amount
        liquid += amount
    # A record below the floor cannot hold more liquid assets than the floor.
    shrink = np.minimum(1.0, 0.95 * floor / np.maximum(liquid, 1.0))
    for part in SCF_PARTS:
        out[part] *= shrink
    liquid *= shrink
    u = norm.cdf(loaded())

    def net_worth(slope: float, scale: float) -> np.ndarray:
        medians = np.array([net_worth_median(table, AGE_GROUPS[a], INCOME_GROUPS[g], slope)
                            for a, g in cells])  # fmt: skip
        spread = np.array([log_spread(
            figure(table, "mean", "net_worth", "age", group)
            / figure(table, "median", "net_worth", "age", group),
            medians[a * len(INCOME_GROUPS):(a + 1) * len(INCOME_GROUPS)],
        ) for a, group in enumerate(AGE_GROUPS)])[age]  # fmt: skip
        mu = np.log(medians[cell] * factors["net_worth"])
        return np.maximum(_truncated_lognormal(mu, spread * scale, u, floor), liquid)

    def scale_for(slope: float) -> float:
        low, high = 0.05, 1.5
        for _ in range(30):
            mid = (low + high) / 2
            low, high = (mid, high) if weight @ net_worth(slope, mid) < residual else (low, mid)
        return (low + high) / 2

    # Two published figures fix two unknowns: for each slope the spread scale meets the
    # total, and the slope whose weighted median is nearest the published median wins.
    best = min(
        ((slope, scale_for(slope)) for slope in np.linspace(0.0, 1.0, 11)),
        key=lambda pair: abs(
            _weighted_quantile(net_worth(*pair), weight, median_quantile) - median_target
        ),
    )
    slope, scale = best
    out["net_worth"] = net_worth(slope, scale)
    for variable, scf_parts in ASSET_PARTS.items():
        out[variable] = out[list(scf_parts)].sum(axis=1)
    out["is_top_tail"] = False
    out["income"] = np.nan
    return out, {"income_slope": float(slope), "spread_scale": float(scale)}


def top_tail_records(
    table: pd.DataFrame, income_factor: float, factors: dict[str, float], seed: int
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, float]]:
    """The real SCF 2022 top-tail records with liquid assets (stated share of non-housing
    net worth) split over the assets each holds; also each SCF part's weighted holding rate.

    A record holds an asset with its age group's top-income-decile rate (the published
    gradient); a held asset takes its stated portfolio share, renormalised over held ones.
    """
    tail, provenance = load_scf_top_tail()
    rng = np.random.default_rng([seed, 23])
    share = figure(table, "share_of_net_worth", "top_tail_financial")
    non_housing = np.maximum(tail["net_worth"] - (tail["houses"] - tail["mrthel"]), 0.0)
    liquid = share * non_housing.to_numpy(dtype=float) * factors["net_worth"]
    weight = tail["wgt"].to_numpy(dtype=float)
    age = np.clip(tail["age"].to_numpy(dtype=float), AGE_BOUNDS[0], AGE_BOUNDS[-1] - 1)
    group = np.searchsorted(AGE_BOUNDS, age, side="right") - 1
    holds, rates = {}, {}
    for part in SCF_PARTS:
        p = np.array([holding_rate(table, part, g, INCOME_GROUPS[-1]) for g in AGE_GROUPS])
        holds[part] = rng.random(len(tail)) < p[group]
        rates[part] = float(weight[holds[part]].sum() / weight.sum())
    held = {v: np.logical_or.reduce([holds[p] for p in parts]) for v, parts in ASSET_PARTS.items()}
    portfolio = {"bank_account_assets": "top_tail_transaction_accounts",
                 "stock_assets": "top_tail_stocks", "bond_assets": "top_tail_bonds"}  # fmt: skip
    shares = {v: held[v] * figure(table, "share_of_liquid", name) for v, name in portfolio.items()}
    total = np.maximum(sum(shares.values()), 1e-12)
    out = pd.DataFrame({
        "age_head": tail["age"].to_numpy(dtype=float),
        "income_rank": np.nan,
        "income": tail[list(TOP_TAIL_INCOME)].sum(axis=1).to_numpy(dtype=float) * income_factor,
        "household_weight": weight,
        "net_worth": tail["net_worth"].to_numpy(dtype=float) * factors["net_worth"],
        **{v: liquid * shares[v] / total for v in ASSET_PARTS},
    })  # fmt: skip
    out["is_top_tail"] = True
    return out, provenance, rates


def synthesize_asset_donor(
    year: int,
    records: int = 14_400,
    seed: int = 0,
    uprate: Uprate | None = None,
    path: Path | None = None,
) -> ObservationFrame:
    """The SCF-like asset donor for ``year``: synthetic below the top-tail floor, real above."""  # noqa: E501
    table, entry = read_published_table(path)

    def factor(variable: str, from_year: int) -> float:
        return 1.0 if uprate is None else float(uprate(variable, from_year, year))

    factors = {part: factor("bank_account_assets", figure_year(table, part)) for part in SCF_PARTS}
    factors.update({v: factor(v, SCF_YEAR) for v in IMPUTED})
    tail, tail_provenance, tail_rates = top_tail_records(
        table, factor("employment_income", SCF_YEAR - 1), factors, seed
    )
    floor = float(tail["net_worth"].min())
    tail_weight = float(tail["household_weight"].sum())
    families = figure(table, "families", "all") * 1e6
    residual = (families * figure(table, "mean", "net_worth") * factors["net_worth"]
                - float(tail["household_weight"] @ tail["net_worth"]))  # fmt: skip
    tail_share = tail_weight / families
    targets = {part: (figure(table, "holding_rate", part) / 100 - tail_share * tail_rates[part])
               / (1 - tail_share) for part in SCF_PARTS}  # fmt: skip
    # The whole population's median lies in the synthetic part (the tail is all above it).
    synthetic, fit = synthetic_records(
        table,
        records,
        families - tail_weight,
        floor,
        residual,
        seed,
        factors,
        targets,
        median_target=figure(table, "median", "net_worth") * factors["net_worth"],
        median_quantile=0.5 / (1 - tail_share),
        tail_holders={part: rate * tail_weight for part, rate in tail_rates.items()},
    )
    household = pd.concat([synthetic, tail], ignore_index=True)
    household.insert(0, "household_id", np.arange(1, len(household) + 1, dtype=np.int64))
    frame = ObservationFrame(
        source=SOURCE,
        year=year,
        tables={"household": household},
        links={},
        provenance={
            "kind": "synthetic",
            "table": entry,
            "top_tail": {**tail_provenance, "kind": "real", "records": len(tail)},
            "records": {"synthetic": len(synthetic), "real_top_tail": len(tail)},
            "net_worth_floor_of_top_tail": floor,
            "net_worth_fit": fit,
            "holding_targets_below_top_tail": targets,
            "top_tail_holding_rates": tail_rates,
            "uprating_factors": factors,
            "seed": seed,
            "notes": [
                "synthetic below the top-tail floor, drawn to the published SCF figures in "
                f"{TABLE_FILE}; the 6,092 top-tail rows are real SCF 2022 records",
                "conditioning available: age_head and income_rank (family and tenure are not "
                "in the published cross-tabs used)",
                "top-tail liquid assets: assumption shares (published portfolio shares of "
                "the top decile not found)",
            ],
        },
    )
    frame.validate()
    return frame


def figure_year(table: pd.DataFrame, asset: str) -> int:
    """The year of an asset's level (latest all-family median) figure."""
    return figure_years(table, "median_holders", asset)[0]


def cell_reproduction(frame: ObservationFrame, path: Path | None = None) -> pd.DataFrame:
    """Per cell and SCF asset: the donor's weighted holding rate vs the table's (the
    published gradients moved to the all-family level the donor was drawn to)."""
    table, _ = read_published_table(path)
    targets = frame.provenance.get("holding_targets_below_top_tail", {})
    rates = {part: dict(zip(_cells(), cell_holding_rates(table, part, targets.get(part)),
                            strict=True)) for part in SCF_PARTS}  # fmt: skip
    household = frame.tables["household"]
    synthetic = household[~household["is_top_tail"]]
    rows = []
    for (age, income), cell in synthetic.groupby(["age_group", "income_group"]):
        for part in SCF_PARTS:
            weight = cell["household_weight"].to_numpy()
            donor = float(weight[cell[part].to_numpy() > 0].sum() / weight.sum())
            rows.append({"age_group": age, "income_group": income, "asset": part,
                         "table_rate": rates[part][(AGE_GROUPS.index(age),
                                                    INCOME_GROUPS.index(income))],
                         "donor_rate": donor, "records": len(cell)})  # fmt: skip
    return pd.DataFrame(rows)
