"""Stage 5: synthesis backends and support enforcement.

A backend turns the seed into the candidate population. ``seed_passthrough`` keeps the
seed records as they are; ``bootstrap`` resamples whole households with replacement under
new ids. Every backend takes ``(seed, seed_value=0, size=None)`` so ``run_backend`` can pass
a random seed and a target size to any of them. Support enforcement then checks that every
geography the product must represent has records, and either fails naming the geographies
that have too few or, when asked, borrows households from other states to fill them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np
import pandas as pd

from microplex_assets.sources.frame import ObservationFrame

SOURCE_HOUSEHOLD = "source_household_id"  # the household a copied record came from
BORROWED_FROM_STATE = "borrowed_from_state_fips"  # donor state of a borrowed household
BORROWED_WEIGHT = 1.0  # borrowed records give support, not weighted totals


class Backend(Protocol):
    """A synthesis backend: seed in, candidate out; one signature so run_backend stays generic."""

    def __call__(
        self, seed: ObservationFrame, seed_value: int = 0, size: int | None = None
    ) -> ObservationFrame: ...


def seed_passthrough(
    seed: ObservationFrame, seed_value: int = 0, size: int | None = None
) -> ObservationFrame:
    """The seed itself: no synthetic records (``seed_value`` unused; ``size`` must match)."""
    households = len(seed.tables["household"])
    if size is not None and size != households:
        raise ValueError(f"seed_passthrough keeps the seed's {households} households, not {size}")
    return ObservationFrame(
        source=f"candidate<{seed.source}>",
        year=seed.year,
        tables={entity: table.copy() for entity, table in seed.tables.items()},
        links=seed.links,
        provenance={**seed.provenance, "backend": "seed_passthrough"},
    )


def allocate_draws(totals: pd.Series, size: int) -> pd.Series:
    """Draws per stratum proportional to weighted totals, one at least each, summing to size.

    Largest-remainder rounding; ties broken by stratum order, so the allocation is fixed.
    """
    if size < len(totals):
        raise ValueError(f"bootstrap size {size} cannot give one household to {len(totals)} states")
    share = (
        totals / totals.sum() if totals.sum() > 0 else pd.Series(1.0 / len(totals), totals.index)
    )
    spread = share * (size - len(totals))
    draws = 1 + np.floor(spread).astype(np.int64)
    left = size - int(draws.sum())
    order = np.argsort(-(spread - np.floor(spread)).to_numpy(), kind="stable")[:left]
    draws.iloc[order] += 1
    return draws


def copy_households(
    frame: ObservationFrame, source_ids: np.ndarray, first_ids: dict[str, int]
) -> dict[str, pd.DataFrame]:
    """Copies of the given households (repeats allowed) with every entity under new ids.

    Each copy gets ids ``first_ids[entity]``, +1, ... in copy order; links between copied
    tables are remapped within the copy. ``source_household_id`` keeps the original record
    (the root one when the input is itself a copy). Household weights are copied unchanged.
    """
    household = frame.tables["household"]
    draws = pd.DataFrame({"_copy": np.arange(len(source_ids)), "_source": source_ids})
    root = household["household_id"]
    if SOURCE_HOUSEHOLD in household.columns:
        root = household[SOURCE_HOUSEHOLD].fillna(root)
    source = household.assign(**{SOURCE_HOUSEHOLD: root.to_numpy()})
    copied = draws.merge(source, left_on="_source", right_on="household_id", how="left")
    if copied["household_id"].isna().any():
        raise ValueError(f"{frame.source}: cannot copy unknown household ids")
    new_household = first_ids["household"] + copied["_copy"].to_numpy(dtype=np.int64)
    tables = {"household": copied[list(source.columns)].assign(household_id=new_household)}
    id_maps: dict[str, pd.Series] = {}
    for entity, table in frame.tables.items():
        if entity == "household":
            continue
        if "household_id" not in table.columns:
            raise ValueError(f"{frame.source}: table '{entity}' has no household_id to copy by")
        key = f"{entity}_id"
        rows = draws.merge(
            table.assign(_row=np.arange(len(table))),
            left_on="_source",
            right_on="household_id",
            how="inner",
        ).sort_values(["_copy", "_row"], kind="stable")
        old_ids = rows[key].to_numpy()
        new_ids = first_ids.get(entity, 1) + np.arange(len(rows), dtype=np.int64)
        id_maps[entity] = pd.Series(
            new_ids, index=pd.MultiIndex.from_arrays([rows["_copy"].to_numpy(), old_ids])
        )
        rows[key] = new_ids
        rows["household_id"] = first_ids["household"] + rows["_copy"].to_numpy(dtype=np.int64)
        tables[entity] = rows.reset_index(drop=True)
    for child, parents in frame.links.items():
        for parent in parents:
            if parent == "household" or child == "household" or parent not in id_maps:
                continue
            column = tables[child][f"{parent}_id"].to_numpy()
            lookup = pd.MultiIndex.from_arrays([tables[child]["_copy"].to_numpy(), column])
            tables[child][f"{parent}_id"] = id_maps[parent].reindex(lookup).to_numpy()
    for entity, table in tables.items():
        tables[entity] = table.drop(columns=["_copy", "_source", "_row"], errors="ignore")
    return tables


def bootstrap(
    seed: ObservationFrame, seed_value: int = 0, size: int | None = None
) -> ObservationFrame:
    """Whole households drawn with replacement, stratified by state, under new ids 1..n.

    Design: ``size`` draws (default: the seed's household count) are allocated to states in
    proportion to their weighted household totals, at least one per state, so every state of
    the seed keeps support. Within a state, households are drawn with probability
    proportional to ``household_weight``; each draw then carries the Hansen-Hurwitz weight
    state total / draws in state, so every state's (and the national) weighted household
    total equals the seed's. Deterministic for a given ``seed_value``.
    """
    household = seed.tables["household"]
    size = len(household) if size is None else size
    totals = household.groupby("state_fips")["household_weight"].sum().sort_index()
    draws = allocate_draws(totals, size)
    rng = np.random.default_rng(seed_value)
    sources, weights = [], []
    for state, count in draws.items():
        members = household[household["state_fips"] == state]
        weight = members["household_weight"].to_numpy(dtype=float)
        p = weight / weight.sum() if weight.sum() > 0 else None
        picked = rng.choice(members["household_id"].to_numpy(), size=int(count), p=p)
        sources.append(np.sort(picked, kind="stable"))
        weights.append(np.full(int(count), totals[state] / count))
    tables = copy_households(
        seed, np.concatenate(sources), {"household": 1, "tax_unit": 1, "person": 1}
    )
    tables["household"]["household_weight"] = np.concatenate(weights)
    candidate = ObservationFrame(
        source=f"candidate<{seed.source}>",
        year=seed.year,
        tables=tables,
        links=seed.links,
        provenance={
            **seed.provenance,
            "backend": "bootstrap",
            "bootstrap": {
                "seed_value": seed_value,
                "households": size,
                "strata": "state_fips",
                "draw_probability": "household_weight within state",
                "weight": "state weighted total / draws in state (Hansen-Hurwitz)",
                "distinct_source_households": int(len(np.unique(np.concatenate(sources)))),
            },
        },
    )
    candidate.validate()
    return candidate


BACKENDS: dict[str, Backend] = {
    "seed_passthrough": seed_passthrough,
    "bootstrap": bootstrap,
}


def run_backend(
    name: str, seed: ObservationFrame, random_seed: int = 0, size: int | None = None
) -> ObservationFrame:
    """Run a named backend; an unknown name lists the known ones."""
    if name not in BACKENDS:
        raise ValueError(f"unknown synthesis backend '{name}'; expected one of {list(BACKENDS)}")
    return BACKENDS[name](seed, seed_value=random_seed, size=size)


class SupportError(ValueError):
    """A geography the product must represent has no records."""


def _donors(household: pd.DataFrame, state: int, needed: int) -> np.ndarray:
    """Household ids from other states nearest to the state's own, by income if known.

    Targets are the incomes of the state's existing households (cycled); an empty state
    takes evenly spaced weighted income quantiles of the donor pool instead. Each target
    takes the unused donor in its income bracket (when ``income_bracket`` exists) with the
    nearest ``household_income``; without income columns, the heaviest-weight donors.
    """
    pool = household[household["state_fips"] != state].sort_values("household_id")
    if BORROWED_FROM_STATE in pool.columns:
        pool = pool[pool[BORROWED_FROM_STATE].isna()]  # lend originals, not earlier loans
    if pool.empty:
        raise SupportError(f"state {state} needs households but no other state can lend any")
    if "household_income" not in pool.columns:
        order = pool.sort_values("household_weight", ascending=False, kind="stable")
        return np.resize(order["household_id"].to_numpy(), needed)
    own = household[household["state_fips"] == state]
    income = pool["household_income"].to_numpy(dtype=float)
    if len(own):
        targets = np.resize(own["household_income"].to_numpy(dtype=float), needed)
    else:
        order = np.argsort(income, kind="stable")
        cumulative = np.cumsum(pool["household_weight"].to_numpy(dtype=float)[order])
        cut = (np.arange(needed) + 0.5) / needed * cumulative[-1]
        targets = income[order][np.minimum(np.searchsorted(cumulative, cut), len(order) - 1)]
    by_bracket = "income_bracket" in pool.columns and len(own) > 0
    brackets = pool["income_bracket"].to_numpy() if by_bracket else None
    own_brackets = np.resize(own["income_bracket"].to_numpy(), needed) if by_bracket else None
    used = np.zeros(len(pool), dtype=bool)
    chosen = []
    for i, target in enumerate(targets):
        if used.all():
            used[:] = False  # more needed than donors: reuse them
        free = ~used
        if by_bracket:
            same = free & (brackets == own_brackets[i])
            free = same if same.any() else free
        pick = int(np.argmin(np.where(free, np.abs(income - target), np.inf)))
        used[pick] = True
        chosen.append(pool["household_id"].iloc[pick])
    return np.asarray(chosen)


def borrow_households(
    candidate: ObservationFrame, needed: dict[int, int]
) -> tuple[ObservationFrame, dict[int, int]]:
    """A copy of ``candidate`` with ``needed[state]`` households borrowed into each state.

    Borrowed households are copies of the nearest households of other states (see
    ``_donors``) with the state reassigned, new ids above the existing ones and weight
    ``BORROWED_WEIGHT``, so they give the state support without moving weighted totals
    much; calibration then sets their weights. Returns the frame and records added per state.
    """
    household = candidate.tables["household"]
    tables = {entity: table.copy() for entity, table in candidate.tables.items()}
    own_ids = tables["household"]["household_id"]
    if SOURCE_HOUSEHOLD in tables["household"].columns:
        own_ids = tables["household"][SOURCE_HOUSEHOLD].fillna(own_ids)
    tables["household"][SOURCE_HOUSEHOLD] = own_ids.to_numpy()
    added: dict[int, int] = {}
    for state, count in sorted(needed.items()):
        if count <= 0:
            continue
        donors = _donors(household, state, count)
        first = {
            entity: int(t[f"{entity}_id"].max() if len(t) else 0) + 1
            for entity, t in tables.items()
        }
        copies = copy_households(
            ObservationFrame(candidate.source, candidate.year, tables, candidate.links),
            donors,
            first,
        )
        donor_state = household.set_index("household_id").loc[donors, "state_fips"].to_numpy()
        copies["household"][BORROWED_FROM_STATE] = donor_state
        copies["household"]["state_fips"] = state
        copies["household"]["household_weight"] = BORROWED_WEIGHT
        for entity, table in copies.items():
            tables[entity] = pd.concat([tables[entity], table], ignore_index=True)
        added[int(state)] = int(count)
    borrowed = ObservationFrame(
        source=candidate.source,
        year=candidate.year,
        tables=tables,
        links=candidate.links,
        provenance={**candidate.provenance, "borrowed_support": added},
    )
    borrowed.validate()
    return borrowed, added


def enforce_support(
    candidate: ObservationFrame,
    required_state_fips: Iterable[int],
    min_households: int = 1,
    borrow: bool = False,
) -> dict[str, Any]:
    """Check every required state has at least ``min_households`` records; report per state.

    Without ``borrow`` a shortfall raises SupportError naming the states. With ``borrow``
    the shortfall is filled by ``borrow_households`` and ``candidate``'s tables and
    provenance are replaced in place by the augmented ones (the caller's frame then holds
    the added records); the report gives ``records_added`` and ``records_added_by_state``.
    """
    household = candidate.tables["household"]
    counts = household["state_fips"].value_counts()
    required = sorted(set(required_state_fips))
    short = {
        fips: int(counts.get(fips, 0)) for fips in required if counts.get(fips, 0) < min_households
    }
    added: dict[int, int] = {}
    if short and not borrow:
        raise SupportError(
            f"states without support (fips: households, need {min_households}): {short}"
        )
    if short:
        borrowed, added = borrow_households(
            candidate, {fips: min_households - have for fips, have in short.items()}
        )
        candidate.tables = borrowed.tables
        candidate.provenance = borrowed.provenance
        counts = candidate.tables["household"]["state_fips"].value_counts()
    present = counts.reindex(required, fill_value=0)
    return {
        "required_states": len(required),
        "states_present": int((present > 0).sum()),
        "min_households_per_state": int(present.min()) if len(present) else 0,
        "median_households_per_state": float(present.median()) if len(present) else 0.0,
        "records_added": int(sum(added.values())),
        "records_added_by_state": added,
    }
