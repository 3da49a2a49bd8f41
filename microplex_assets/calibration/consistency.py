"""National consistency targets for a local shard.

A shard fitted to its 34 state targets alone leaves every national quantity free: the 51
shards summed put unemployment compensation at 7.8x CBO's total and the fan-in's national
loss at 6.4 against national|US's 0.05. So a shard also fits, for each national *total*
(no AGI band, all filing statuses), the share that national|US's weights put in the state:
``consistency/<national target>`` with value = national|US's estimate of that target on the
state's households. The shard's records compute it exactly as they compute the national
target (the contributions are the shard's ``national_contributions`` rows), and the targets
keep geography ``US`` so the loss's count normalisation weighs them as one block against
the state targets (each half). They are never held out.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import sparse

from microplex_assets.calibration.matrix import SavedMatrix, TargetMatrix
from microplex_assets.calibration.published_scores import PublishedBundle, state_household_ids
from microplex_assets.calibration.targets.model import Target, TargetSet

CONSISTENCY_PREFIX = "consistency/"
TOTAL_SUFFIXES = ("/agi_all/all_statuses", "/agi_all/all_statuses/taxable")


def is_national_total(name: str) -> bool:
    """A national target that is a total: not banded by AGI, all filing statuses."""
    return "/agi_" not in name or name.endswith(TOTAL_SUFFIXES)


def consistency_name(name: str) -> str:
    return CONSISTENCY_PREFIX + name


def national_name(name: str) -> str:
    """The national target a consistency target shares out (other names unchanged)."""
    return name.removeprefix(CONSISTENCY_PREFIX)


def is_consistency(names: pd.Series | np.ndarray | list[str]) -> np.ndarray:
    return np.array([str(n).startswith(CONSISTENCY_PREFIX) for n in names], dtype=bool)


def state_share_weights(weights: pd.Series, household_ids: np.ndarray) -> pd.Series:
    """National weights with every household outside the state (``household_ids``) zero."""
    return weights.where(weights.index.isin(household_ids), 0.0)


def state_shares(national: PublishedBundle, state: str, year: int, names: pd.Index) -> pd.Series:
    """national|US's estimate of each named national target on the state's households."""
    weights = state_share_weights(
        national.weights, state_household_ids(national.h5_path, year, state)
    )
    return national.matrix().estimates_by_name(weights, names)


def fallback_with_consistency(
    national: PublishedBundle, state: str, year: int, names: pd.Index
) -> pd.Series:
    """The fallback's estimate of each of a shard's targets: national|US's weights on the
    state targets, and on a consistency target its state share (which is the target's
    value: the fallback is what the shard's consistency block copies)."""
    mask = is_consistency(names)
    estimates = national.matrix().estimates_by_name(national.weights, names[~mask])
    if mask.any():
        national_names = pd.Index([national_name(n) for n in names[mask]])
        shares = state_shares(national, state, year, national_names)
        estimates = pd.concat([estimates, pd.Series(shares.to_numpy(), index=names[mask])])
    return estimates.reindex(names)


def add_consistency_targets(
    matrix: TargetMatrix,
    contributions: SavedMatrix,
    national_targets: TargetSet,
    shares: pd.Series,
    source: dict[str, object],
) -> TargetMatrix:
    """``matrix`` plus one fitted row per national total in ``shares`` (national target
    name -> the state's share) that the shard's records contribute to and whose share is
    nonzero; the contributions rows are put in ``matrix``'s household order."""
    by_name = {t.name: t for t in national_targets}
    row_of = {name: k for k, name in enumerate(contributions.targets["name"])}
    chosen = [
        name for name, value in shares.items()
        if name in row_of and name in by_name and value != 0 and is_national_total(name)
    ]  # fmt: skip
    if not chosen:
        return matrix
    columns = pd.Index(contributions.household_ids).get_indexer(matrix.household_ids)
    if (columns < 0).any():
        raise KeyError("national contributions lack households of the shard's matrix")
    rows = contributions.matrix[[row_of[name] for name in chosen]][:, columns]
    targets = [
        replace(
            by_name[name],
            name=consistency_name(name),
            value=float(shares[name]),
            group=consistency_name(by_name[name].group),
            source={**source, "national_target": name, "national_value": by_name[name].value},
        )
        for name in chosen
    ]
    ledger_rows = pd.DataFrame(
        {
            "name": [t.name for t in targets],
            "family": [t.family for t in targets],
            "group": [t.group for t in targets],
            "geography": [t.geography for t in targets],
            "value": [t.value for t in targets],
            "status": "kept",
            "reason": "",
            "supporting_households": np.diff(rows.indptr),
            "held_out": False,
        }
    )
    ledger = pd.concat([matrix.ledger, ledger_rows.reindex(columns=matrix.ledger.columns)])
    return replace(
        matrix,
        matrix=sparse.vstack([matrix.matrix, rows]).tocsr(),
        targets=TargetSet((*matrix.targets, *targets)),
        ledger=ledger.reset_index(drop=True),
        train=np.concatenate([matrix.train, np.ones(len(targets), dtype=bool)]),
    )


def national_totals(target_set: TargetSet) -> list[Target]:
    """The national targets a shard may share out (totals only)."""
    return [t for t in target_set if t.is_national and is_national_total(t.name)]
