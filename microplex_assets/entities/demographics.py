"""``is_female``: imputed from the SSA population by age, sex and marital status (stage 6).

The taxcalc CPS file has no sex column (its columns are amounts, ages, counts and codes;
nothing names sex), so sex is imputed, not observed. The shares come from the SSA Office
of the Chief Actuary's 2024 Trustees Report population (1 July, by single year of age 0-100+,
sex and marital status), carried as ``data/ssa_population_age_sex_2010_2050.csv`` and
checked against ``data/SOURCES.json``; the build year's rows are used (clipped to
2010-2050). Rule, with one uniform draw per person from ``numpy.random.default_rng([seed,
crc32("is_female")])`` (deterministic for the seed):

- head and spouse of a joint tax unit (the CPS's married couples) are of opposite sex: the
  head is female with probability F(a_h) M(a_s) / (F(a_h) M(a_s) + M(a_h) F(a_s)), where
  F(a) and M(a) are the SSA married women and men aged a (the two ages treated as
  independent draws from each sex's married age distribution: the older partner is more
  often the man), and the spouse gets the other sex. Same-sex married couples (about 1% of
  married couples) are not represented;
- a head of a married-filing-separately unit (spouse not in the unit): P(female) =
  F(a) / (F(a) + M(a)) among the married;
- everyone else: the unmarried share at their age, (F_tot - F_mar) / (tot - mar), which is
  the whole population's share for children.

Where a share's denominator is zero (a spouse aged 0 in the file: no married people of
that age) the whole population's share at that age is used.
"""

from __future__ import annotations

import io
import zlib
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.files import carried_file

DATA_DIR = Path(__file__).parent / "data"
SOURCES_FILE = "SOURCES.json"
SSA_FILE = "ssa_population_age_sex_2010_2050.csv"
SSA_COLUMNS = ("Year", "Age", "M Tot", "M Mar", "F Tot", "F Mar")
TOP_AGE = 100
MARRIED_SEPARATELY = 3


class CarriedDataError(ValueError):
    """A carried entity-stage table is missing, malformed or not what SOURCES.json says."""


def carried_csv(name: str, required: tuple[str, ...]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A table in ``data/`` and its SOURCES.json entry, SHA256 and columns checked."""
    path = DATA_DIR / name
    data, entry = carried_file(DATA_DIR, name, CarriedDataError, SOURCES_FILE)
    frame = pd.read_csv(io.BytesIO(data))
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise CarriedDataError(f"{path}: missing column(s) {missing}")
    return frame, {**entry, "file": f"microplex_assets/entities/data/{name}"}


def stream(seed: int, name: str) -> np.random.Generator:
    """A generator of its own for each imputed variable, fixed by the build seed."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


@cache
def ssa_counts(year: int) -> pd.DataFrame:
    """SSA population by age (0..100) for ``year`` (clipped to the carried years):
    columns M Tot, M Mar, F Tot, F Mar and ``year``, the year used."""
    table, _ = carried_csv(SSA_FILE, SSA_COLUMNS)
    used = int(np.clip(year, table["Year"].min(), table["Year"].max()))
    rows = table[table["Year"] == used].set_index("Age").sort_index()
    if list(rows.index) != list(range(TOP_AGE + 1)):
        raise CarriedDataError(f"{DATA_DIR / SSA_FILE}: year {used} lacks ages 0-{TOP_AGE}")
    return rows.drop(columns="Year").astype(float).assign(year=used)


def female_shares(year: int) -> dict[str, np.ndarray]:
    """P(female | age) for everyone, the married and the unmarried; married F(a) and M(a)."""
    counts = ssa_counts(year)
    men, women = counts["M Tot"].to_numpy(), counts["F Tot"].to_numpy()
    men_married, women_married = counts["M Mar"].to_numpy(), counts["F Mar"].to_numpy()
    everyone = women / (men + women)

    def share(female: np.ndarray, male: np.ndarray) -> np.ndarray:
        total = female + male
        return np.where(total > 0, female / np.where(total > 0, total, 1.0), everyone)

    return {
        "everyone": everyone,
        "married": share(women_married, men_married),
        "unmarried": share(women - women_married, men - men_married),
        "married_women": women_married,
        "married_men": men_married,
    }


def assign_is_female(
    person: pd.DataFrame, filing_status: pd.Series, year: int, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """``is_female`` per person row (see the module docstring) and a summary for the notes.

    ``person`` needs ``tax_unit_id``, ``role`` (head / spouse / dependent) and ``age``;
    ``filing_status`` is MARS indexed by tax_unit_id.
    """
    shares = female_shares(year)
    age = np.clip(np.round(person["age"].to_numpy(dtype=float)), 0, TOP_AGE).astype(np.int64)
    role = person["role"].astype(str).to_numpy()
    unit = person["tax_unit_id"].to_numpy()
    draw = stream(seed, "is_female").random(len(person))
    p = shares["unmarried"][age].copy()

    is_head, is_spouse = role == "head", role == "spouse"
    spouse_age = pd.Series(age[is_spouse], index=unit[is_spouse])
    spouse_age = spouse_age[~spouse_age.index.duplicated()]
    head_rows = np.flatnonzero(is_head)
    partner_age = spouse_age.reindex(unit[head_rows]).to_numpy()
    couple = ~np.isnan(partner_age)
    couple_heads = head_rows[couple]
    a_h, a_s = age[couple_heads], partner_age[couple].astype(np.int64)
    women, men = shares["married_women"], shares["married_men"]
    head_female = women[a_h] * men[a_s]
    head_male = men[a_h] * women[a_s]
    total = head_female + head_male
    p[couple_heads] = np.where(
        total > 0, head_female / np.where(total > 0, total, 1.0), shares["everyone"][a_h]
    )
    status = filing_status.reindex(unit[head_rows]).to_numpy()
    separate = head_rows[~couple & (status == MARRIED_SEPARATELY)]
    p[separate] = shares["married"][age[separate]]

    female = draw < p
    # The spouse takes the opposite of the head's sex.
    head_of_unit = pd.Series(female[couple_heads], index=unit[couple_heads])
    spouse_rows = np.flatnonzero(is_spouse)
    spouse_rows = spouse_rows[np.isin(unit[spouse_rows], head_of_unit.index)]
    female[spouse_rows] = ~head_of_unit.reindex(unit[spouse_rows]).to_numpy(dtype=bool)
    summary = {
        "ssa_year": int(ssa_counts(year)["year"].iloc[0]),
        "persons": int(len(person)),
        "female_share": round(float(female.mean()), 4) if len(person) else None,
        "opposite_sex_couples": int(len(couple_heads)),
        "married_separately_heads": int(len(separate)),
    }
    return female, summary
