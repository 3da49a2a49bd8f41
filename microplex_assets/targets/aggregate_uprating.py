"""Uprating an aggregate fact (a national or state total) from its year to the build year.

``microplex_assets.uprating`` gives the index PolicyEngine uprates a *record's*
amount with. Most of those are per-capita series (``<national total>_per_capita``),
because the weights grow with population separately. A target is a *total*, so it must
grow with the total: the national series itself, or a per-person index (CPI-U) times
population growth. Counts grow with population. Either way the index is PolicyEngine's
own parameter, and the path and factor go into every target's ``source``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from microplex_assets import uprating as record_uprating

POPULATION = "calibration.gov.census.populations.total"
CBO_AGI = "calibration.gov.cbo.income_by_source.adjusted_gross_income"
CBO_INCOME_TAX = "calibration.gov.cbo.income_tax"
CPI_U = record_uprating.CPI_U
_PER_CAPITA = "_per_capita"


@dataclass(frozen=True)
class AggregateIndex:
    """A PolicyEngine parameter a total grows with; ``per_capita`` ones are times population."""

    path: str
    per_capita: bool
    reason: str

    @property
    def label(self) -> str:
        return f"{self.path} x {POPULATION}" if self.per_capita else self.path


POPULATION_INDEX = AggregateIndex(POPULATION, False, "population growth (counts)")


def total_index(path: str, reason: str) -> AggregateIndex:
    """A national-total series used as it is."""
    return AggregateIndex(path, False, reason)


def variable_index(system: Any, variable: str) -> AggregateIndex:
    """The aggregate counterpart of the index PolicyEngine uprates ``variable`` with."""
    index = record_uprating.uprating_index(system, variable)
    if index.path.endswith(_PER_CAPITA):
        total = index.path[: -len(_PER_CAPITA)]
        if _has_parameter(system, total):
            return AggregateIndex(total, False, f"national total behind {variable}'s index")
    return AggregateIndex(index.path, True, f"{variable}'s per-person index x population")


def _has_parameter(system: Any, path: str) -> bool:
    try:
        system.parameters.get_child(path)
    except Exception:
        return False
    return True


class Uprater:
    """Factors from source years to one build year, cached (thousands of rows share few)."""

    def __init__(self, system: Any, year: int) -> None:
        self.system = system
        self.year = int(year)
        self._cache: dict[tuple[str, bool, int], float] = {}

    def factor(self, index: AggregateIndex, from_year: int) -> float:
        key = (index.path, index.per_capita, int(from_year))
        if key not in self._cache:
            factor = record_uprating.uprating_factor(self.system, index.path, key[2], self.year)
            if index.per_capita:
                factor *= record_uprating.uprating_factor(
                    self.system, POPULATION, key[2], self.year
                )
            self._cache[key] = factor
        return self._cache[key]

    def record(self, index: AggregateIndex, from_year: int) -> dict[str, Any]:
        """The ``source`` keys that say how a value was brought to the build year."""
        factor = self.factor(index, from_year)
        return {
            "uprating_index": index.label,
            "uprating_factor": factor,
            "uprating_method": "none (fact year is the build year)"
            if int(from_year) == self.year
            else index.reason,
        }
