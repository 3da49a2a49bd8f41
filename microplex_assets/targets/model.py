"""What a calibration target is: the contract between the registry, the matrix and the gates.

A target is a published fact (a number with a source) plus exactly enough semantics to
compute the same quantity from a PolicyEngine simulation:

    value  ~=  sum over records r of ``entity`` in ``geography`` that pass every filter
               and the ``scope`` rule  of  (variable(r) if aggregation == "sum" else 1)

Scope rules (who is in the population the fact describes):
- ``filer``: only tax units that file (``tax_unit_is_filer``); IRS SOI facts are filer-only.
- ``recipient``: only records with ``variable > 0`` (recipient counts: SSI, SNAP, EITC).
- ``population``, ``household``, ``tax_unit``, ``spm_unit``: every record of the entity.

The name is unique and stable; ``group`` is the unit a held-out split moves whole;
``family`` is what protected-family gates aggregate over.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

AGGREGATIONS = ("sum", "count")
SCOPES = ("filer", "recipient", "population", "household", "tax_unit", "spm_unit")
ENTITIES = ("person", "tax_unit", "spm_unit", "family", "household", "marital_unit")


@dataclass(frozen=True)
class TargetFilter:
    """Keep records whose ``variable`` lies in [low, high) (and is nonzero when ``nonzero``),
    or whose enum value is one of ``equals`` (PolicyEngine enum names, e.g. JOINT).

    Filter variables are evaluated by PolicyEngine and mapped to the target's entity
    (``adjusted_gross_income`` is a tax-unit variable; for a person-level target each
    person gets their tax unit's AGI). ``nonzero`` expresses SOI's "returns with X"
    counts: ``TargetFilter("employment_income", nonzero=True)``.
    """

    variable: str
    low: float = -math.inf
    high: float = math.inf
    equals: tuple[str, ...] | None = None
    nonzero: bool = False

    def describe(self) -> str:
        if self.equals is not None:
            return f"{self.variable} in {{{', '.join(self.equals)}}}"
        text = f"{self.variable} in [{self.low:g}, {self.high:g})"
        return text + " and != 0" if self.nonzero else text


@dataclass(frozen=True)
class Target:
    """One calibration fact with the semantics to compute it from a simulation."""

    name: str
    value: float
    period: int  # the build year the value is resolved to
    variable: str  # PolicyEngine variable summed (or tested > 0 for recipient counts)
    aggregation: str  # "sum" | "count"
    entity: str  # PolicyEngine entity whose records are summed or counted
    scope: str  # see SCOPES
    geography: str  # "US", a state postal code, or a district key ("CA-12")
    family: str  # wages, ssi, snap, capital_gains, population, ...
    group: str  # held-out unit: a split moves whole groups, never rows inside one
    source: dict[str, Any]  # agency, table, year (of the fact), file or parameter, uprating
    filters: tuple[TargetFilter, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(
                f"target '{self.name}': aggregation '{self.aggregation}' not in {AGGREGATIONS}"
            )
        if self.scope not in SCOPES:
            raise ValueError(f"target '{self.name}': scope '{self.scope}' not in {SCOPES}")
        if self.entity not in ENTITIES:
            raise ValueError(f"target '{self.name}': entity '{self.entity}' not in {ENTITIES}")
        if not math.isfinite(self.value):
            raise ValueError(f"target '{self.name}': value {self.value!r} is not finite")
        for key in ("agency", "table", "year"):
            if key not in self.source:
                raise ValueError(f"target '{self.name}': source lacks '{key}'")

    @property
    def is_national(self) -> bool:
        return self.geography == "US"

    @property
    def geography_level(self) -> str:
        """national, state or district (``CA-12``): the level the count normalisation uses."""
        if self.geography == "US":
            return "national"
        return "district" if "-" in self.geography else "state"

    def as_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["filters"] = [asdict(f) for f in self.filters]
        return record


@dataclass(frozen=True)
class TargetSet:
    """The resolved targets of one build, content-hashed so every score names what it used."""

    targets: tuple[Target, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        duplicates = sorted({t.name for t in self.targets if t.name in seen or seen.add(t.name)})
        if duplicates:
            raise ValueError(f"duplicate target names: {duplicates[:10]}")

    def __iter__(self) -> Iterator[Target]:
        return iter(self.targets)

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.targets]

    @property
    def content_hash(self) -> str:
        """SHA256 of the canonical JSON of every target (order-independent)."""
        records = sorted((t.as_dict() for t in self.targets), key=lambda r: r["name"])
        payload = json.dumps(records, sort_keys=True, default=str).encode()
        return hashlib.sha256(payload).hexdigest()

    def subset(self, names: Iterable[str]) -> TargetSet:
        keep = set(names)
        return TargetSet(tuple(t for t in self.targets if t.name in keep))

    def to_frame(self) -> Any:
        import pandas as pd

        rows = []
        for t in self.targets:
            rows.append(
                {
                    "name": t.name,
                    "value": t.value,
                    "period": t.period,
                    "variable": t.variable,
                    "aggregation": t.aggregation,
                    "entity": t.entity,
                    "scope": t.scope,
                    "geography": t.geography,
                    "family": t.family,
                    "group": t.group,
                    "filters": "; ".join(f.describe() for f in t.filters),
                    "agency": t.source.get("agency"),
                    "table": t.source.get("table"),
                    "source_year": t.source.get("year"),
                }
            )
        return pd.DataFrame(rows)
