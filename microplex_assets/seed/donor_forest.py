"""The donor forest of stage 4: fit, one whole donor record per leaf, and the draw.

Split out of ``donor_integration.py`` (which explains the method); everything here works
on arrays and the fitted forest, so the integration, its evidence and the top-tail
placement share one definition of a unit's conditional donor distribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from quantile_forest import RandomForestQuantileRegressor

from microplex_assets.sources import tax_records as tr

if TYPE_CHECKING:
    from microplex_assets.seed.donor_inputs import DonorIntegrationConfig

# Unit features derived from MARS on both sides.
DERIVED_FROM_FILING_STATUS: dict[str, int] = {"is_joint": 2, "is_head_of_household": 4}
TARGET_SCALE = 1_000.0  # asinh(y / 1000): linear near 0, logarithmic in the tail


def donor_unit_features(table: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Donor columns for the given conditioning names (MARS-derived flags computed)."""
    out = pd.DataFrame(index=table.index)
    for name in names:
        if name in DERIVED_FROM_FILING_STATUS:
            code = DERIVED_FROM_FILING_STATUS[name]
            out[name] = (table[tr.FILING_STATUS] == code).astype(float)
        else:
            out[name] = table[name].astype(float)
    return out


def _rng(config: DonorIntegrationConfig, stream: int) -> np.random.Generator:
    """Independent seeded streams, so e.g. the unit draws do not shift with the donor size."""
    return np.random.default_rng([config.seed, stream])


@dataclass
class DonorForest:
    """A fitted forest plus, per tree and leaf, the one donor record that leaf holds."""

    forest: RandomForestQuantileRegressor
    leaf_record: np.ndarray  # (n_trees, max_nodes): index into values, -1 for inner nodes
    values: np.ndarray  # (records, imputed): raw donor amounts of the fitted records
    rank_key: np.ndarray  # (records,): donor AGI, orders a unit's conditional distribution
    record_ids: np.ndarray  # (records,): donor tax_unit_id of each fitted record
    # (records,): donor returns (weighted, all eligible rows) with AGI at least the record's
    depth: np.ndarray
    conditioning: list[str]
    imputed: list[str]

    @property
    def n_trees(self) -> int:
        return self.leaf_record.shape[0]


