"""Stage-2 top-wealth source: the real Forbes 400, or a Forbes-style list read from a CSV.

Surveys miss the very top of the wealth distribution (the SCF excludes Forbes 400 members
by design), so the build adds a "top-tail spine" of the richest units, one household each.

Embedded default (``real_top_wealth_list``): the real Forbes 400 of 2024-09-01 carried in
``sources/data`` (``reference_microdata.load_forbes_400``, SHA256 checked), provenance
``kind = "real"``. Rules for what the list leaves open, each flagged on the row:

* rank: the file's ``rank`` is the global Forbes rank (ties repeat), so ``rank`` here is
  the US position 1..400 by net worth, list order breaking ties (``forbes_rank`` keeps it);
* state: ``residence_state`` (full name) -> FIPS. 19 members have none (12 with no
  residence at all, 7 US citizens living abroad, ``residence_country`` kept): a state is
  drawn for each in proportion to the state's AGI on $1m+ returns (IRS SOI, carried
  ``agi_state.csv``, ``millionaire_agi_by_state``) from ``seed``, ``state_imputed = True``.
  Kept rather than dropped: citizens abroad still file federal returns, and PolicyEngine
  needs a state (so the 7 also get a state's tax, a small overstatement);
* age: the member's; a blank age (none in the 2024 file; a CSV may have them) becomes the
  list's median age, ``age_imputed = True``;
* marriage: ``Married`` and ``Widowed, Remarried`` -> married (a spouse person); Divorced,
  Widowed, Single, Separated, Engaged, In Relationship -> not married; blank (31) ->
  married, the status of 78% of members with one, ``married_imputed = True``;
* children: the published count, kept as ``children``; the spine turns them into
  dependents only where they can be minors (``candidate/spine.py``);
* ``deceased``: 10 members flagged in the source died after the snapshot; kept, since the
  list is as of 2024-09-01.

Accepted CSV (``top_wealth_list_path``; comma-separated, header names matched
case-insensitively, one row per list member)::

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
A CSV has no marital status or children: the blank-marriage rule above applies, no
children. The list generated from published aggregates that preceded the real list is
retired; ``FORBES_400_2024`` keeps those published facts as a check on whatever list loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.geography.states import FIPS_CODES, STATE_FIPS, STATE_NAMES
from microplex_assets.sources.frame import ObservationFrame, SourceFormatError
from microplex_assets.sources.readers import ColumnSpec, file_provenance, read_columns
from microplex_assets.sources.reference_microdata import load_forbes_400

SOURCE = "forbes_400"
REAL_SOURCE = "forbes_400_2024"
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
    "members_at_least_100_billion": 12,
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
MARRIED_STATUSES = frozenset({"Married", "Widowed, Remarried"})


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
    household = fill_age_and_marriage(household)
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
            "ages_imputed": int(household["age_imputed"].sum()),
            "marriages_imputed": int(household["married_imputed"].sum()),
            "published_check": published_check(household),
            "notes": [
                "one household per list member, household_weight 1",
                "blank age -> the list's median age; no marital status -> married; no "
                "children (the CSV has neither)",
            ],
        },
    )
    frame.validate()
    return frame


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


def impute_states(missing: int, seed: int) -> np.ndarray:
    """FIPS codes for members without a residence state, drawn in proportion to each
    state's AGI on $1m+ returns (where top incomes are, so where they most plausibly live)."""
    share = millionaire_agi_by_state().reindex(list(STATE_FIPS)).fillna(0.0)
    codes = np.random.default_rng(seed).choice(
        share.index.to_numpy(), size=missing, p=(share / share.sum()).to_numpy()
    )
    return np.array([STATE_FIPS[code] for code in codes], dtype=np.int64)


def fill_age_and_marriage(household: pd.DataFrame) -> pd.DataFrame:
    """Blank ages -> the list's median age; blank marriage -> married (flags say which)."""
    out = household.copy()
    age = pd.to_numeric(out["age_head"], errors="coerce")
    out["age_imputed"] = age.isna().to_numpy()
    median = float(age.median()) if age.notna().any() else 70.0
    out["age_head"] = age.fillna(round(median)).astype(np.int64)
    married = out["is_married"] if "is_married" in out.columns else pd.Series(pd.NA, out.index)
    out["married_imputed"] = married.isna().to_numpy()
    out["is_married"] = married.fillna(True).astype(bool)
    if "children" not in out.columns:
        out["children"] = 0
    out["children"] = pd.to_numeric(out["children"], errors="coerce").fillna(0).astype(np.int64)
    return out


