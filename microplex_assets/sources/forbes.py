"""Stage-2 top-wealth source: a Forbes-400-style list, read from a CSV or built from aggregates.

Surveys miss the very top of the wealth distribution (the SCF excludes Forbes 400 members
by design), so the build adds a "top-tail spine" of the richest units, one household each.

Accepted CSV (comma-separated, header names matched case-insensitively, one row per list
member)::

    rank,name,net_worth,age,state,source_of_wealth

* ``rank`` - integer, unique (Forbes prints ties; give tied members distinct ranks in list
  order before loading);
* ``net_worth`` - US dollars, positive; or ``net_worth_billions`` in billions of dollars
  (used only when ``net_worth`` is absent);
* ``state`` - 2-letter postal code (``CA``) or state FIPS code (``6`` / ``06``) of the
  member's residence; 50 states and DC;
* ``age`` (blank for family fortunes), ``name`` and ``source_of_wealth`` are optional.

Rows become households: ``household_id`` 1..N in rank order, ``rank``, ``net_worth`` (the
policyengine-us household input), ``age_head``, ``state_fips``, ``household_weight = 1``.

``embedded_top_wealth_list`` builds a synthetic stand-in (``kind = "synthetic"``) from the
published aggregates of the 2024 Forbes 400 because no real list can be downloaded here;
see ``FORBES_400_2024`` for the figures and their sources.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import fsolve

from microplex_assets.geography.states import FIPS_CODES, STATE_FIPS
from microplex_assets.sources.frame import ObservationFrame, SourceFormatError
from microplex_assets.sources.readers import ColumnSpec, file_provenance, read_columns

SOURCE = "forbes_400"
EMBEDDED_SOURCE = "forbes_400_embedded"
BILLION = 1e9
COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("rank", "int", non_negative=True),
    ColumnSpec("name", "str", required=False),
    ColumnSpec("net_worth", required=False),
    ColumnSpec("net_worth_billions", required=False),
    ColumnSpec("age", "int", required=False, non_negative=True),
    ColumnSpec("state", "str"),
    ColumnSpec("source_of_wealth", "str", required=False),
)

# Published aggregates of the 2024 Forbes 400 (net worths as of 1 September 2024).
FORBES_400_2024: dict[str, Any] = {
    "list_year": 2024,
    "members": 400,
    "total_net_worth": 5.4e12,
    "minimum_net_worth": 3.3e9,  # the 2023 list's cutoff was $2.9B; 2024's is $3.3B
    "maximum_net_worth": 244e9,  # No. 1, Elon Musk
    "top_25_net_worth": 2.5e12,
    "members_at_least_100_billion": 12,  # reported, not fitted (see notes)
    "state_members": {"CA": 83, "NY": 54, "FL": 54, "TX": 43},
    "states_without_members_named": ["AL", "AK", "DE", "MN", "MS"],  # ten in all
    "youngest_member_age": 38,
    "sources": [
        "Forbes, 'The 2024 Forbes 400 List Of Wealthiest Americans: Facts And Figures', "
        "1 Oct 2024, https://www.forbes.com/sites/chasewithorn/2024/10/01/"
        "the-2024-forbes-400-list-of-wealthiest-americans-facts-and-figures/ "
        "(total $5.4T, cutoff $3.3B up from $2.9B in 2023, Musk $244B)",
        "Forbes Australia, 'The 2024 Forbes 400: The 25 wealthiest people in America' "
        "(top 25 worth $2.5T; 12 members with $100B+)",
        "Forbes, 'Where America's Richest People Live: Forbes 400 2024' (M. Hunter-Hart): "
        "CA 83, NY 54, FL 54, TX 43 members; ten states with none",
        "Newsweek map of the 2024 Forbes 400 by state (AL, AK, DE, MN, MS without members); "
        "youngest member Lukas Walton, 38",
    ],
}
EMBEDDED_SEED = 400
AGE_MEAN, AGE_SD, AGE_MAX = 70.0, 13.0, 99  # assumption: no published age distribution found


def _fail(path: Path, message: str) -> SourceFormatError:
    return SourceFormatError(f"{SOURCE}: {path} {message}")


def _state_fips(values: pd.Series, path: Path) -> np.ndarray:
    """Postal codes or FIPS numbers -> FIPS; unknown codes are a format error."""
    text = values.str.strip().str.upper()
    numeric = pd.to_numeric(text.where(text.str.fullmatch(r"\d{1,2}")), errors="coerce")
    fips = text.map(STATE_FIPS).astype(float).fillna(numeric)
    unknown = fips.isna() | ~fips.isin(FIPS_CODES)
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise _fail(
            path,
            f"column 'state' holds {values.iloc[row]!r} at row {row + 1} "
            f"({int(unknown.sum())} unknown); expected a 2-letter postal code or state FIPS",
        )
    return fips.to_numpy(dtype=np.int64)


def _net_worth(members: pd.DataFrame, path: Path) -> tuple[np.ndarray, str]:
    if "net_worth" in members.columns:
        column, scale = "net_worth", 1.0
    elif "net_worth_billions" in members.columns:
        column, scale = "net_worth_billions", BILLION
    else:
        raise _fail(path, "lacks a net worth column: expected 'net_worth' or 'net_worth_billions'")
    values = members[column]
    bad = values.isna() | (values <= 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise _fail(
            path, f"column '{column}' must be positive; row {row + 1} holds {values.iloc[row]}"
        )
    return values.to_numpy(dtype=float) * scale, column


def load_forbes_list(path: Path | str, year: int) -> ObservationFrame:
    """Load a Forbes-400-style CSV as one household per member (weight 1)."""
    path = Path(path)
    members = read_columns(path, COLUMNS, SOURCE, upper_case_header=True)
    if members["rank"].isna().any():
        raise _fail(path, f"column 'rank' has {int(members['rank'].isna().sum())} blanks")
    duplicated = members["rank"].duplicated()
    if duplicated.any():
        raise _fail(
            path,
            f"column 'rank' repeats {int(duplicated.sum())} ranks (first: "
            f"{int(members.loc[duplicated, 'rank'].iloc[0])}); expected unique ranks",
        )
    net_worth, worth_column = _net_worth(members, path)
    fips = _state_fips(members["state"], path)
    members = members.assign(_worth=net_worth, _fips=fips).sort_values("rank")
    age = members["age"] if "age" in members.columns else pd.Series(pd.NA, index=members.index)
    household = pd.DataFrame(
        {
            "household_id": np.arange(1, len(members) + 1, dtype=np.int64),
            "rank": members["rank"].to_numpy(dtype=np.int64),
            "net_worth": members["_worth"].to_numpy(dtype=float),
            "age_head": age.astype("Int64").to_numpy(),
            "state_fips": members["_fips"].to_numpy(dtype=np.int64),
            "household_weight": np.ones(len(members)),
        }
    )
    for column in ("name", "source_of_wealth"):
        if column in members.columns:
            household[column] = members[column].to_numpy()
    frame = ObservationFrame(
        source=SOURCE,
        year=int(year),
        tables={"household": household},
        links={},
        provenance={
            "kind": "real",
            "files": {"list": file_provenance(path)},
            "year": int(year),
            "members": len(household),
            "net_worth_column": worth_column,
            "total_net_worth": float(household["net_worth"].sum()),
            "members_without_age": int(household["age_head"].isna().sum()),
            "notes": ["one household per list member, household_weight 1"],
        },
    )
    frame.validate()
    return frame


def rank_size_net_worth(aggregates: dict[str, Any] = FORBES_400_2024) -> np.ndarray:
    """Net worths by rank from a log-cubic rank-size rule fitted to the published aggregates.

    ``log w(r) = a + b l + c l^2 + d l^3`` with ``l = log r``: ``a`` and ``b`` put the
    maximum at rank 1 and the minimum at the last rank exactly; ``c`` and ``d`` are solved
    so the total and the top-25 total match. A pure power law (``c = d = 0``) through the
    same endpoints sums to only about $4.0T, hence the curvature terms.
    """
    n = int(aggregates["members"])
    log_rank = np.log(np.arange(1, n + 1))
    last = np.log(n)
    top, bottom = np.log(aggregates["maximum_net_worth"]), np.log(aggregates["minimum_net_worth"])

    def worth(params: np.ndarray) -> np.ndarray:
        c, d = params
        b = (bottom - top - c * last**2 - d * last**3) / last
        return np.exp(top + b * log_rank + c * log_rank**2 + d * log_rank**3)

    def gaps(params: np.ndarray) -> list[float]:
        w = worth(params)
        return [
            w.sum() / aggregates["total_net_worth"] - 1,
            w[:25].sum() / aggregates["top_25_net_worth"] - 1,
        ]

    values = worth(fsolve(gaps, np.array([-0.3, 0.03]), xtol=1e-12))
    if not np.all(np.diff(values) < 0) or max(abs(g) for g in gaps_of(values, aggregates)) > 1e-3:
        raise ValueError("rank-size fit did not reproduce the published aggregates")
    return values


def gaps_of(values: np.ndarray, aggregates: dict[str, Any]) -> list[float]:
    """Relative gaps of total, top-25 total, minimum and maximum from the aggregates."""
    return [
        float(values.sum() / aggregates["total_net_worth"] - 1),
        float(values[:25].sum() / aggregates["top_25_net_worth"] - 1),
        float(values.min() / aggregates["minimum_net_worth"] - 1),
        float(values.max() / aggregates["maximum_net_worth"] - 1),
    ]


def millionaire_agi_by_state() -> pd.Series:
    """IRS SOI AGI of returns with AGI of $1m or more, by postal code (the carried table):
    where top incomes are, so where unnamed members most plausibly live."""
    from microplex_assets.targets.carried import DATA_DIR

    table = pd.read_csv(DATA_DIR / "agi_state.csv")
    top = table[
        (table["VARIABLE"] == "adjusted_gross_income/amount")
        & (table["AGI_LOWER_BOUND"] == 1_000_000)
        & np.isinf(table["AGI_UPPER_BOUND"])
    ]
    return top.set_index("GEO_NAME")["VALUE"].astype(float)


def _embedded_states(aggregates: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Published counts for the big four states; the rest drawn over the other states in
    proportion to their $1m+ AGI (IRS SOI), so small states rarely get a member."""
    named = aggregates["state_members"]
    excluded = set(named) | set(aggregates["states_without_members_named"])
    others = sorted(code for code in STATE_FIPS if code not in excluded)
    rest = int(aggregates["members"]) - sum(named.values())
    share = millionaire_agi_by_state().reindex(others).fillna(0.0).to_numpy()
    labels = [code for code, count in named.items() for _ in range(count)]
    labels += list(rng.choice(others, size=rest, p=share / share.sum()))
    return np.array([STATE_FIPS[code] for code in rng.permutation(labels)], dtype=np.int64)


