"""Uprating factors taken from PolicyEngine-US's own parameters.

A record's amount is uprated with these by the source readers (``sources``); a target's
total by ``targets.aggregate_uprating``, which builds on them. Neither package owns this
module, so neither imports the other for it.

Source amounts are in their survey's tax year; the dataset is for the build year. Using
the index PolicyEngine itself attaches to each variable (``Variable.uprating``) keeps our
uprating identical to what PolicyEngine would do when it projects a dataset forward.

Most of those indices (the ``calibration.gov.irs.soi.*_per_capita`` series) start in
2015, while the source years are 2012-2014. Before an index's first year we extend it
backwards with CPI-U, so the factor is

    factor(from, to) = I(to) / I(from),
    I(y) = P(y)                               for y >= first year of P,
    I(y) = P(first) * CPI-U(y) / CPI-U(first)  before it.

For ``from`` < first <= ``to`` this equals P(to)/P(first) * CPI-U(first)/CPI-U(from).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

CPI_U = "gov.bls.cpi.cpi_u"

# Variables PolicyEngine gives no ``uprating`` attribute (aggregates of an input that
# carries the index), mapped to the index of the input they sum.
FALLBACK_INDEX: dict[str, str] = {
    "employment_income": "calibration.gov.irs.soi.employment_income_per_capita",
    "self_employment_income": "calibration.gov.irs.soi.self_employment_income_per_capita",
    "long_term_capital_gains": "calibration.gov.irs.soi.long_term_capital_gains_per_capita",
}
# Earliest and latest year searched for an index's first value.
_SEARCH_YEARS = range(1990, 2101)


@dataclass(frozen=True)
class UpratingIndex:
    """The parameter a variable is uprated with, and why that one."""

    variable: str
    path: str
    reason: str  # "variable.uprating", "fallback" or "cpi_u default"


def parameter_value(system: Any, path: str, year: int) -> float | None:
    """Value of parameter ``path`` on 1 January of ``year`` (None where it has none)."""
    value = system.parameters.get_child(path)(f"{year}-01-01")
    return None if value is None else float(value)


def first_year_with_value(system: Any, path: str) -> int:
    """First calendar year whose 1 January value of ``path`` is defined."""
    for year in _SEARCH_YEARS:
        if parameter_value(system, path, year) is not None:
            return year
    raise ValueError(f"uprating index '{path}' has no value in {_SEARCH_YEARS}")


def index_value(system: Any, path: str, year: int) -> float:
    """Index level in ``year``, extended backwards with CPI-U before its first value."""
    value = parameter_value(system, path, year)
    if value is not None:
        return value
    first = first_year_with_value(system, path)
    if year > first:
        raise ValueError(f"uprating index '{path}' has a gap: no value in {year}")
    cpi_year = parameter_value(system, CPI_U, year)
    cpi_first = parameter_value(system, CPI_U, first)
    if cpi_year is None or cpi_first is None:
        raise ValueError(f"CPI-U ('{CPI_U}') has no value in {year} or {first}")
    anchor = parameter_value(system, path, first)
    assert anchor is not None
    return anchor * cpi_year / cpi_first


def uprating_factor(system: Any, path: str, from_year: int, to_year: int) -> float:
    """Multiplier taking an amount from ``from_year`` to ``to_year`` with index ``path``.

    Raises when the factor is not a finite positive number: an index that changes sign
    (possible for per-capita net farm income) would flip every amount's sign.
    """
    if from_year == to_year:
        return 1.0
    factor = index_value(system, path, to_year) / index_value(system, path, from_year)
    if not math.isfinite(factor) or factor <= 0:
        raise ValueError(
            f"uprating index '{path}' gives factor {factor!r} from {from_year} to {to_year}"
        )
    return factor


def uprating_index(system: Any, variable: str) -> UpratingIndex:
    """The index PolicyEngine uprates ``variable`` with (fallback or CPI-U if it has none)."""
    declared = getattr(system.variables.get(variable), "uprating", None)
    if declared:
        return UpratingIndex(variable, declared, "variable.uprating")
    if variable in FALLBACK_INDEX:
        return UpratingIndex(variable, FALLBACK_INDEX[variable], "fallback")
    return UpratingIndex(variable, CPI_U, "cpi_u default")


def uprating_factors(
    system: Any, variable: str, source_years: list[int], year: int
) -> tuple[UpratingIndex, dict[int, float]]:
    """Index of ``variable`` and its factor from each source year to ``year``."""
    index = uprating_index(system, variable)
    return index, {
        int(source): uprating_factor(system, index.path, int(source), year)
        for source in source_years
    }


def uprate_columns(
    table: Any, variables: list[str], system: Any, from_year: int, to_year: int
) -> dict[str, Any]:
    """Multiply each column of ``table`` (in place) by PolicyEngine's factor for that
    variable from ``from_year`` to ``to_year``; the provenance entry of what was done."""
    factors: dict[str, Any] = {}
    for variable in variables:
        index, by_year = uprating_factors(system, variable, [from_year], to_year)
        table[variable] = table[variable] * by_year[from_year]
        factors[variable] = {
            "index": index.path,
            "index_reason": index.reason,
            "factor": round(by_year[from_year], 6),
        }
    return {"status": "uprated", "from_year": from_year, "to_year": to_year, "factors": factors}
