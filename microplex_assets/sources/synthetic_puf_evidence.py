"""Evidence that the synthetic donor reproduces the SOI table: SOI vs weighted synthetic
value per AGI band and variable, in SOI-year dollars (shown on the donor asset)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.sources.frame import ObservationFrame
from microplex_assets.sources.soi_bands import (
    ALL,
    ITEMIZED_SOI,
    STATUS_MARS,
    band_index,
    band_lows,
    banded,
    read_soi_table,
    soi_facts,
)
from microplex_assets.sources.tax_records import AGI, FILING_STATUS, TAX_UNIT_TABLE, WEIGHT
from microplex_assets.targets.common import band_label
from microplex_assets.targets.soi import SOI_VARIABLES


def _measures(t: pd.DataFrame) -> dict[str, tuple[tuple[str, ...], pd.Series, pd.Series]]:
    """SOI column(s) -> (SOI columns summed, per-return amount, per-return count)."""

    def pos(x: pd.Series) -> pd.Series:
        return x.clip(lower=0.0)

    def neg(x: pd.Series) -> pd.Series:
        return (-x).clip(lower=0.0)

    def has(x: pd.Series) -> pd.Series:
        return (x > 0).astype(float)

    net_gain = t["long_term_capital_gains_before_response"] + t["short_term_capital_gains"]
    ordinary = t["qualified_dividend_income"] + t["non_qualified_dividend_income"]
    gifts = t["charitable_cash_donations"] + t["charitable_non_cash_donations"]
    partnership, s_corp = t["partnership_income"], t["s_corp_income"]
    simple = {
        "employment_income": t["employment_income_before_lsr"],
        "taxable_interest_income": t["taxable_interest_income"],
        "exempt_interest": t["tax_exempt_interest_income"],
        "taxable_pension_income": t["taxable_private_pension_income"],
        "ira_distributions": t["taxable_ira_distributions"],
        "unemployment_compensation": t["unemployment_compensation"],
        "ordinary_dividends": ordinary,
        "qualified_dividends": t["qualified_dividend_income"],
        "business_net_profits": pos(t["self_employment_income_before_lsr"]),
        "business_net_losses": neg(t["self_employment_income_before_lsr"]),
        "s_corporation_net_income": pos(s_corp),
        "s_corporation_net_losses": neg(s_corp),
        "rent_and_royalty_net_income": pos(t["rental_income"]),
        "rent_and_royalty_net_losses": neg(t["rental_income"]),
        "estate_income": pos(t["estate_income"]),
        "estate_losses": neg(t["estate_income"]),
        "capital_gains_gross": pos(net_gain),  # Schedule D: distributions are apart
        "capital_gains_losses": neg(net_gain),
        "capital_gains_distributions": t["non_sch_d_capital_gains"],
        "charitable_contributions_deductions": gifts,
        "itemized_real_estate_tax_deductions": t["real_estate_taxes"],
        "mortgage_interest_deductions": t["home_mortgage_interest"],
        "medical_expense_deductions_uncapped": t["other_medical_expenses"],
    }
    out = {name: ((name,), x, has(x)) for name, x in simple.items()}
    for name, p, s in (
        ("partnership_and_s_corp_income", pos(partnership), pos(s_corp)),
        ("partnership_and_s_corp_losses", neg(partnership), neg(s_corp)),
    ):
        out[name] = ((name,), p + s, has(p) + has(s))
    return out


def _row(band: Any, status: str, variable: str, measure: str, soi: float, synth: float) -> dict:
    error = (synth - soi) / abs(soi) if soi else (0.0 if synth == 0 else math.inf)
    return {
        "band": band_label(band.low, band.high),
        "agi_low": band.low,
        "agi_high": band.high,
        "filing_status": status,
        "variable": variable,
        "measure": measure,
        "soi": soi,
        "synthetic": synth,
        "relative_error": error,
    }


def _deflated(frame: ObservationFrame) -> pd.DataFrame:
    """The donor table in SOI-year dollars (undoing recorded uprating factors)."""
    table = frame.tables[TAX_UNIT_TABLE].copy()
    for column, factor in frame.provenance.get("uprating", {}).get("factors", {}).items():
        table[column] = table[column] / factor
    return table


def soi_reproduction(
    frame: ObservationFrame, soi_year: int | None = None, soi_path: Path | None = None
) -> pd.DataFrame:
    """SOI value vs weighted synthetic value per AGI band x variable (x filing status for
    return counts and AGI), in SOI-year dollars; the evidence the donor asset shows."""
    facts = soi_facts(read_soi_table(soi_path)[0])
    soi_year = int(soi_year if soi_year is not None else frame.provenance["soi_year"])
    table = _deflated(frame)
    weight, agi = table[WEIGHT].to_numpy(), table[AGI].to_numpy()
    rows = []
    for status, mars in {ALL: 0, **STATUS_MARS}.items():
        in_status = np.ones(len(table), bool) if not mars else table[FILING_STATUS].eq(mars)
        count = banded(facts, soi_year, "count", status)
        money = banded(facts, soi_year, "adjusted_gross_income", status)
        index = band_index(agi, band_lows(count))
        for i, band in enumerate(count.itertuples()):
            held = weight * ((index == i) & in_status)
            rows.append(_row(band, status, "count", "count", band.count, held.sum()))
            rows.append(_row(band, status, AGI, "amount", money["amount"][i], (held * agi).sum()))
    for name, (columns, amount, holders) in _measures(table).items():
        bands = sum(banded(facts, soi_year, c).set_index(["low", "high"]) for c in columns)
        bands = bands.reset_index()
        index = band_index(agi, band_lows(bands))
        if columns[0] in ITEMIZED_SOI:
            index = np.where(agi >= 1.0, index, -1)
        for i, band in enumerate(bands.itertuples()):
            w = weight * (index == i)
            rows.append(_row(band, ALL, name, "count", band.count, (w * holders).sum()))
            rows.append(_row(band, ALL, name, "amount", band.amount, (w * amount).sum()))
    out = pd.DataFrame(rows)
    out["pe_variable"] = out["variable"].map(
        lambda v: SOI_VARIABLES[v.split("+")[0]].pe if v.split("+")[0] in SOI_VARIABLES else ""
    )
    return out


def reproduction_summary(reproduction: pd.DataFrame) -> pd.DataFrame:
    """Per variable and measure: max |relative error| over bands, SOI and synthetic totals."""
    finite = reproduction.assign(abs_error=reproduction["relative_error"].abs())
    return (
        finite.groupby(["variable", "measure"], sort=False)
        .agg(
            max_abs_relative_error=("abs_error", "max"),
            soi_total=("soi", "sum"),
            synthetic_total=("synthetic", "sum"),
            bands=("band", "nunique"),
        )
        .reset_index()
    )
