"""Dependents of taxcalc's CPS tax units: how many in each age band, and their ages.

The file counts people by age band per tax unit, not persons; stage 2 makes each
dependent a person with an age drawn inside the band it is counted in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Dependent age bands [low, high) and how many dependents the file puts in each.
AGE_BANDS: tuple[tuple[int, int], ...] = (
    (0, 6),
    (6, 13),
    (13, 17),
    (17, 18),
    (18, 21),
    (21, 65),
    (65, 86),
)
FILL_BAND = 5  # dependents the bands miss are working-age adults (qualifying relatives)
TRIM_ORDER = (5, 4, 6, 3, 2, 1, 0)  # surplus leaves the least specific bands first


def dependent_band_counts(cps: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dependents per age band (rows x 7), adjusted to sum to each unit's dependent count.

    ``nu18``, ``n1820`` and ``n21`` count everyone in the unit, so head and spouse are
    taken out of their own band; ``nu06``, ``nu13`` and ``n24`` count dependents only
    (a 5-year-old head is in ``nu18`` but not ``nu06``). A spouse whose age is 0 in the
    file is in no band (all 103 such rows count XTOT - 1 people in the bands), so is
    not taken out. Units whose bands still disagree with the dependent count get the
    missing dependents in [21, 65) (the file's 992 head-of-household units that count
    one person too few are this case) or lose surplus ones in ``TRIM_ORDER``.

    Returns (band counts, dependents per unit, adjusted-row mask).
    """
    spouse = (cps["MARS"].to_numpy() == 2).astype(np.int64)
    head_age = cps["age_head"].to_numpy()
    spouse_age = cps["age_spouse"].to_numpy()
    spouse_banded = spouse * (spouse_age > 0)

    def in_band(low: int, high: int) -> np.ndarray:
        head = (head_age >= low) & (head_age < high)
        return head.astype(np.int64) + spouse_banded * ((spouse_age >= low) & (spouse_age < high))

    dependents = np.clip(cps["XTOT"].to_numpy() - 1 - spouse, 0, None)
    under6 = cps["nu06"].to_numpy()
    under13 = np.maximum(cps["nu13"].to_numpy(), under6)
    under17 = np.maximum(cps["n24"].to_numpy(), under13)
    under18 = np.maximum(cps["nu18"].to_numpy() - in_band(0, 18), under17)
    aged_18_20 = np.clip(cps["n1820"].to_numpy() - in_band(18, 21), 0, None)
    elderly = cps["elderly_dependents"].to_numpy()
    adults = np.clip(cps["n21"].to_numpy() - in_band(21, 200) - elderly, 0, None)
    bands = np.column_stack(
        [
            under6,
            under13 - under6,
            under17 - under13,
            under18 - under17,
            aged_18_20,
            adults,
            elderly,
        ]
    ).astype(np.int64)

    gap = dependents - bands.sum(axis=1)
    adjusted = gap != 0
    bands[:, FILL_BAND] += np.clip(gap, 0, None)
    surplus = np.clip(-gap, 0, None)
    for band in TRIM_ORDER:
        take = np.minimum(surplus, bands[:, band])
        bands[:, band] -= take
        surplus -= take
    assert (bands.sum(axis=1) == dependents).all()
    return bands, dependents, adjusted


def draw_dependent_ages(
    bands: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Unit index and age of every dependent, oldest first within a unit."""
    units, n_bands = bands.shape
    counts = bands.ravel()
    band_of = np.repeat(np.tile(np.arange(n_bands), units), counts)
    unit_of = np.repeat(np.repeat(np.arange(units), n_bands), counts)
    low = np.array([b[0] for b in AGE_BANDS])[band_of]
    high = np.array([b[1] for b in AGE_BANDS])[band_of]
    ages = rng.integers(low, high)
    order = np.lexsort((-ages, unit_of))
    return unit_of[order], ages[order]
