"""Stage-2 tax-record source: the IRS SOI Public Use File (PUF) as a tax-record donor.

Format. The SOI individual PUF (``puf_2015.csv``) is one comma-separated row per return with
upper-case headers: ``RECID`` (record id), ``MARS`` (filing status 1-4), ``XTOT``
(exemptions), ``DSI`` (dependent filer), ``EIC`` (EITC children), ``N24`` (CTC children),
``S006`` (weight x 100: two implied decimals), ``AGIR1`` (AGI range code), ``FLPDYR`` (tax
year, when present) and whole-dollar amounts ``E.....`` / ``P.....`` named after their form
lines. Four aggregate records (``RECID`` 999996-999999, ``MARS`` 0) summarise suppressed
extreme returns; they are not returns and are dropped (the count is in provenance).

The optional companion ``demographics_2015.csv`` carries ``RECID``, ``AGERANGE`` (filer age
band), ``AGEDP1``-``AGEDP3`` (age bands of up to three dependents), ``EARNSPLIT`` and
``GENDER``; it is linked on ``RECID``.

Mapping to the contract in ``tax_records.py`` (amounts on the head, policyengine-us names):

* employment_income_before_lsr = E00200, self_employment_income_before_lsr = E00900;
* taxable / tax-exempt interest = E00300 / E00400; qualified dividends = E00650,
  non-qualified = max(E00600 - E00650, 0) (E00600 includes qualified dividends);
* long_term_capital_gains_before_response = P23250, short_term_capital_gains = P22250,
  non_sch_d_capital_gains = E01100 (capital gain distributions, filled only when no
  Schedule D is filed: a Schedule D filer's are inside P23250). Kept apart, not added to
  P23250 as Tax-Calculator does, so SOI's distribution targets have support;
  PolicyEngine taxes both as long-term gains;
* E26270 (partnership and S-corporation net income) goes to partnership_income in full and
  s_corp_income is 0, unless the S-corporation columns E26190 / E26180 (income / loss) are
  present: then s_corp_income = E26190 - E26180 and partnership_income = E26270 - that;
* estate_income = E26390 - E26400 (estate and trust net income / loss) when both exist,
  else 0;
* rental_income = E25850 - E25860 (rent and royalty net income / loss) when both exist,
  else E02000 - E26270 - estate_income (Schedule E total less partnership/S-corp and
  estates: rents, royalties and REMICs);
* taxable_private_pension_income = E01700, taxable_ira_distributions = E01400,
  unemployment_compensation = E02300, charitable cash / non-cash = E19800 / E20100,
  real_estate_taxes = E18500, home_mortgage_interest = E19200, other_medical_expenses =
  E17500; extras: farm_income = E02100, social_security = E02400 (as retirement at head age
  >= 62, else disability), tax_exempt_private_pension_income = max(E01500 - E01700, 0);
* adjusted_gross_income = E00100; tax_unit_weight = S006 / 100.

Demographics. With the demographics file, age_head is the AGERANGE band's representative
age (``AGERANGE_AGE``; 0 = not given -> 40) and dependent ages come from AGEDP1-3
(``AGEDP_AGE``). Without it, age_head follows a deterministic rule (``rule_age_head``):
dependent filers (DSI = 1) 18, returns with Social Security (E02400 > 0) 70, others 40.
In both cases age_spouse = age_head for joint returns (MARS 2), else 0, and
count_dependents = max(XTOT - 1 - [MARS = 2], 0): XTOT counts every exemption.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.sources.frame import ObservationFrame, SourceFormatError
from microplex_assets.sources.readers import ColumnSpec, file_provenance, read_columns
from microplex_assets.sources.tax_records import (
    AGI,
    FILING_STATUS,
    ID,
    TAX_RECORD_AMOUNTS,
    TAX_UNIT_TABLE,
    WEIGHT,
    validate_tax_records,
)
from microplex_assets.uprating import uprate_columns

SOURCE = "irs_puf"
DEFAULT_PUF_YEAR = 2015
WEIGHT_SCALE = 100.0  # S006 holds the weight x 100
AGGREGATE_RECIDS = (999996, 999997, 999998, 999999)
SOCIAL_SECURITY_RETIREMENT_AGE = 62

# AGERANGE code -> representative age: the floor of each band's midpoint (SOI bands
# under 26, 26-34, 35-44, 45-54, 55-64, 65+; the open top band is taken as 65-79).
AGERANGE_AGE: dict[int, int] = {0: 40, 1: 21, 2: 30, 3: 39, 4: 49, 5: 59, 6: 72}
# AGEDP code -> representative dependent age (bands under 5, 5-12, 13-16, 17-18, 19-23, 24+).
AGEDP_AGE: dict[int, int] = {0: 0, 1: 2, 2: 8, 3: 14, 4: 17, 5: 21, 6: 30}
RULE_AGE_DEPENDENT_FILER = 18
RULE_AGE_SOCIAL_SECURITY = 70
RULE_AGE_DEFAULT = 40

# Contract amount -> (column, column subtracted or None, clip at zero).
SIMPLE_AMOUNTS: dict[str, tuple[str, str | None, bool]] = {
    "employment_income_before_lsr": ("E00200", None, False),
    "self_employment_income_before_lsr": ("E00900", None, False),
    "taxable_interest_income": ("E00300", None, False),
    "tax_exempt_interest_income": ("E00400", None, False),
    "qualified_dividend_income": ("E00650", None, False),
    "non_qualified_dividend_income": ("E00600", "E00650", True),
    "long_term_capital_gains_before_response": ("P23250", None, False),
    "short_term_capital_gains": ("P22250", None, False),
    # Form 1099-DIV box 2a is never negative; the contract holds it non-negative.
    "non_sch_d_capital_gains": ("E01100", None, True),
    "taxable_private_pension_income": ("E01700", None, False),
    "taxable_ira_distributions": ("E01400", None, False),
    "unemployment_compensation": ("E02300", None, False),
    "charitable_cash_donations": ("E19800", None, False),
    "charitable_non_cash_donations": ("E20100", None, False),
    "real_estate_taxes": ("E18500", None, False),
    "home_mortgage_interest": ("E19200", None, False),
    "other_medical_expenses": ("E17500", None, False),
    # Extras beyond the contract, still policyengine-us person inputs.
    "farm_income": ("E02100", None, False),
    "tax_exempt_private_pension_income": ("E01500", "E01700", True),
}
AMOUNT_COLUMNS = ("E00100", "E00200", "E00300", "E00400", "E00600", "E00650", "E00900",
                  "E01100", "E01400", "E01500", "E01700", "E02000", "E02100", "E02300",
                  "E02400", "E17500", "E18500", "E19200", "E19800", "E20100", "E26270",
                  "P22250", "P23250")  # fmt: skip
OPTIONAL_AMOUNT_COLUMNS = ("E25850", "E25860", "E26190", "E26180", "E26390", "E26400")
PUF_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("RECID", "int", non_negative=True),
    ColumnSpec("MARS", "int", allowed=(0, 1, 2, 3, 4, 5)),
    ColumnSpec("XTOT", "int", non_negative=True),
    ColumnSpec("DSI", "int", allowed=(0, 1)),
    ColumnSpec("EIC", "int", non_negative=True),
    ColumnSpec("S006", "int", non_negative=True),
    ColumnSpec("AGIR1", "int", non_negative=True),
    ColumnSpec("N24", "int", required=False, non_negative=True),
    ColumnSpec("FLPDYR", "int", required=False),
    *(ColumnSpec(c) for c in AMOUNT_COLUMNS),
    *(ColumnSpec(c, required=False) for c in OPTIONAL_AMOUNT_COLUMNS),
)
DEMOGRAPHIC_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("RECID", "int", non_negative=True),
    ColumnSpec("AGERANGE", "int", allowed=tuple(AGERANGE_AGE)),
    ColumnSpec("AGEDP1", "int", allowed=tuple(AGEDP_AGE)),
    ColumnSpec("AGEDP2", "int", allowed=tuple(AGEDP_AGE)),
    ColumnSpec("AGEDP3", "int", allowed=tuple(AGEDP_AGE)),
    ColumnSpec("EARNSPLIT", "int", required=False, non_negative=True),
    ColumnSpec("GENDER", "int", required=False, non_negative=True),
)


def _column(puf: pd.DataFrame, name: str) -> np.ndarray:
    return puf[name].fillna(0.0).to_numpy(float)


def require_filled(frame: pd.DataFrame, specs: tuple[ColumnSpec, ...], path: Path) -> None:
    """Required columns may not hold empty cells: a blank amount is not a zero."""
    for spec in specs:
        if spec.required and frame[spec.name].isna().any():
            row = int(np.flatnonzero(frame[spec.name].isna().to_numpy())[0])
            raise SourceFormatError(
                f"{SOURCE}: {path} column '{spec.name}' is empty at row {row + 1}; "
                f"expected {spec.kind}"
            )


def puf_year(puf: pd.DataFrame, path: Path) -> int:
    """Tax year of the file: its single FLPDYR value, else 2015."""
    if "FLPDYR" not in puf.columns or puf["FLPDYR"].isna().all():
        return DEFAULT_PUF_YEAR
    years = puf["FLPDYR"].dropna().unique()
    if len(years) != 1:
        raise SourceFormatError(
            f"{SOURCE}: {path} column 'FLPDYR' holds several years "
            f"{sorted(int(y) for y in years)}; expected one"
        )
    return int(years[0])


def split_pass_through(puf: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, str]:
    """(partnership_income, s_corp_income, rule) from E26270; see the module docstring."""
    combined = _column(puf, "E26270")
    if {"E26190", "E26180"} <= set(puf.columns):
        s_corp = _column(puf, "E26190") - _column(puf, "E26180")
        return combined - s_corp, s_corp, "s_corp = E26190 - E26180; partnership = E26270 - s_corp"
    return combined, np.zeros(len(puf)), "E26270 all to partnership_income (no S-corp columns)"


def estate(puf: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Estate and trust income and the rule used; see the module docstring."""
    if {"E26390", "E26400"} <= set(puf.columns):
        return _column(puf, "E26390") - _column(puf, "E26400"), "E26390 - E26400"
    return np.zeros(len(puf)), "0 (no E26390 / E26400)"


