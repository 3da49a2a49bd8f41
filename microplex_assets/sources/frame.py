"""ObservationFrame: one validated source, as entity tables plus the links between them.

Every source loader (CPS, PUF, ACS, ...) returns this one shape so that the
planning and seed stages never need to know which file format a source came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd


class SourceFormatError(ValueError):
    """A source file is missing, malformed or inconsistent; the message names file and column."""


@dataclass
class ObservationFrame:
    """Entity tables of one source with their links and provenance.

    tables: entity name -> table; each table has a unique ``<entity>_id`` column.
    links: child entity -> list of parent entities it points to through ``<parent>_id``.
    provenance: file, package version, SHA256, kind (``real`` or ``synthetic``), notes.
    """

    source: str
    year: int
    tables: dict[str, pd.DataFrame]
    links: dict[str, list[str]]
    provenance: dict[str, Any] = field(default_factory=dict)

    def link_report(self) -> dict[str, dict[str, int]]:
        """Count, for every link, the child rows whose parent id does not resolve."""
        report: dict[str, dict[str, int]] = {}
        for child, parents in self.links.items():
            for parent in parents:
                key = f"{parent}_id"
                known = set(self.tables[parent][key].to_numpy())
                column = self.tables[child][key]
                report[f"{child}->{parent}"] = {
                    "rows": int(len(column)),
                    "unresolved": int((~column.isin(known)).sum()),
                }
        return report

    def validate(self) -> None:
        """Raise SourceFormatError on duplicate ids or links that do not resolve."""
        for entity, table in self.tables.items():
            key = f"{entity}_id"
            if key not in table.columns:
                raise SourceFormatError(f"{self.source}: table '{entity}' lacks id column '{key}'")
            duplicated = int(table[key].duplicated().sum())
            if duplicated:
                raise SourceFormatError(
                    f"{self.source}: table '{entity}' has {duplicated} duplicate '{key}' values"
                )
        for link, counts in self.link_report().items():
            if counts["unresolved"]:
                raise SourceFormatError(
                    f"{self.source}: link {link} has {counts['unresolved']} of "
                    f"{counts['rows']} rows whose parent id does not exist"
                )

    def coverage(self) -> pd.DataFrame:
        """Variable coverage: per entity table and column, share of rows non-null and nonzero."""
        rows = []
        for entity, table in self.tables.items():
            for column in table.columns:
                values = table[column]
                numeric = pd.api.types.is_numeric_dtype(values)
                rows.append(
                    {
                        "entity": entity,
                        "variable": column,
                        "non_null_share": float(values.notna().mean()) if len(values) else 0.0,
                        "nonzero_share": float((values != 0).mean())
                        if numeric and len(values)
                        else float("nan"),
                    }
                )
        return pd.DataFrame(rows)