def systematic_pps(
    weight: np.ndarray, draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and their counts from ``draws`` systematic weight-proportional draws.

    Each row is drawn floor or ceil of its expected count (draws x weight share), in a
    shuffled order: unbiased like draws with replacement but far more distinct rows when
    the donor is only a little larger than ``draws``.
    """
    order = rng.permutation(len(weight))
    cumulative = np.cumsum(weight[order]) / weight.sum() * draws
    points = rng.random() + np.arange(draws)
    hits = np.minimum(np.searchsorted(cumulative, points, side="right"), len(weight) - 1)
    rows, counts = np.unique(order[hits], return_counts=True)
    return rows, counts


_FOREST_CACHE: dict[str, DonorForest] = {}


def cached_donor_forest(
    rows: pd.DataFrame,
    conditioning: list[str],
    imputed: list[str],
    config: DonorIntegrationConfig,
) -> DonorForest:
    """The forest for these donor rows, conditioning and config, fitted once per process.

    Every local shard fits the same forest (same donor, same seed: only the units it
    predicts for differ), so a backfill that fits it in the parent lets each forked shard
    reuse it instead of paying the fit again. Only the latest forest is kept; the key holds
    the config fields the fit reads (placement or evidence settings do not refit it).
    """
    fit = (config.n_estimators, config.min_samples_leaf, config.max_fit_rows, config.seed,
           config.n_jobs)  # fmt: skip
    key = "|".join(
        [
            str(int(pd.util.hash_pandas_object(rows, index=False).sum())),
            ",".join(conditioning),
            ",".join(imputed),
            repr(fit),
        ]
    )
    if key not in _FOREST_CACHE:
        _FOREST_CACHE.clear()
        _FOREST_CACHE[key] = fit_donor_forest(rows, conditioning, imputed, config)
    return _FOREST_CACHE[key]


def fit_donor_forest(
    rows: pd.DataFrame,
    conditioning: list[str],
    imputed: list[str],
    config: DonorIntegrationConfig,
) -> DonorForest:
    """Fit the multi-output forest on (a weight-proportional subsample of) eligible rows."""
    weight = rows[tr.WEIGHT].to_numpy(dtype=float)
    all_agi, all_weight = rows[tr.AGI].to_numpy(dtype=float), weight
    if len(rows) > config.max_fit_rows:
        picked, counts = systematic_pps(weight, config.max_fit_rows, _rng(config, 1))
        rows, weight = rows.iloc[picked].reset_index(drop=True), counts.astype(float)
    x = donor_unit_features(rows, conditioning).to_numpy(dtype=np.float32)
    values = rows[imputed].to_numpy(dtype=float)
    target = np.arcsinh(values / TARGET_SCALE)
    spread = target.std(axis=0)
    target = (target - target.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    forest = RandomForestQuantileRegressor(
        n_estimators=config.n_estimators,
        min_samples_leaf=config.min_samples_leaf,
        random_state=config.seed,
        n_jobs=config.n_jobs,
        max_samples_leaf=1,  # the library's own leaf store; larger ones cost GBs for 14 targets
    )
    forest.fit(x, target[:, 0] if target.shape[1] == 1 else target)
    leaf_record = _one_record_per_leaf(forest, forest.apply(x), weight, _rng(config, 2))
    return DonorForest(
        forest=forest,
        leaf_record=leaf_record,
        values=values,
        rank_key=rows[tr.AGI].to_numpy(dtype=float),
        record_ids=rows[tr.ID].to_numpy(),
        depth=returns_at_or_above(all_agi, all_weight, rows[tr.AGI].to_numpy(dtype=float)),
        conditioning=list(conditioning),
        imputed=list(imputed),
    )


def returns_at_or_above(agi: np.ndarray, weight: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Weighted donor returns with AGI >= each value of ``at``."""
    order = np.argsort(agi)
    tail = np.cumsum(weight[order][::-1])[::-1]  # weight at or above each sorted position
    position = np.searchsorted(agi[order], at, side="left")
    return np.where(position < len(agi), tail[np.minimum(position, len(agi) - 1)], 0.0)


def _one_record_per_leaf(
    forest: RandomForestQuantileRegressor,
    leaves: np.ndarray,
    weight: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Per tree and leaf, one member drawn with probability proportional to its weight.

    The member with the smallest Exp(1)/weight key is a weight-proportional draw; one
    lexsort does it for every leaf of every tree at once.
    """
    records, trees = leaves.shape
    nodes = max(estimator.tree_.node_count for estimator in forest.estimators_)
    cell = (leaves + np.arange(trees) * nodes).ravel()
    key = (rng.exponential(size=leaves.shape) / weight[:, None]).ravel()
    member = np.repeat(np.arange(records), trees)
    order = np.lexsort((key, cell))
    first = order[np.r_[True, cell[order][1:] != cell[order][:-1]]]
    table = np.full(trees * nodes, -1, dtype=np.int64)
    table[cell[first]] = member[first]
    return table.reshape(trees, nodes)


def neighbourhood(model: DonorForest, x: np.ndarray) -> np.ndarray:
    """(units, trees) fitted-record indices: each unit's conditional donor distribution."""
    leaves = model.forest.apply(x.astype(np.float32))
    hood = model.leaf_record[np.arange(model.n_trees)[None, :], leaves]
    if (hood < 0).any():  # cannot happen: every leaf holds at least one fitted record
        raise RuntimeError("a unit landed in a leaf without a donor record")
    return hood


def draw_records(
    model: DonorForest, x: np.ndarray, q: np.ndarray, unit_weight: np.ndarray | None = None
) -> np.ndarray:
    """The donor record at quantile q of each unit's AGI-ordered conditional distribution.

    With ``unit_weight`` (a minimum depth per unit), a unit may only take records that at
    least that many donor returns reach or exceed in AGI (see ``minimum_depth``). If no
    candidate qualifies, the lowest-AGI candidate is taken.
    """
    hood = neighbourhood(model, x)
    key = model.rank_key[hood].astype(float)
    count = np.full(len(hood), model.n_trees)
    if unit_weight is not None:
        valid = model.depth[hood] >= np.asarray(unit_weight, dtype=float)[:, None]
        empty = np.flatnonzero(~valid.any(axis=1))
        valid[empty, np.argmin(key[empty], axis=1)] = True
        key = np.where(valid, key, np.inf)
        count = valid.sum(axis=1)
    order = np.argsort(key, axis=1, kind="stable")
    position = np.minimum((q * count).astype(np.int64), count - 1)
    rows = np.arange(len(hood))
    return hood[rows, order[rows, position]]


def conditional_quantiles(
    model: DonorForest, x: np.ndarray, quantiles: tuple[float, ...]
) -> np.ndarray:
    """(units, imputed, quantiles) per-variable quantiles of each unit's distribution."""
    hood = neighbourhood(model, x)
    out = np.empty((len(hood), len(model.imputed), len(quantiles)))
    for j in range(len(model.imputed)):
        out[:, j, :] = np.quantile(model.values[hood, j], quantiles, axis=1).T
    return out
