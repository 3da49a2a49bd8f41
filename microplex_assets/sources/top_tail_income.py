"""Income of the top-wealth list drawn from the real SCF 2022 top-tail records.

A Forbes list gives net worth, not income. Each member takes the income composition of a
real SCF 2022 record (``reference_microdata.load_scf_top_tail``, 6,092 records worth
$2.1m+): the SCF excludes Forbes 400 members by design, so its richest records are the
closest real evidence of how income relates to wealth at the very top.

Matching (``match_donors``), deterministic for ``seed``:

* pool: the SCF records worth at least ``POOL_MIN_NET_WORTH`` ($250m: 412 records, some
  80-100 households' implicates, aged 43-90), richest first; the record's row in the
  carried file is the donor id (``donor_scf_row``);
* rank alignment: the member at list position k of n (richest first) looks at the
  ``WINDOW`` pool records around pool position (k + 1/2) / n x pool size, so the richest
  members draw on the richest records and composition keeps its gradient with wealth;
* within the window: records of the member's marital status (all if none), then the
  ``NEAREST_AGE`` closest in age; one drawn with probability proportional to its SCF weight.

Realization (``income_columns``): the donor's wage, capital-gain, interest+dividend and
business income per dollar of net worth, applied to the member's net worth (losses scale
like gains). Wages are scaled too: the IRS top-400 returns averaged about $17m of wages
($6.9bn, 2009), far above the pool's $0.8m, so pay at the top grows with the fortune.
Social Security and retirement income is not: benefits are capped by law, so the member
takes the donor's dollars (SCF 2022 reports 2021 incomes; not uprated), as
``social_security_retirement`` at 62 and over, else private pension income. The SCF
reports interest with dividends and business with partnership and S-corporation income,
so each is split by the IRS SOI shares of returns with AGI of $10m or more
(``soi_top_class_splits``, carried ``soi_targets.csv``, latest year). Capital gains are
all long-term (the SCF does not split them: an assumption), distributions included: a top
return files Schedule D, where they join long-term gains (line 13), so none is
``non_sch_d_capital_gains``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.sources.frame import ObservationFrame
from microplex_assets.sources.reference_microdata import load_scf_top_tail

POOL_MIN_NET_WORTH = 250e6
WINDOW = 40
NEAREST_AGE = 5
RETIREMENT_AGE = 62
SOI_TOP_CLASS = 10_000_000  # AGI lower bound of SOI's top class
WAGES = "employment_income_before_lsr"
GAINS = "long_term_capital_gains_before_response"
INTEREST_DIVIDENDS = (
    "taxable_interest_income",
    "tax_exempt_interest_income",
    "qualified_dividend_income",
    "non_qualified_dividend_income",
)
BUSINESS = ("partnership_income", "s_corp_income")
RETIREMENT = ("social_security_retirement", "taxable_private_pension_income")
INCOME_COLUMNS = (WAGES, GAINS, *INTEREST_DIVIDENDS, *BUSINESS, *RETIREMENT)
DONOR_COLUMNS = ("donor_scf_row", "donor_net_worth", "donor_age", "donor_is_married")


def donor_pool(donors: pd.DataFrame) -> pd.DataFrame:
    """SCF records worth ``POOL_MIN_NET_WORTH`` or more, richest first; ``scf_row`` is
    the record's row in the carried file (the donor id)."""
    pool = donors[donors["net_worth"] >= POOL_MIN_NET_WORTH].rename_axis("scf_row")
    return pool.reset_index().sort_values(["net_worth", "scf_row"], ascending=[False, True])


