"""Structural reform: long-term capital gains indexed to inflation (CPI-U).

policyengine-us has no indexation parameter: it taxes one long-term gain amount per person
(``long_term_capital_gains_before_response``). Indexing needs each sale's holding period
and basis, which the published capital-gain lots carry
(``microplex_assets.publication.capital_gains_lots``). So the reform rewrites that input:

- each LONG-term lot's basis is multiplied by CPI-U(sale) / CPI-U(acquisition), and its
  gain falls by ``basis × (ratio − 1)``; short-term lots are never indexed;
- only rising prices count: a lot whose CPI ratio is below 1 is left alone (indexation
  lowers gains, it never raises them);
- per person the reductions add up and lower positive long-term gains, but never below
  zero: indexation does not create a deductible loss. Persons with zero or negative
  long-term gains, and persons without lots, are unchanged;
- capital gain distributions (``non_sch_d_capital_gains``) have no lots and no basis, so
  they are never indexed.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

CPI_PARAMETER = "gov.bls.cpi.cpi_u"
INDEXED_VARIABLE = "long_term_capital_gains_before_response"

Cpi = Callable[[datetime.date], float]


def policyengine_cpi_u(system: Any) -> Cpi:
    """CPI-U in force at a date, from PolicyEngine's own series (``gov.bls.cpi.cpi_u``).

    The series is monthly (BLS CUSR0000SA0, seasonally adjusted) from January 1913 to
    mid-2026, then one CBO projection a year. A date takes the latest value dated on or
    before it; dates before January 1913 take the earliest value (no lot is that old: long
    lots are held at most 40 years). Using PolicyEngine's series keeps the reform on the
    same prices the rest of the model uprates with.
    """
    parameter = system.parameters.get_child(CPI_PARAMETER)
    entries = sorted((entry.instant_str, float(entry.value)) for entry in parameter.values_list)
    starts = np.array([start for start, _ in entries], dtype="datetime64[D]")
    values = np.array([value for _, value in entries], dtype=float)

    def cpi(when: datetime.date) -> float:
        position = np.searchsorted(starts, np.datetime64(when, "D"), side="right") - 1
        return float(values[max(int(position), 0)])

    return cpi


def _cpi_of(dates: pd.Series, cpi: Cpi) -> np.ndarray:
    """CPI at each date, calling ``cpi`` once per distinct day (lots share few days)."""
    days = pd.to_datetime(dates).to_numpy().astype("datetime64[D]")
    unique, inverse = np.unique(days, return_inverse=True)
    values = np.array([cpi(day.item()) for day in unique], dtype=float)
    return values[inverse]


def indexed_long_term_gains(lots: pd.DataFrame, cpi: Cpi) -> pd.DataFrame:
    """Per person with long lots: original gains, indexation amount, adjusted gains.

    Index ``person_id``; columns ``original_long_term_gains`` (sum of long lots' gains),
    ``indexation_amount`` (sum over long lots of the basis increase, ≥ 0 per lot) and
    ``adjusted_long_term_gains`` (original less indexation, floored at 0; unchanged when
    the original is not positive).
    """
    long = lots[lots["term"] == "long"]
    ratio = _cpi_of(long["sale_date"], cpi) / _cpi_of(long["acquisition_date"], cpi)
    basis = long["cost_basis"].to_numpy(dtype=float)
    reduction = basis * np.maximum(ratio - 1.0, 0.0)
    per_lot = pd.DataFrame(
        {
            "person_id": long["person_id"].to_numpy(dtype=np.int64),
            "original_long_term_gains": long["gain"].to_numpy(dtype=float),
            "indexation_amount": reduction,
        }
    )
    person = per_lot.groupby("person_id").sum()
    person["adjusted_long_term_gains"] = _adjust(
        person["original_long_term_gains"].to_numpy(), person["indexation_amount"].to_numpy()
    )
    return person


def _adjust(original: np.ndarray, indexation: np.ndarray) -> np.ndarray:
    """Positive gains lowered by indexation, at most to zero; other amounts unchanged."""
    return np.where(original > 0, np.maximum(original - indexation, 0.0), original)


def apply_indexation(
    baseline: np.ndarray, person_ids: np.ndarray, lots: pd.DataFrame, cpi: Cpi
) -> np.ndarray:
    """The adjusted ``long_term_capital_gains_before_response`` for ``person_ids``.

    ``baseline`` is that input as the dataset holds it, aligned with ``person_ids``; it
    stays the amount being reduced (the lots only supply the indexation), so persons
    without lots, or with lots of persons not listed, come out exactly as they went in.
    """
    baseline = np.asarray(baseline, dtype=float)
    person_ids = np.asarray(person_ids, dtype=np.int64)
    if baseline.shape != person_ids.shape:
        raise ValueError(f"baseline has {baseline.shape} values but person_ids {person_ids.shape}")
    indexation = indexed_long_term_gains(lots, cpi)["indexation_amount"]
    amount = indexation.reindex(person_ids, fill_value=0.0).to_numpy(dtype=float)
    return _adjust(baseline, amount)
