"""The carried IRS SOI table (Publication 1304) read as AGI-band facts.

Shared by the synthetic PUF-like donor (which reproduces these facts) and its evidence
(which compares the donor with them), so both read the bands one way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from microplex_assets.sources.frame import SourceFormatError
from microplex_assets.targets.carried import (
    DATA_DIR,
    CarriedTableError,
    carried_table,
    read_carried_csv,
)
from microplex_assets.targets.soi import SOI_COLUMNS, TABLE_PREFERENCE

SOI_FILE = "soi_targets.csv"
# SOI filing-status rows (Table 1.2) -> MARS. SOI combines joint filers and surviving
# spouses (about 0.1% of returns); all become 2.
STATUS_MARS: dict[str, int] = {
    "Single": 1,
    "Married Filing Jointly/Surviving Spouse": 2,
    "Married Filing Separately": 3,
    "Head of Household": 4,
}
ALL = "All"
SOI_NEEDED: tuple[str, ...] = (
    "count", "adjusted_gross_income", "employment_income", "taxable_interest_income",
    "exempt_interest", "ordinary_dividends", "qualified_dividends", "capital_gains_gross",
    "capital_gains_losses", "capital_gains_distributions", "business_net_profits",
    "business_net_losses", "partnership_and_s_corp_income", "partnership_and_s_corp_losses",
    "s_corporation_net_income", "s_corporation_net_losses", "rent_and_royalty_net_income",
    "rent_and_royalty_net_losses", "taxable_pension_income", "ira_distributions",
    "unemployment_compensation", "charitable_contributions_deductions",
    "itemized_real_estate_tax_deductions", "mortgage_interest_deductions",
    "medical_expense_deductions_uncapped",
)  # fmt: skip
ITEMIZED_SOI = SOI_NEEDED[-4:]  # Table 2.1 (itemizers' bands)


def read_soi_table(path: Path | None = None) -> tuple[pd.DataFrame, Path]:
    """The SOI table (hash-checked against SOURCES.json when it is the carried copy).

    A missing or malformed file raises SourceFormatError naming the file and column.
    """
    try:
        if path is None:
            table, _ = carried_table(SOI_FILE, SOI_COLUMNS)
            return table, DATA_DIR / SOI_FILE
        table, _ = read_carried_csv(Path(path), SOI_COLUMNS)
    except CarriedTableError as error:
        raise SourceFormatError(str(error)) from error
    return table, Path(path)


def soi_facts(table: pd.DataFrame) -> pd.DataFrame:
    """All-returns facts, one per (year, variable, status, band, count), tables deduplicated."""
    facts = table.loc[~table["Taxable only"].astype(bool)].rename(
        columns={
            "Year": "year", "SOI table": "table", "Variable": "variable",
            "Filing status": "status", "AGI lower bound": "low", "AGI upper bound": "high",
            "Count": "is_count", "Value": "value",
        }
    )  # fmt: skip
    facts = facts.assign(
        year=facts["year"].astype(int),
        low=facts["low"].astype(float),
        high=facts["high"].astype(float),
        is_count=facts["is_count"].astype(bool) | (facts["variable"] == "count"),
        value=facts["value"].astype(float),
        rank=facts["table"].map({t: i for i, t in enumerate(TABLE_PREFERENCE)}).fillna(99),
    ).sort_values("rank", kind="stable")
    keys = ["year", "variable", "status", "low", "high", "is_count"]
    return facts.drop_duplicates(keys)[[*keys, "value"]].reset_index(drop=True)


def _has_full_coverage(facts: pd.DataFrame, year: int) -> list[str]:
    """SOI variables needed but missing for ``year`` (empty when it is usable)."""
    present = set(facts.loc[facts["year"] == year, "variable"])
    missing = [v for v in SOI_NEEDED if v not in present]
    statuses = set(facts.loc[(facts["year"] == year) & (facts["variable"] == "count"), "status"])
    missing += [f"count[{s}]" for s in STATUS_MARS if s not in statuses]
    return missing


def choose_soi_year(facts: pd.DataFrame, year: int, soi_year: int | None = None) -> int:
    """The latest SOI year <= ``year`` with every needed column (else the earliest later)."""
    if soi_year is not None:
        missing = _has_full_coverage(facts, soi_year)
        if missing:
            raise SourceFormatError(f"{SOI_FILE}: SOI year {soi_year} lacks {missing}")
        return soi_year
    usable = [y for y in sorted(set(facts["year"])) if not _has_full_coverage(facts, y)]
    if not usable:
        raise SourceFormatError(f"{SOI_FILE}: no SOI year has all of {list(SOI_NEEDED)}")
    earlier = [y for y in usable if y <= year]
    return earlier[-1] if earlier else usable[0]


def banded(facts: pd.DataFrame, year: int, variable: str, status: str = ALL) -> pd.DataFrame:
    """Rows of one column by AGI band (total row dropped), ascending, count and amount."""
    rows = facts[
        (facts["year"] == year)
        & (facts["variable"] == variable)
        & (facts["status"] == status)
        & ~(np.isinf(facts["low"]) & np.isinf(facts["high"]))
    ]
    wide = rows.pivot_table(index=["low", "high"], columns="is_count", values="value")
    wide = wide.rename(columns={True: "count", False: "amount"}).reset_index()
    for column in ("count", "amount"):
        if column not in wide:
            wide[column] = np.nan
    return wide.sort_values("low").reset_index(drop=True)


def band_lows(bands: pd.DataFrame) -> np.ndarray:
    """Lower bounds for band lookup; a Table 2.1 band starting at 0 starts at $1 (no-AGI
    returns have no itemized deductions in SOI: Table 1.2 shows none)."""
    lows = bands["low"].to_numpy(dtype=float).copy()
    lows[lows == 0.0] = 1.0
    return lows


def band_index(agi: np.ndarray, lows: np.ndarray) -> np.ndarray:
    """Band of each AGI (-1 below the first band); band i is [lows[i], lows[i + 1])."""
    return np.searchsorted(lows, agi, side="right") - 1
