"""Uprating factors come from PolicyEngine's own parameters, chained back with CPI-U."""

from __future__ import annotations

import pytest

from microplex_assets.uprating import (
    CPI_U,
    FALLBACK_INDEX,
    first_year_with_value,
    index_value,
    soi_national_totals,
    uprating_factor,
    uprating_factors,
    uprating_index,
)

WAGES = "calibration.gov.irs.soi.employment_income_per_capita"


def _value(system, path: str, year: int) -> float:
    return float(system.parameters.get_child(path)(f"{year}-01-01"))


def test_same_year_factor_is_one(pe_system):
    assert uprating_factor(pe_system, WAGES, 2014, 2014) == 1.0
    assert uprating_factor(pe_system, CPI_U, 2024, 2024) == 1.0


def test_wage_factors_2014_to_2024_exceed_one(pe_system):
    index, factors = uprating_factors(pe_system, "employment_income_before_lsr", [2012, 2014], 2024)
    assert index.path == WAGES
    assert factors[2014] > 1 and factors[2012] > factors[2014]


def test_chained_factor_matches_hand_formula(pe_system):
    first = first_year_with_value(pe_system, WAGES)
    assert first > 2014  # the SOI series starts after the CPS years: the chain is needed
    assert pe_system.parameters.get_child(WAGES)("2014-01-01") is None
    expected = (
        _value(pe_system, WAGES, 2024)
        / _value(pe_system, WAGES, first)
        * _value(pe_system, CPI_U, first)
        / _value(pe_system, CPI_U, 2014)
    )
    assert uprating_factor(pe_system, WAGES, 2014, 2024) == pytest.approx(expected, rel=1e-12)
    # Both ends before the series starts: pure CPI-U.
    cpi_only = _value(pe_system, CPI_U, 2014) / _value(pe_system, CPI_U, 2012)
    assert uprating_factor(pe_system, WAGES, 2012, 2014) == pytest.approx(cpi_only, rel=1e-12)


def test_index_value_extends_backwards_with_cpi(pe_system):
    first = first_year_with_value(pe_system, WAGES)
    level = index_value(pe_system, WAGES, 2013)
    expected = (
        _value(pe_system, WAGES, first)
        * _value(pe_system, CPI_U, 2013)
        / _value(pe_system, CPI_U, first)
    )
    assert level == pytest.approx(expected, rel=1e-12)


def test_uprating_index_sources(pe_system):
    declared = uprating_index(pe_system, "taxable_interest_income")
    assert declared.reason == "variable.uprating"
    assert declared.path == pe_system.variables["taxable_interest_income"].uprating
    fallback = uprating_index(pe_system, "employment_income")
    assert pe_system.variables["employment_income"].uprating is None
    assert (fallback.path, fallback.reason) == (FALLBACK_INDEX["employment_income"], "fallback")
    assert uprating_index(pe_system, "self_employment_income").path.endswith(
        "self_employment_income_per_capita"
    )
    assert uprating_index(pe_system, "age").reason == "cpi_u default"


class _FakeParameters:
    """Parameters whose values are given per year (None where undefined)."""

    def __init__(self, series: dict[str, dict[int, float]]):
        self.series = series

    def get_child(self, path: str):
        values = self.series[path]
        return lambda instant: values.get(int(instant[:4]))


class _FakeSystem:
    def __init__(self, series: dict[str, dict[int, float]]):
        self.parameters = _FakeParameters(series)
        self.variables: dict = {}


def test_sign_flip_and_gap_raise():
    system = _FakeSystem(
        {
            CPI_U: {2012: 100.0, 2013: 101.0, 2014: 102.0, 2015: 103.0, 2016: 104.0},
            "flip": {2015: -10.0, 2016: 5.0},
            "gap": {2014: 1.0, 2016: 2.0},
        }
    )
    assert uprating_factor(system, "flip", 2012, 2015) == pytest.approx(103.0 / 100.0)
    with pytest.raises(ValueError, match="'flip' gives factor"):
        uprating_factor(system, "flip", 2012, 2016)
    with pytest.raises(ValueError, match="'gap' has a gap"):
        uprating_factor(system, "gap", 2015, 2016)


def test_unemployment_compensation_follows_the_soi_totals_not_the_stale_index(pe_system):
    """policyengine-us 2.68's per-capita UC index keeps 2021's pandemic level; the SOI's
    published totals ($27.2bn 2015, $30.9bn 2023) give a factor near inflation instead."""
    index = uprating_index(pe_system, "unemployment_compensation")
    assert index.reason == "override: SOI totals"
    totals = soi_national_totals("unemployment_compensation")
    assert totals[2015] == pytest.approx(27_225_383_000)
    assert totals[2023] == pytest.approx(30_939_046_000)
    cpi = {y: _value(pe_system, CPI_U, y) for y in (2014, 2015, 2023, 2024)}
    expected = totals[2023] * cpi[2024] / cpi[2023] / (totals[2015] * cpi[2014] / cpi[2015])
    factor = uprating_factor(pe_system, index.path, 2014, 2024)
    assert factor == pytest.approx(expected, rel=1e-12)
    assert 1.0 < factor < 1.5  # the PolicyEngine index gave 7.5
    stale = uprating_factor(pe_system, pe_system.variables["unemployment_compensation"].uprating,
                            2014, 2024)  # fmt: skip
    assert stale > 5
    # a target year inside the series reads its own total; one after it is carried with CPI-U
    assert uprating_factor(pe_system, index.path, 2022, 2023) == pytest.approx(
        totals[2023] / totals[2022]
    )
