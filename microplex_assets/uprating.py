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
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

CPI_U = "gov.bls.cpi.cpi_u"

# Variables PolicyEngine gives no ``uprating`` attribute (aggregates of an input that
# carries the index), mapped to the index of the input they sum.
FALLBACK_INDEX: dict[str, str] = {
    "employment_income": "calibration.gov.irs.soi.employment_income_per_capita",
    "self_employment_income": "calibration.gov.irs.soi.self_employment_income_per_capita",
    "long_term_capital_gains": "calibration.gov.irs.soi.long_term_capital_gains_per_capita",
}
# Indices policyengine-us 2.68 declares that the IRS's own published totals contradict,
# replaced by those totals (SOI Table 1.4, all returns; the carried
# ``targets/data/soi_targets.csv``). ``calibration.gov.irs.soi.unemployment_compensation_
# per_capita`` carries 2021's pandemic level forward ($630 per capita in 2024 against $81 in
# 2019), so it multiplied the CPS's 2014 amounts by 7.5: $283bn of unemployment
# compensation on a 3,000-household sample where SOI counts $30.2bn (2022) and $30.9bn
# (2023). Years after the last published total are carried forward with CPI-U.
SOI_TOTAL = "irs_soi_table_1_4_total:"
INDEX_OVERRIDES: dict[str, str] = {
    "unemployment_compensation": SOI_TOTAL + "unemployment_compensation",
}
SOI_TOTALS_FILE = Path(__file__).parent / "targets" / "data" / "soi_targets.csv"
# Earliest and latest year searched for an index's first value.
_SEARCH_YEARS = range(1990, 2101)


@dataclass(frozen=True)
class UpratingIndex:
    """The parameter a variable is uprated with, and why that one."""

    variable: str
    path: str
    reason: str  # "variable.uprating", "fallback", "cpi_u default" or "override: SOI totals"


@cache
def soi_national_totals(variable: str) -> dict[int, float]:
    """Year -> the SOI all-returns national amount of ``variable`` (carried table)."""
    table = pd.read_csv(SOI_TOTALS_FILE)
    rows = table[
        (table["Variable"] == variable)
        & (table["Filing status"] == "All")
        & (table["AGI lower bound"] == -math.inf)
        & (table["AGI upper bound"] == math.inf)
        & ~table["Count"]
        & ~table["Taxable only"]
        & table["Full population"]
    ]
    if rows.empty:
        raise ValueError(f"{SOI_TOTALS_FILE.name}: no national amount of '{variable}'")
    return {int(y): float(v) for y, v in zip(rows["Year"], rows["Value"], strict=True)}


def parameter_value(system: Any, path: str, year: int) -> float | None:
    """Value of parameter ``path`` on 1 January of ``year`` (None where it has none); an
    ``INDEX_OVERRIDES`` path reads the SOI total of that year."""
    if path.startswith(SOI_TOTAL):
        return soi_national_totals(path.removeprefix(SOI_TOTAL)).get(year)
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
    if year > first and path.startswith(SOI_TOTAL):
        # published totals stop (or skip years): carry the latest earlier one with CPI-U
        latest = max(y for y in soi_national_totals(path.removeprefix(SOI_TOTAL)) if y < year)
        cpi_year, cpi_latest = (parameter_value(system, CPI_U, y) for y in (year, latest))
        anchor = parameter_value(system, path, latest)
        assert anchor is not None and cpi_year is not None and cpi_latest is not None
        return anchor * cpi_year / cpi_latest
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
    """The index PolicyEngine uprates ``variable`` with (fallback or CPI-U if it has none),
    unless the IRS's published totals override it (``INDEX_OVERRIDES``)."""
    if variable in INDEX_OVERRIDES:
        return UpratingIndex(variable, INDEX_OVERRIDES[variable], "override: SOI totals")
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
