"""Section 199A inputs (stage 6): QBI qualification by income source and SSTB status.

policyengine-us 2.68 counts every self-employment, rental and partnership/S-corp dollar as
qualified business income (``*_would_be_qualified`` default true) and no business as a
specified service trade or business (``business_is_sstb`` default false), so without
these inputs every business owner gets the full deduction. No survey or published table
says which businesses qualify; the eCPS draws them at policyengine-us-data's stated
assumptions (``qbi_assumptions.yaml``, carried unchanged in ``data/`` with its SHA256 in
``data/SOURCES.json``), and so does this module, by the same rules
(policyengine-us-data ``datasets/puf/puf.py``):

- each person's ``{source}_would_be_qualified`` is true with the source's probability
  (self-employment 0.95, rental 0.70, partnership/S-corp 0.90, estate 0.60), drawn for
  every person;
- ``business_is_sstb``: among the SSTB sources that are positive and qualified
  (self-employment 0.30, partnership/S-corp 0.25, estate 0.15), the largest gives the
  probability.

Draws come from ``numpy.random.default_rng([seed, crc32(variable)])``, as take-up's do.
Provenance: "eCPS stated assumption", not data.

Estate income comes from the tax donor (SOI estate and trust income; ``estate_income`` is
in 2.68's QBI income definition). Not drawn: the farm-operations and farm-rent flags (the
build carries neither income: a flag on no income changes nothing), and the eCPS's split of an SSTB
person's self-employment income into ``sstb_self_employment_income``: 2.68 already treats
an SSTB person's whole QBI as SSTB through ``business_is_sstb``, while 25 of its program
income lists (WIC, Head Start, state child care) and this build's SOI business-income
targets read ``self_employment_income`` only, which the split would empty for them.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import yaml

from microplex_assets.entities.demographics import DATA_DIR, CarriedDataError, stream
from microplex_assets.files import carried_file

QBI_FILE = "qbi_assumptions.yaml"
PROVENANCE = "eCPS stated assumption"
SSTB_FLAG = "business_is_sstb"
# QBI source (the assumptions' name) -> this build's person columns that make it up.
SOURCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "self_employment_income": ("self_employment_income_before_lsr",),
    "rental_income": ("rental_income",),
    "partnership_s_corp_income": ("partnership_income", "s_corp_income"),
    "estate_income": ("estate_income",),
}
NOT_IN_BUILD = ("farm_operations_income", "farm_rent_income")


def flag_name(source: str) -> str:
    """PolicyEngine's qualification input for a QBI source."""
    return f"{source}_would_be_qualified"


@cache
def qbi_assumptions() -> tuple[dict[str, float], dict[str, float], dict[str, Any]]:
    """Qualification and SSTB probabilities by source, and the SOURCES.json entry."""
    data, entry = carried_file(DATA_DIR, QBI_FILE, CarriedDataError)
    params = yaml.safe_load(data)
    qualified = {k: float(v) for k, v in params["qbi_qualification_probabilities"].items()}
    sstb = {k: float(v) for k, v in params["sstb_prob_map_by_source_name"].items()}
    if not all(0 <= p <= 1 for p in [*qualified.values(), *sstb.values()]):
        raise CarriedDataError(f"{DATA_DIR / QBI_FILE}: a probability outside [0, 1]")
    missing = set(SOURCE_COLUMNS) - set(qualified)
    if missing:
        raise CarriedDataError(f"{DATA_DIR / QBI_FILE}: no probability for {sorted(missing)}")
    return qualified, sstb, {**entry, "file": f"microplex_assets/entities/data/{QBI_FILE}"}


def source_amounts(person: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each QBI source's amount per person (zero where the build lacks the column)."""
    zeros = np.zeros(len(person))
    return {
        source: sum(
            (person[c].fillna(0).to_numpy(dtype=float) for c in cols if c in person.columns),
            zeros,
        )
        for source, cols in SOURCE_COLUMNS.items()
    }


def sstb_probability(
    amounts: dict[str, np.ndarray], qualified: dict[str, np.ndarray], sstb: dict[str, float]
) -> np.ndarray:
    """P(SSTB): the probability of the largest positive qualified SSTB source, else 0."""
    sources = [s for s in sstb if s in amounts]
    if not sources:
        return np.zeros(len(next(iter(amounts.values()))))
    stacked = np.column_stack(
        [np.clip(amounts[s], 0, None) * qualified[flag_name(s)] for s in sources]
    )
    rates = np.array([sstb[s] for s in sources])
    return np.where(stacked.sum(axis=1) > 0, rates[stacked.argmax(axis=1)], 0.0)


def add_qbi_inputs(person: pd.DataFrame, seed: int) -> dict[str, Any]:
    """Add the qualification flags and ``business_is_sstb`` to ``person`` in place.

    Returns, per variable, the probability and the share of persons with that (positive)
    income it is true for, to record in the bundle's notes.
    """
    probabilities, sstb, entry = qbi_assumptions()
    amounts = source_amounts(person)
    flags: dict[str, np.ndarray] = {}
    summary: dict[str, Any] = {"provenance": PROVENANCE, "sha256": entry["sha256"]}
    for source in SOURCE_COLUMNS:
        name = flag_name(source)
        flags[name] = stream(seed, name).random(len(person)) < probabilities[source]
        person[name] = flags[name]
        holders = amounts[source] != 0
        summary[name] = {
            "probability": probabilities[source],
            "share_of_holders": float(flags[name][holders].mean()) if holders.any() else None,
        }
    probability = sstb_probability(amounts, flags, sstb)
    person[SSTB_FLAG] = stream(seed, SSTB_FLAG).random(len(person)) < probability
    candidates = probability > 0
    summary[SSTB_FLAG] = {
        "probability_by_source": {s: sstb[s] for s in sstb if s in SOURCE_COLUMNS},
        "candidates": int(candidates.sum()),
        "share_of_candidates": (
            float(person[SSTB_FLAG].to_numpy()[candidates].mean()) if candidates.any() else None
        ),
    }
    return summary
