"""A bundle with a weight vector put on its households (shared by stages 8 and 9)."""

from __future__ import annotations

import pandas as pd

from microplex_assets.entities.bundle import EntityBundle


def weighted_bundle(bundle: EntityBundle, weights: pd.Series) -> EntityBundle:
    """The bundle with household_weight replaced by ``weights`` (by household_id)."""
    household = bundle.household.copy()
    household["household_weight"] = household["household_id"].map(weights).to_numpy()
    if household["household_weight"].isna().any():
        missing = int(household["household_weight"].isna().sum())
        raise ValueError(f"weights lack {missing} household ids of the entity bundle")
    return EntityBundle(
        year=bundle.year, tables={**bundle.tables, "household": household}, notes=bundle.notes
    )
