"""The PolicyEngine entity bundle: the contract between stage 6 and publication.

A bundle holds one table per PolicyEngine-US entity. Each table has its
``<entity>_id`` column; the person table also has one ``<entity>_id`` column per
group entity (the link written to H5 as ``person_<entity>_id``). Every other column
is named after the PolicyEngine variable it holds, on that variable's entity;
columns that are not PolicyEngine input variables (diagnostics such as reported
benefits) may be present and are left out at export.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

GROUP_ENTITIES: tuple[str, ...] = ("household", "tax_unit", "spm_unit", "family", "marital_unit")
ENTITIES: tuple[str, ...] = ("person", *GROUP_ENTITIES)
# The id and membership arrays policyengine-core needs to build the entities.
ID_VARIABLES: tuple[str, ...] = (
    "person_id",
    *(f"{e}_id" for e in GROUP_ENTITIES),
    *(f"person_{e}_id" for e in GROUP_ENTITIES),
)


@dataclass
class EntityBundle:
    """Six entity tables keyed by entity name, plus the dataset year."""

    year: int
    tables: dict[str, pd.DataFrame]
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def person(self) -> pd.DataFrame:
        return self.tables["person"]

    @property
    def household(self) -> pd.DataFrame:
        return self.tables["household"]

    def counts(self) -> dict[str, int]:
        return {entity: int(len(self.tables[entity])) for entity in ENTITIES}