def match_donors(household: pd.DataFrame, pool: pd.DataFrame, seed: int) -> pd.DataFrame:
    """One SCF donor per member (rows aligned with ``household``), by the module's rule."""
    rng = np.random.default_rng(seed)
    pool = pool.reset_index(drop=True)
    width = min(WINDOW, len(pool))
    pool_age = pool["age"].to_numpy(dtype=float)
    pool_married = pool["is_married"].to_numpy(dtype=bool)
    pool_weight = pool["wgt"].to_numpy(dtype=float)
    order = np.argsort(-household["net_worth"].to_numpy(dtype=float), kind="stable")
    picks = np.empty(len(household), dtype=np.int64)
    ages = household["age_head"].to_numpy(dtype=float)
    married = household["is_married"].to_numpy(dtype=bool)
    for k, row in enumerate(order):
        center = int((k + 0.5) / len(order) * len(pool))
        start = min(max(center - width // 2, 0), len(pool) - width)
        window = np.arange(start, start + width)
        same = window[pool_married[window] == married[row]]
        window = same if len(same) else window
        gap = np.abs(pool_age[window] - ages[row])
        near = window[np.argsort(gap, kind="stable")[:NEAREST_AGE]]
        picks[row] = near[rng.choice(len(near), p=pool_weight[near] / pool_weight[near].sum())]
    chosen = pool.loc[picks]
    return pd.DataFrame(
        {
            "donor_scf_row": chosen["scf_row"].to_numpy(dtype=np.int64),
            "donor_net_worth": chosen["net_worth"].to_numpy(dtype=float),
            "donor_age": chosen["age"].to_numpy(dtype=np.int64),
            "donor_is_married": chosen["is_married"].to_numpy(dtype=bool),
        },
        index=household.index,
    )


def soi_top_class() -> tuple[int, pd.Series]:
    """IRS SOI amounts for returns with AGI of $10m or more, latest carried year
    (``targets/data/soi_targets.csv``: Publication 1304 tables), by variable."""
    from microplex_assets.targets.carried import DATA_DIR

    table = pd.read_csv(DATA_DIR / "soi_targets.csv")
    top = table[
        (table["AGI lower bound"] == SOI_TOP_CLASS)
        & (table["Filing status"] == "All")
        & ~table["Count"].astype(bool)
        & ~table["Taxable only"].astype(bool)
    ]
    year = int(top["Year"].max())
    value = top[top["Year"] == year].drop_duplicates("Variable").set_index("Variable")["Value"]
    return year, value.astype(float)


def soi_top_class_splits() -> dict[str, dict[str, float]]:
    """Shares splitting the SCF's combined items by SOI's $10m+ class: interest and
    dividends four ways, partnership vs S-corporation net income."""
    year, value = soi_top_class()
    qualified = value["qualified_dividends"]
    parts = {
        "taxable_interest_income": value["taxable_interest_income"],
        "tax_exempt_interest_income": value["exempt_interest"],
        "qualified_dividend_income": qualified,
        "non_qualified_dividend_income": value["ordinary_dividends"] - qualified,
    }
    s_corp = value["s_corporation_net_income"] - value["s_corporation_net_losses"]
    pass_through = value["partnership_and_s_corp_income"] - value["partnership_and_s_corp_losses"]
    business = {"partnership_income": pass_through - s_corp, "s_corp_income": s_corp}
    return {
        "year": {"soi": float(year)},
        "interest_dividends": {k: float(v / sum(parts.values())) for k, v in parts.items()},
        "business": {k: float(v / pass_through) for k, v in business.items()},
    }


def income_columns(
    household: pd.DataFrame, donors: pd.DataFrame, matches: pd.DataFrame
) -> pd.DataFrame:
    """The member's income by PolicyEngine variable (rows aligned with ``household``)."""
    donor = donors.loc[matches["donor_scf_row"].to_numpy()]
    worth = household["net_worth"].to_numpy(dtype=float)
    ratio = {
        column: donor[column].to_numpy(dtype=float) / donor["net_worth"].to_numpy(dtype=float)
        for column in ("wageinc", "kginc", "intdivinc", "bussefarminc")
    }
    splits = soi_top_class_splits()
    out = pd.DataFrame(index=household.index)
    out[WAGES] = np.maximum(ratio["wageinc"], 0.0) * worth
    out[GAINS] = ratio["kginc"] * worth
    for column, share in splits["interest_dividends"].items():
        out[column] = ratio["intdivinc"] * worth * share
    for column, share in splits["business"].items():
        out[column] = ratio["bussefarminc"] * worth * share
    retirement = donor["ssretinc"].to_numpy(dtype=float)
    retired = household["age_head"].to_numpy(dtype=float) >= RETIREMENT_AGE
    out[RETIREMENT[0]] = np.where(retired, retirement, 0.0)
    out[RETIREMENT[1]] = np.where(retired, 0.0, retirement)
    return out


def with_scf_income(frame: ObservationFrame, seed: int) -> ObservationFrame:
    """The list frame with each member's SCF donor and income columns (see module doc)."""
    donors, source = load_scf_top_tail()
    household = frame.tables["household"]
    matches = match_donors(household, donor_pool(donors), seed)
    income = income_columns(household, donors, matches)
    household = pd.concat(
        [
            household.drop(columns=[*DONOR_COLUMNS, *INCOME_COLUMNS], errors="ignore"),
            matches,
            income,
        ],
        axis=1,
    )
    provenance = {
        **frame.provenance,
        "income": {
            "kind": "real",
            "donors": source,
            "seed": int(seed),
            "rule": "rank-aligned window of SCF records worth $250m+, same marriage, nearest "
            "age, drawn by SCF weight; wage and capital income = donor ratio x member net "
            "worth, SS/retirement = donor dollars",
            "soi_splits": soi_top_class_splits(),
            "matches": donor_summary(household),
        },
    }
    result = ObservationFrame(frame.source, frame.year, {"household": household}, {}, provenance)
    result.validate()
    return result


def donor_summary(household: pd.DataFrame) -> dict[str, Any]:
    """How members met their donors: reuse, wealth gap, age gap, marriage agreement."""
    age_gap = (household["donor_age"] - household["age_head"]).abs()
    return {
        "members": int(len(household)),
        "distinct_donor_records": int(household["donor_scf_row"].nunique()),
        "donor_net_worth_min": float(household["donor_net_worth"].min()),
        "donor_net_worth_max": float(household["donor_net_worth"].max()),
        "member_to_donor_net_worth_median": float(
            (household["net_worth"] / household["donor_net_worth"]).median()
        ),
        "age_gap_mean": float(age_gap.mean()),
        "age_gap_max": int(age_gap.max()),
        "marriage_matched": int((household["donor_is_married"] == household["is_married"]).sum()),
    }


# IRS SOI, "The 400 Individual Income Tax Returns Reporting the Largest Adjusted Gross
# Incomes Each Year, 1992-2014", Table 1: AGI of the top 400 returns. Forbes: the 2014
# Forbes 400 were worth $2.29tn in all. The top 400 by AGI are not the 400 richest.
SOI_TOP_400_AGI = {2013: 105.973516e9, 2014: 127.2e9}
FORBES_400_WEALTH_2014 = 2.29e12
TOP_400_SOURCE = (
    "IRS SOI, The 400 Individual Income Tax Returns Reporting the Largest AGIs, 1992-2014, "
    "Table 1 (TY2013 $105.97bn; TY2014 $127.2bn, cutoff $126.8m); Forbes 400 2014 $2.29tn"
)
SHARES = {
    "capital gains": ((GAINS,), ("capital_gains_gross",)),
    "wages": ((WAGES,), ("employment_income",)),
    "interest and dividends": (
        INTEREST_DIVIDENDS,
        ("taxable_interest_income", "exempt_interest", "ordinary_dividends"),
    ),
    "partnership and S-corp": (BUSINESS, ("partnership_and_s_corp_income",)),
}


def published_comparison(household: pd.DataFrame) -> pd.DataFrame:
    """Spine income beside published figures: the IRS top-400 AGI (level, and per dollar
    of Forbes 400 wealth) and the composition of SOI's $10m+ AGI class."""
    income = household[list(INCOME_COLUMNS)].to_numpy(dtype=float)
    worth = household["net_worth"].to_numpy(dtype=float) @ household["household_weight"]
    total = float(household["household_weight"].to_numpy() @ income.sum(axis=1))
    yield_2014 = SOI_TOP_400_AGI[2014] / FORBES_400_WEALTH_2014
    rows = [
        ("income total ($bn)", total / 1e9, SOI_TOP_400_AGI[2014] / 1e9, TOP_400_SOURCE),
        ("income / list net worth", total / worth, yield_2014, TOP_400_SOURCE),
        (
            "income at the 2014 yield on this list ($bn)",
            total / 1e9,
            yield_2014 * worth / 1e9,
            "TY2014 top-400 AGI / Forbes 400 2014 wealth x this list's net worth",
        ),
    ]
    year, soi = soi_top_class()
    soi_agi = soi["adjusted_gross_income"]
    soi_agi_source = f"IRS SOI TY{year}, returns with AGI $10m+ (carried soi_targets.csv)"
    for label, (ours, theirs) in SHARES.items():
        mine = float(household["household_weight"] @ household[list(ours)].sum(axis=1))
        published = float(sum(soi[v] for v in theirs))
        if label == "partnership and S-corp":
            published -= float(soi["partnership_and_s_corp_losses"])
        rows.append(
            (f"{label}: share of income", mine / total, published / soi_agi, soi_agi_source)
        )
    return pd.DataFrame(rows, columns=["item", "spine", "published", "source"])


def income_totals(household: pd.DataFrame) -> pd.DataFrame:
    """Weighted total, share and members with any, per income variable of the list."""
    weight = household["household_weight"].to_numpy(dtype=float)
    totals = {c: float(weight @ household[c].to_numpy(dtype=float)) for c in INCOME_COLUMNS}
    whole = sum(totals.values())
    return pd.DataFrame(
        {
            "variable": list(totals),
            "total_bn": [v / 1e9 for v in totals.values()],
            "share": [v / whole for v in totals.values()],
            "members_nonzero": [int((household[c] != 0).sum()) for c in INCOME_COLUMNS],
        }
    )