def embedded_top_wealth_list(year: int = 2024) -> ObservationFrame:
    """A synthetic Forbes-400 stand-in built only from published 2024 aggregates.

    Net worths follow ``rank_size_net_worth``; states and ages are drawn from a fixed seed
    (``EMBEDDED_SEED``) so the list is identical on every build. Values are the 2024 list's
    (1 September 2024 dollars) for any ``year`` >= 2024; they are not uprated here.
    """
    aggregates = FORBES_400_2024
    if year < aggregates["list_year"]:
        raise ValueError(f"embedded top-wealth list starts in {aggregates['list_year']}")
    rng = np.random.default_rng(EMBEDDED_SEED)
    net_worth = rank_size_net_worth(aggregates)
    n = len(net_worth)
    states = _embedded_states(aggregates, rng)
    ages = np.clip(
        np.rint(rng.normal(AGE_MEAN, AGE_SD, n)), aggregates["youngest_member_age"], AGE_MAX
    )
    household = pd.DataFrame(
        {
            "household_id": np.arange(1, n + 1, dtype=np.int64),
            "rank": np.arange(1, n + 1, dtype=np.int64),
            "net_worth": net_worth,
            "age_head": ages.astype(np.int64),
            "state_fips": states,
            "household_weight": np.ones(n),
        }
    )
    total, top25, low, high = gaps_of(net_worth, aggregates)
    hundred_billion = int((net_worth >= 100 * BILLION).sum())
    frame = ObservationFrame(
        source=EMBEDDED_SOURCE,
        year=int(year),
        tables={"household": household},
        links={},
        provenance={
            "kind": "synthetic",
            "built_from": "published aggregates of the 2024 Forbes 400 (no list downloaded)",
            "aggregates": {k: v for k, v in aggregates.items() if k != "sources"},
            "citations": aggregates["sources"],
            "list_year": aggregates["list_year"],
            "year": int(year),
            "seed": EMBEDDED_SEED,
            "method": "log-cubic rank-size rule: max and min exact, total and top-25 solved",
            "relative_gaps": {"total": total, "top_25": top25, "minimum": low, "maximum": high},
            "members_at_least_100_billion": hundred_billion,
            "notes": [
                f"the fitted curve gives {hundred_billion} members at $100B+, the published "
                f"list has {aggregates['members_at_least_100_billion']}: a smooth rule cannot "
                "match every published statistic at once",
                "states: CA 83, NY 54, FL 54, TX 43 as published; the other 166 members drawn "
                "over the remaining states and DC in proportion to their IRS SOI AGI of "
                "$1m+ returns (carried agi_state.csv), except AL, AK, DE, MN, MS (published "
                "as having none; the other five empty states were not found)",
                f"ages: assumption, rounded Normal(mean {AGE_MEAN:.0f}, sd {AGE_SD:.0f}) "
                f"clipped to [{aggregates['youngest_member_age']}, {AGE_MAX}]; no published "
                "age distribution was found (youngest published member: 38)",
                "states and ages are independent of rank",
                f"net worths are the {aggregates['list_year']} list's; not uprated to {year}",
            ],
        },
    )
    frame.validate()
    return frame
