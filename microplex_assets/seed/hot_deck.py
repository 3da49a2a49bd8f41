"""Baselines the donor-integration evidence compares the forest with (stage 4).

A filing status x wage-group hot-deck (cell quantiles and one random cell donor) and the
pinball loss that scores conditional quantiles; see ``imputation_evidence``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from microplex_assets.sources import tax_records as tr

HOT_DECK_WAGE_GROUPS = 5  # weighted quantile groups of positive wages, plus a zero-wage group
WAGE = "employment_income_before_lsr"


def pinball_loss(
    actual: np.ndarray, predicted: np.ndarray, weight: np.ndarray, quantiles: tuple[float, ...]
) -> float:
    """Weighted mean over rows of the pinball loss averaged over quantiles.

    actual: (rows,); predicted: (rows, quantiles).
    """
    q = np.asarray(quantiles)[None, :]
    error = actual[:, None] - predicted
    loss = np.maximum(q * error, (q - 1) * error).mean(axis=1)
    return float(weight @ loss / weight.sum())


def _weighted_quantiles(values: np.ndarray, weight: np.ndarray, quantiles: np.ndarray):
    """(quantiles, columns) inverted-CDF weighted quantiles of each column of values."""
    out = np.empty((len(quantiles), values.shape[1]))
    for j in range(values.shape[1]):
        order = np.argsort(values[:, j], kind="stable")
        cumulative = np.cumsum(weight[order]) / weight.sum()
        position = np.minimum(np.searchsorted(cumulative, quantiles), len(order) - 1)
        out[:, j] = values[order[position], j]
    return out


def hot_deck_cells(table: pd.DataFrame, wage_edges: np.ndarray) -> np.ndarray:
    """Cell label: filing status x wage group (0 = no wages, 1.. = positive-wage quantiles)."""
    wage = table[WAGE].to_numpy(dtype=float)
    group = np.where(wage > 0, 1 + np.searchsorted(wage_edges, wage, side="right"), 0)
    return table[tr.FILING_STATUS].to_numpy(dtype=np.int64) * 100 + group


def _wage_edges(table: pd.DataFrame) -> np.ndarray:
    wage = table[WAGE].to_numpy(dtype=float)
    positive = wage > 0
    if not positive.any():
        return np.array([])
    shares = np.arange(1, HOT_DECK_WAGE_GROUPS) / HOT_DECK_WAGE_GROUPS
    weight = table[tr.WEIGHT].to_numpy(dtype=float)[positive]
    return _weighted_quantiles(wage[positive, None], weight, shares)[:, 0]


def hot_deck(
    train: pd.DataFrame,
    test: pd.DataFrame,
    imputed: list[str],
    quantiles: tuple[float, ...],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Baseline: cell quantiles (test, imputed, quantiles) and one random donor per test row.

    Cells are filing status x wage group; a test cell with no training rows falls back to
    its filing status, then to all rows.
    """
    edges = _wage_edges(train)
    train_cell, test_cell = hot_deck_cells(train, edges), hot_deck_cells(test, edges)
    values = train[imputed].to_numpy(dtype=float)
    weight = train[tr.WEIGHT].to_numpy(dtype=float)
    q = np.asarray(quantiles)
    predicted = np.empty((len(test), len(imputed), len(q)))
    drawn = np.empty((len(test), len(imputed)))
    for cell in np.unique(test_cell):
        at = test_cell == cell
        pool = np.flatnonzero(train_cell == cell)
        if not len(pool):
            pool = np.flatnonzero(train_cell // 100 == cell // 100)
        if not len(pool):
            pool = np.arange(len(train))
        predicted[at] = _weighted_quantiles(values[pool], weight[pool], q).T[None, :, :]
        p = weight[pool] / weight[pool].sum()
        drawn[at] = values[rng.choice(pool, int(at.sum()), p=p)]
    return predicted, drawn
