"""``is_female`` from the carried SSA population: shares by age on a large sample, couples of
opposite sex, determinism for a seed, and the carried table's provenance."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from microplex_assets.entities.demographics import (
    DATA_DIR,
    SSA_FILE,
    assign_is_female,
    female_shares,
    ssa_counts,
)


def _people(ages: np.ndarray, roles: list[str] | None = None, units=None) -> pd.DataFrame:
    n = len(ages)
    return pd.DataFrame(
        {
            "tax_unit_id": np.arange(1, n + 1) if units is None else units,
            "role": roles or ["head"] * n,
            "age": ages,
        }
    )


def test_singles_follow_the_ssa_unmarried_shares_by_age():
    rng = np.random.default_rng(0)
    ages = rng.integers(0, 101, 400_000)
    female, summary = assign_is_female(_people(ages), pd.Series(dtype="int64"), 2024, seed=11)
    expected = female_shares(2024)["unmarried"]
    groups = pd.Series(female).groupby(pd.cut(ages, [0, 15, 30, 45, 65, 80, 90, 101], right=False))
    for band, observed in groups:
        members = ages[(ages >= band.left) & (ages < band.right)]
        share = expected[members].mean()
        tolerance = 4 * np.sqrt(share * (1 - share) / len(members))
        assert abs(observed.mean() - share) < tolerance, band
    # The SSA says women outnumber men among the old: so does the draw.
    assert female[ages >= 85].mean() > 0.6 and abs(female[ages < 15].mean() - 0.49) < 0.01
    assert summary["ssa_year"] == 2024 and summary["persons"] == len(ages)


def test_couples_are_of_opposite_sex_with_the_older_partner_more_often_the_man():
    n = 60_000
    head_age = np.r_[np.full(n // 2, 45), np.full(n // 2, 30)]
    spouse_age = np.r_[np.full(n // 2, 30), np.full(n // 2, 45)]
    units = np.repeat(np.arange(1, n + 1), 2)
    ages = np.column_stack([head_age, spouse_age]).ravel()
    roles = ["head", "spouse"] * n
    status = pd.Series(2, index=np.arange(1, n + 1))
    female, summary = assign_is_female(_people(ages, roles, units), status, 2024, seed=5)
    head, spouse = female[0::2], female[1::2]
    assert (head != spouse).all()
    assert summary["opposite_sex_couples"] == n
    counts = ssa_counts(2024)
    women, men = counts["F Mar"], counts["M Mar"]
    p_older_head = women[45] * men[30] / (women[45] * men[30] + men[45] * women[30])
    older_head_female = head[: n // 2].mean()
    assert abs(older_head_female - p_older_head) < 4 * np.sqrt(0.25 / (n // 2))
    assert older_head_female < 0.5 < head[n // 2 :].mean()


def test_married_filing_separately_head_uses_the_married_share():
    ages = np.full(100_000, 35)
    female, _ = assign_is_female(
        _people(ages), pd.Series(3, index=np.arange(1, 100_001)), 2024, seed=2
    )
    assert abs(female.mean() - female_shares(2024)["married"][35]) < 0.006


def test_same_seed_same_draw_and_other_seed_other_draw():
    people = _people(np.arange(2_000) % 90)
    status = pd.Series(dtype="int64")
    first, _ = assign_is_female(people, status, 2024, seed=9)
    again, _ = assign_is_female(people, status, 2024, seed=9)
    other, _ = assign_is_female(people, status, 2024, seed=10)
    assert (first == again).all() and (first != other).any()


def test_years_outside_the_carried_range_are_clipped():
    assert ssa_counts(2070)["year"].iloc[0] == 2050
    assert ssa_counts(1990)["year"].iloc[0] == 2010


def test_carried_table_matches_its_sources_entry():
    entry = json.loads((DATA_DIR / "SOURCES.json").read_text())[SSA_FILE]
    assert hashlib.sha256((DATA_DIR / SSA_FILE).read_bytes()).hexdigest() == entry["sha256"]
    assert "Trustees" in entry["source"] and entry["url"].startswith("https://www.ssa.gov/")


def test_stage6_bundle_carries_is_female(bundle):
    person = bundle.person
    assert person["is_female"].dtype == bool
    couples = person[person["role"].isin(["head", "spouse"])].groupby("tax_unit_id")
    sizes = couples.size()
    both = couples["is_female"].sum()[sizes == 2]
    assert (both == 1).all()
    assert "SSA 2024" in bundle.notes["is_female"]
