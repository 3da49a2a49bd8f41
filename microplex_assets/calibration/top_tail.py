"""Top-tail aggregates of a weighted population: what donors and the spine should move.

Long-term capital gains, dividends and the top 1%'s share of AGI are where a CPS-only
dataset is weakest. They are computed by policyengine-us once per candidate (per-record
arrays kept beside the target matrix), so any weight vector — design, calibrated,
before or after donor integration — is summarised without another simulation. The
weighted top share uses microdf, the field's library for weighted statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import microdf as mdf
import numpy as np

from microplex_assets.constants import AGI

LTCG = "long_term_capital_gains"
DIVIDENDS = ("qualified_dividend_income", "non_qualified_dividend_income")


@dataclass
class TopTailArrays:
    """Per-household capital income and per-tax-unit AGI, aligned to the matrix columns."""

    household_ltcg: np.ndarray
    household_dividends: np.ndarray
    tax_unit_agi: np.ndarray
    tax_unit_household: np.ndarray  # matrix column of each tax unit's household


def top_tail_arrays(arrays: Any) -> TopTailArrays | None:
    """From a ``SimulationArrays``; None when this policyengine-us lacks a variable."""
    needed = (LTCG, *DIVIDENDS, AGI)
    if not all(arrays.has_variable(name) for name in needed):
        return None
    households = len(arrays.household_ids)
    person_household = arrays.household_position("person")

    def by_household(variable: str) -> np.ndarray:
        values = arrays.values(variable, "person").astype(float)
        return np.bincount(person_household, weights=values, minlength=households)

    return TopTailArrays(
        household_ltcg=by_household(LTCG),
        household_dividends=sum(by_household(name) for name in DIVIDENDS),
        tax_unit_agi=arrays.values(AGI, "tax_unit").astype(float),
        tax_unit_household=arrays.household_position("tax_unit"),
    )


def top_tail_aggregates(top: TopTailArrays, household_weights: np.ndarray) -> dict[str, float]:
    """Weighted LTCG and dividend totals ($bn) and the top 1% of tax units' AGI share."""
    weights = np.asarray(household_weights, dtype=float)
    unit_weights = weights[top.tax_unit_household]
    agi = mdf.MicroSeries(top.tax_unit_agi, weights=unit_weights)
    return {
        "long_term_capital_gains_bn": float(top.household_ltcg @ weights) / 1e9,
        "dividends_bn": float(top.household_dividends @ weights) / 1e9,
        "agi_bn": float(top.tax_unit_agi @ unit_weights) / 1e9,
        "top_1pct_agi_share": float(agi.top_1_pct_share()),
    }