def real_top_wealth_list(year: int, seed: int = 0) -> ObservationFrame:
    """The real Forbes 400 (2024-09-01) as one household per member, by the module's rules.

    Net worths are the list's (1 September 2024 dollars) for any ``year``; not uprated.
    """
    members, source = load_forbes_400()
    members = members.sort_values(["networth_millions", "rank"], ascending=[False, True])
    members = members.reset_index(drop=True)
    names = {name: code for code, name in STATE_NAMES.items()}
    code = members["residence_state"].map(names)
    unknown = members["residence_state"].notna() & code.isna()
    if unknown.any():
        raise SourceFormatError(
            f"{source['file']}: column 'residence_state' holds "
            f"{members.loc[unknown, 'residence_state'].iloc[0]!r}; expected a US state name"
        )
    fips = code.map(STATE_FIPS)
    state_imputed = fips.isna().to_numpy()
    fips[state_imputed] = impute_states(int(state_imputed.sum()), seed)
    n = len(members)
    status = members["marital_status"]
    household = pd.DataFrame(
        {
            "household_id": np.arange(1, n + 1, dtype=np.int64),
            "rank": np.arange(1, n + 1, dtype=np.int64),
            "forbes_rank": members["rank"].to_numpy(dtype=np.int64),
            "name": members["name"].to_numpy(),
            "net_worth": members["networth_millions"].to_numpy(dtype=float) * 1e6,
            "age_head": members["age"].to_numpy(),
            "state_fips": fips.to_numpy(dtype=np.int64),
            "state_imputed": state_imputed,
            "residence_country": members["residence_country"].fillna("").to_numpy(),
            "marital_status": status.fillna("").to_numpy(),
            "is_married": status.isin(MARRIED_STATUSES).astype(object).where(status.notna()),
            "children": members["children"].to_numpy(),
            "deceased_after_snapshot": members["deceased"].astype(bool).to_numpy(),
            "household_weight": np.ones(n),
        }
    )
    household = fill_age_and_marriage(household)
    frame = ObservationFrame(
        source=REAL_SOURCE,
        year=int(year),
        tables={"household": household},
        links={},
        provenance={
            "kind": "real",
            "files": {"list": source},
            "snapshot": "2024-09-01",
            "year": int(year),
            "seed": int(seed),
            "members": n,
            "total_net_worth": float(household["net_worth"].sum()),
            "states_imputed": int(state_imputed.sum()),
            "abroad": int((~household["residence_country"].isin(["", "us"])).sum()),
            "ages_imputed": int(household["age_imputed"].sum()),
            "marriages_imputed": int(household["married_imputed"].sum()),
            "published_check": published_check(household),
            "notes": [
                "one household per member, household_weight 1, rank = US position by net "
                "worth (forbes_rank = the global rank in the file)",
                "no residence state -> state drawn by IRS SOI $1m+ AGI share (seeded), "
                "flagged state_imputed; blank marital status -> married, flagged",
                f"net worths are the 2024-09-01 list's; not uprated to {year}",
            ],
        },
    )
    frame.validate()
    return frame


def published_check(household: pd.DataFrame) -> dict[str, dict[str, float]]:
    """The loaded list beside the published 2024 facts (``FORBES_400_2024``)."""
    worth = household["net_worth"].sort_values(ascending=False).to_numpy()
    counts = household["state_fips"].value_counts()
    rows = {
        "members": (len(worth), FORBES_400_2024["members"]),
        "total_net_worth": (worth.sum(), FORBES_400_2024["total_net_worth"]),
        "top_25_net_worth": (worth[:25].sum(), FORBES_400_2024["top_25_net_worth"]),
        "minimum_net_worth": (worth.min(), FORBES_400_2024["minimum_net_worth"]),
        "maximum_net_worth": (worth.max(), FORBES_400_2024["maximum_net_worth"]),
        "members_at_least_100_billion": (
            (worth >= 100 * BILLION).sum(),
            FORBES_400_2024["members_at_least_100_billion"],
        ),
        **{
            f"members_in_{code}": (counts.get(STATE_FIPS[code], 0), published)
            for code, published in FORBES_400_2024["state_members"].items()
        },
    }
    return {key: {"list": float(a), "published": float(b)} for key, (a, b) in rows.items()}
