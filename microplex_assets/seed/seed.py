"""Stage 4: the seed frame, the scaffold in canonical form sampled to the product size."""

from __future__ import annotations

from typing import Any

import pandas as pd

from microplex_assets.seed.canonical import INCOME_BRACKET_LABELS, canonical_households
from microplex_assets.seed.local_support import (
    borrow_for_support,
    similar_states,
    support_needs,
    tax_unit_income,
)
from microplex_assets.seed.sampling import SamplingDesign, stratified_sample
from microplex_assets.sources.frame import ObservationFrame
from microplex_assets.targets.model import TargetSet


def restrict_to_households(frame: ObservationFrame, household_ids: pd.Index) -> dict:
    """Tax-unit and person tables of the given households only."""
    return {
        entity: table[table["household_id"].isin(household_ids)].reset_index(drop=True)
        for entity, table in frame.tables.items()
        if entity != "household"
    }


def income_bracket_comparison(scaffold: pd.DataFrame, sample: pd.DataFrame) -> pd.DataFrame:
    """Records and weighted households (millions) by income bracket, scaffold vs sample."""

    def summarise(households: pd.DataFrame, prefix: str) -> pd.DataFrame:
        grouped = households.groupby("income_bracket")
        return pd.DataFrame(
            {
                f"{prefix}_records": grouped.size(),
                f"{prefix}_weighted_m": grouped["household_weight"].sum() / 1e6,
            }
        )

    table = summarise(scaffold, "scaffold").join(summarise(sample, "seed"), how="outer")
    order = [label for label in INCOME_BRACKET_LABELS if label in table.index]
    return table.loc[order].fillna(0).rename_axis("income_bracket").reset_index()


def build_seed(
    scaffold: ObservationFrame,
    households: int,
    seed: int,
    state_fips: int | None = None,
) -> tuple[ObservationFrame, dict[str, Any]]:
    """Canonical, sampled seed; restricted to one state (national weights kept) when asked.

    The national sample is drawn first and then restricted, so ``national|<state>`` holds
    exactly the ``national|US`` records of that state with their national weights.
    """
    canonical = canonical_households(scaffold)
    sample, report = stratified_sample(canonical, SamplingDesign(households=households, seed=seed))
    if state_fips is not None:
        sample = sample[sample["state_fips"] == state_fips]
        if sample.empty:
            raise ValueError(f"national sample has no households in state FIPS {state_fips}")
        report["restricted_to_state_fips"] = state_fips
        report["households_in_state"] = int(len(sample))
        canonical = canonical[canonical["state_fips"] == state_fips]
    report["by_income_bracket"] = income_bracket_comparison(canonical, sample).to_dict("records")
    return seed_from_sample(scaffold, sample, report), report


def seed_from_sample(
    scaffold: ObservationFrame, sample: pd.DataFrame, report: dict[str, Any]
) -> ObservationFrame:
    """The sampled households with their tax units and persons, validated."""
    tables = {"household": sample.reset_index(drop=True)}
    tables.update(restrict_to_households(scaffold, pd.Index(sample["household_id"])))
    seed_frame = ObservationFrame(
        source=f"seed<{scaffold.source}>",
        year=scaffold.year,
        tables=tables,
        links=scaffold.links,
        provenance={**scaffold.provenance, "sampling": report},
    )
    seed_frame.validate()
    return seed_frame


def build_local_seed(
    scaffold: ObservationFrame,
    state: str,
    state_fips: int,
    households: int,
    seed: int,
    target_set: TargetSet,
    min_support: int,
) -> tuple[ObservationFrame, dict[str, Any]]:
    """A local shard's seed: the state's own records sampled to ``households``, plus
    households borrowed from similar states where a state target lacks support."""
    canonical = canonical_households(scaffold)
    own = canonical[canonical["state_fips"] == state_fips]
    if own.empty:
        raise ValueError(f"scaffold {scaffold.source} has no households in {state}")
    sample, report = stratified_sample(own, SamplingDesign(households=households, seed=seed))
    units = scaffold.tables["tax_unit"][["tax_unit_id", "household_id"]].copy()
    units["income"] = tax_unit_income(scaffold.tables["tax_unit"], scaffold.tables["person"])
    state_targets = TargetSet(tuple(t for t in target_set if t.geography == state))
    borrowed, support = borrow_for_support(
        sample,
        canonical,
        units,
        state,
        support_needs(state_targets),
        similar_states(target_set, state),
        min_support,
        seed,
    )
    sample = pd.concat([sample.assign(borrowed_from_state_fips=0), borrowed], ignore_index=True)
    report["state"] = state
    report["households_borrowed"] = int(len(borrowed))
    report["support"] = support.to_dict("records")
    report["by_income_bracket"] = income_bracket_comparison(own, sample).to_dict("records")
    return seed_from_sample(scaffold, sample, report), report