def rental(puf: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Rental income and the rule used; see the module docstring."""
    if {"E25850", "E25860"} <= set(puf.columns):
        return _column(puf, "E25850") - _column(puf, "E25860"), "E25850 - E25860"
    estates, rule = estate(puf)
    if rule.startswith("0"):
        return _column(puf, "E02000") - _column(puf, "E26270"), "E02000 - E26270"
    remainder = _column(puf, "E02000") - _column(puf, "E26270") - estates
    return remainder, "E02000 - E26270 - (E26390 - E26400)"


def rule_age_head(puf: pd.DataFrame) -> np.ndarray:
    """Deterministic head age without demographics: dependent filer 18, Social Security 70."""
    return np.where(
        puf["DSI"].to_numpy() == 1,
        RULE_AGE_DEPENDENT_FILER,
        np.where(_column(puf, "E02400") > 0, RULE_AGE_SOCIAL_SECURITY, RULE_AGE_DEFAULT),
    ).astype(np.int64)


def read_demographics(path: Path, puf: pd.DataFrame, puf_path: Path) -> pd.DataFrame:
    """Demographics aligned row by row to ``puf`` (missing rows all-NaN); RECID must link.

    A demographics RECID absent from the PUF is an error here; a return absent from the
    demographics file is judged by the caller, after the aggregate records are dropped.
    """
    demo = read_columns(path, DEMOGRAPHIC_COLUMNS, SOURCE)
    require_filled(demo, DEMOGRAPHIC_COLUMNS, path)
    duplicated = demo["RECID"].duplicated()
    if duplicated.any():
        raise SourceFormatError(
            f"{SOURCE}: {path} repeats RECID {int(demo.loc[duplicated, 'RECID'].iloc[0])}"
        )
    orphan = ~demo["RECID"].isin(puf["RECID"])
    if orphan.any():
        raise SourceFormatError(
            f"{SOURCE}: {int(orphan.sum())} rows of {path} have RECID not found in {puf_path} "
            f"(first: RECID {int(demo.loc[orphan, 'RECID'].iloc[0])})"
        )
    return demo.set_index("RECID").reindex(puf["RECID"].to_numpy()).reset_index(drop=True)


def _uprate(
    table: pd.DataFrame, variables: list[str], system: Any, source_year: int, year: int
) -> dict[str, Any]:
    """Multiply each amount by PolicyEngine's factor from the PUF year to ``year``."""
    if system is None:
        return {"status": "not uprated", "reason": "no policyengine system given"}
    return uprate_columns(table, variables, system, source_year, year)


def load_puf(
    puf_path: Path | str,
    year: int,
    system: Any = None,
    demographics_path: Path | str | None = None,
    missing_demographics: str = "error",
) -> ObservationFrame:
    """Load the SOI PUF as a tax-record donor (``tax_records.py`` contract).

    Amounts are uprated from the PUF year to ``year`` only when ``system`` (the
    policyengine-us tax-benefit system) is given. ``missing_demographics`` decides what a
    return absent from the demographics file means: "error" or "rule" (age rule applies).
    """
    if missing_demographics not in ("error", "rule"):
        raise ValueError(
            f"missing_demographics must be 'error' or 'rule', not {missing_demographics!r}"
        )
    puf_path = Path(puf_path)
    puf = read_columns(puf_path, PUF_COLUMNS, SOURCE)
    require_filled(puf, PUF_COLUMNS, puf_path)
    duplicated = puf["RECID"].duplicated()
    if duplicated.any():
        raise SourceFormatError(
            f"{SOURCE}: {puf_path} repeats RECID {int(puf.loc[duplicated, 'RECID'].iloc[0])}"
        )
    source_year = puf_year(puf, puf_path)
    demographics = None
    if demographics_path is not None:
        demographics_path = Path(demographics_path)
        demographics = read_demographics(demographics_path, puf, puf_path)

    aggregate = (puf["MARS"] == 0).to_numpy() | puf["RECID"].isin(AGGREGATE_RECIDS).to_numpy()
    puf = puf[~aggregate].reset_index(drop=True)
    rule_rows = 0
    if demographics is not None:
        demographics = demographics[~aggregate].reset_index(drop=True)
        absent = demographics["AGERANGE"].isna().to_numpy()
        if absent.any() and missing_demographics == "error":
            raise SourceFormatError(
                f"{SOURCE}: {int(absent.sum())} returns of {puf_path} have RECID not found in "
                f"{demographics_path} (first: RECID {int(puf['RECID'].to_numpy()[absent][0])})"
            )
        rule_rows = int(absent.sum())

    mars = puf["MARS"].to_numpy(np.int64)
    joint = mars == 2
    if demographics is None:
        age_head = rule_age_head(puf)
        age_source = "rule: DSI=1 -> 18, E02400>0 -> 70, else 40 (no demographics file)"
    else:
        banded = demographics["AGERANGE"].map(AGERANGE_AGE).to_numpy()
        age_head = np.where(np.isnan(banded.astype(float)), rule_age_head(puf), banded)
        age_head = age_head.astype(np.int64)
        age_source = "demographics AGERANGE band ages " + str(AGERANGE_AGE)
    table = pd.DataFrame(
        {
            ID: puf["RECID"].to_numpy(np.int64),
            WEIGHT: puf["S006"].to_numpy(float) / WEIGHT_SCALE,
            FILING_STATUS: mars,
            "age_head": age_head,
            "age_spouse": np.where(joint, age_head, 0).astype(np.int64),
            "count_dependents": np.clip(puf["XTOT"].to_numpy(np.int64) - 1 - joint, 0, None),
            AGI: _column(puf, "E00100"),
            "agi_range": puf["AGIR1"].to_numpy(np.int64),
            "dependent_filer": puf["DSI"].to_numpy(np.int64),
            "eitc_children": puf["EIC"].to_numpy(np.int64),
        }
    )
    if "N24" in puf.columns:
        table["ctc_children"] = puf["N24"].fillna(0).to_numpy(np.int64)
    if demographics is not None:
        for k in (1, 2, 3):
            codes = demographics[f"AGEDP{k}"].fillna(0).astype(int)
            table[f"age_dependent_{k}"] = codes.map(AGEDP_AGE).to_numpy(np.int64)
        listed = (demographics[["AGEDP1", "AGEDP2", "AGEDP3"]].fillna(0) > 0).sum(axis=1)
        table["listed_dependents"] = listed.to_numpy(np.int64)

    clipped: dict[str, int] = {}
    for variable, (column, minus, clip) in SIMPLE_AMOUNTS.items():
        amount = _column(puf, column)
        if minus is not None:
            amount = amount - _column(puf, minus)
        if clip:
            clipped[variable] = int((amount < 0).sum())
            amount = np.clip(amount, 0, None)
        table[variable] = amount
    partnership, s_corp, pass_through_rule = split_pass_through(puf)
    table["partnership_income"] = partnership
    table["s_corp_income"] = s_corp
    table["rental_income"], rental_rule = rental(puf)
    table["estate_income"], estate_rule = estate(puf)
    social_security = _column(puf, "E02400")
    retired = age_head >= SOCIAL_SECURITY_RETIREMENT_AGE
    table["social_security_retirement"] = np.where(retired, social_security, 0.0)
    table["social_security_disability"] = np.where(retired, 0.0, social_security)

    amounts = [*TAX_RECORD_AMOUNTS, "farm_income", "tax_exempt_private_pension_income",
               "social_security_retirement", "social_security_disability", AGI]  # fmt: skip
    uprating = _uprate(table, amounts, system, source_year, year)

    files = {"puf": file_provenance(puf_path)}
    if demographics_path is not None:
        files["demographics"] = file_provenance(demographics_path)
    frame = ObservationFrame(
        source=SOURCE,
        year=year,
        tables={TAX_UNIT_TABLE: table},
        links={},
        provenance={
            "kind": "real",
            "files": files,
            "year": year,
            "source_year": source_year,
            "uprating": uprating,
            "records": len(table),
            "aggregate_records_dropped": int(aggregate.sum()),
            "age_source": age_source,
            "returns_without_demographics_given_rule_ages": rule_rows,
            "negative_differences_clipped": clipped,
            "pass_through_split": pass_through_rule,
            "rental_income_rule": rental_rule,
            "estate_income_rule": estate_rule,
            "notes": [
                "tax_unit_weight = S006 / 100 (two implied decimals)",
                "long_term_capital_gains_before_response = P23250, "
                "non_sch_d_capital_gains = E01100 (distributions without Schedule D)",
                "age_spouse = age_head on joint returns (the PUF has no spouse age)",
                "count_dependents = max(XTOT - 1 - [MARS == 2], 0)",
                "social security E02400 on the head: retirement at age >= 62, else disability",
            ],
        },
    )
    validate_tax_records(frame)
    return frame
