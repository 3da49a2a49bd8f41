"""Stage-2 SIPP source: the Census SIPP public-use file as person-years and households.

Format. Since the 2018 panel Census ships each year as one pipe-delimited text file with an
upper-case header (``pu2023.csv`` inside ``pu2023_csv.zip``), one row per person-month:

* a person is ``(SSUID, PNUM)``; ``SSUID`` is a 12-digit sample-unit id kept as text;
  ``MONTHCODE`` (1-12) is the reference month; the file named ``puYYYY`` describes the
  calendar year before (``pu2023`` -> 2022);
* the household of a month is ``(SSUID, ERESIDENCEID)`` (the Census reading guide's key);
  older files and extracts name the address id ``SHHADID`` instead; either is accepted;
* ``WPFINWGT`` is the monthly person weight; SIPP publishes no household weight;
* amounts are monthly dollars: ``TPTOTINC`` total income, ``TPEARN`` earnings from all
  jobs, ``TJBn_MSUM`` earnings of job n (n = 1..7) with ``EJBn_JBORSE`` its type
  (1 employer, 2 self-employed, 3 other arrangement), ``TSSSAMT`` Social Security,
  ``TSSI_AMT`` SSI, ``TSNAP_AMT`` SNAP, ``TTANF_AMT`` TANF, ``TWIC_AMT`` WIC; blank cells are
  "not in universe" and count as 0; ``RDIS`` (2018+) or ``EDISABL`` (2014 panel) is 1 for a
  person with a disability; ``TEHC_ST`` is the state of residence (optional).

Aggregation to person-years: amounts are summed over the months a person is observed
(``months_observed`` says how many; a person seen for fewer than 12 months has a partial
year, not an annualised one). The person's weight, age, household and state are those of
their last observed month (December for a full-year respondent): the December weight is
the cross-section at the end of the reference year, which is the usual calendar-year
choice when SIPP longitudinal weights are not used. A household is ``(SSUID, residence id)``
in that last month; its weight is the last-month weight of its lowest-numbered member
(SIPP has no household weight, and members' weights differ only by person adjustments).

Mapping: job earnings of employer and other jobs -> employment_income_before_lsr, of
self-employed jobs -> self_employment_income_before_lsr (without job columns, ``TPEARN``
all goes to employment_income_before_lsr and a note says so); ``TSSSAMT`` ->
social_security_retirement at age >= 62, else social_security_disability; ``TSSI_AMT`` ->
ssi_reported; SNAP, TANF and WIC amounts are ``*_reported`` diagnostics (PolicyEngine
computes them), as is ``TPTOTINC``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from microplex_assets.sources.frame import ObservationFrame, SourceFormatError
from microplex_assets.sources.readers import ColumnSpec, file_provenance, read_columns

SOURCE = "sipp"
SEPARATOR = "|"
JOBS = range(1, 8)
SELF_EMPLOYED = 2  # EJBn_JBORSE code for a self-employed (business-owner) job
SOCIAL_SECURITY_RETIREMENT_AGE = 62
RESIDENCE_KEYS = ("ERESIDENCEID", "SHHADID")
DISABILITY_FLAGS = ("RDIS", "EDISABL")
MONTHLY_AMOUNTS: dict[str, str] = {
    "TPTOTINC": "total_income_reported",
    "TSSI_AMT": "ssi_reported",
    "TSNAP_AMT": "snap_reported",
    "TTANF_AMT": "tanf_reported",
}
OPTIONAL_AMOUNTS: dict[str, str] = {"TWIC_AMT": "wic_reported"}
COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("SSUID", "str"),
    ColumnSpec("PNUM", "int", non_negative=True),
    ColumnSpec("MONTHCODE", "int", allowed=tuple(range(1, 13))),
    *(ColumnSpec(key, "str", required=False) for key in RESIDENCE_KEYS),
    ColumnSpec("WPFINWGT", non_negative=True),
    ColumnSpec("TAGE", "int", non_negative=True),
    ColumnSpec("ESEX", "int", allowed=(1, 2)),
    ColumnSpec("TSSSAMT", non_negative=True),
    *(ColumnSpec(column) for column in MONTHLY_AMOUNTS),
    *(ColumnSpec(column, required=False) for column in OPTIONAL_AMOUNTS),
    ColumnSpec("TPEARN", required=False),
    *(ColumnSpec(f"TJB{n}_MSUM", required=False) for n in JOBS),
    *(ColumnSpec(f"EJB{n}_JBORSE", "int", required=False, allowed=(1, 2, 3)) for n in JOBS),
    *(ColumnSpec(flag, "int", required=False) for flag in DISABILITY_FLAGS),
    ColumnSpec("TEHC_ST", "int", required=False),
)


def _fail(path: Path, message: str) -> SourceFormatError:
    return SourceFormatError(f"{SOURCE}: {path} {message}")


def reference_year(path: Path, year: int | None) -> int:
    """The calendar year described: given, or the file name's year minus one (pu2023 -> 2022)."""
    if year is not None:
        return int(year)
    match = re.search(r"pu(\d{4})", path.name, flags=re.IGNORECASE)
    if match is None:
        raise _fail(path, "does not name its year (expected 'puYYYY...'); pass year=")
    return int(match.group(1)) - 1


def _residence_key(months: pd.DataFrame, path: Path) -> str:
    for key in RESIDENCE_KEYS:
        if key in months.columns:
            if months[key].eq("").any():
                raise _fail(path, f"column '{key}' has {int(months[key].eq('').sum())} blanks")
            return key
    raise _fail(path, f"lacks a household key: expected one of {list(RESIDENCE_KEYS)}")


def _check_person_months(months: pd.DataFrame, path: Path) -> None:
    """A person may appear once per month; required ids and weights must be filled."""
    for column in ("PNUM", "MONTHCODE", "WPFINWGT", "TAGE", "ESEX"):
        blank = months[column].isna()
        if blank.any():
            row = int(np.flatnonzero(blank.to_numpy())[0])
            raise _fail(path, f"column '{column}' is blank at row {row + 1}")
    keys = ["SSUID", "PNUM", "MONTHCODE"]
    duplicated = months.duplicated(keys)
    if duplicated.any():
        first = months.loc[duplicated, keys].iloc[0].to_dict()
        raise _fail(
            path, f"has {int(duplicated.sum())} duplicate person-months {keys} (first: {first})"
        )


def _earnings(months: pd.DataFrame) -> tuple[pd.Series, pd.Series, str]:
    """Monthly wage and self-employment earnings, split by job type where the file allows."""
    jobs = [n for n in JOBS if f"TJB{n}_MSUM" in months and f"EJB{n}_JBORSE" in months]
    if jobs:
        wage = pd.Series(0.0, index=months.index)
        self_employed = pd.Series(0.0, index=months.index)
        for n in jobs:
            amount = months[f"TJB{n}_MSUM"].fillna(0.0)
            own = months[f"EJB{n}_JBORSE"].eq(SELF_EMPLOYED).fillna(False)
            wage += amount.where(~own, 0.0)
            self_employed += amount.where(own, 0.0)
        return wage, self_employed, f"TJBn_MSUM split by EJBn_JBORSE for jobs {jobs}"
    if "TPEARN" in months:
        zero = pd.Series(0.0, index=months.index)
        return months["TPEARN"].fillna(0.0), zero, "TPEARN (no job columns): all employment"
    zero = pd.Series(0.0, index=months.index)
    return zero, zero, "no earnings columns: earnings are 0"


def _person_years(months: pd.DataFrame, residence: str) -> tuple[pd.DataFrame, str]:
    """Sum amounts over months; take weight, age, household and state from the last month."""
    wage, self_employed, earnings_rule = _earnings(months)
    amounts = {
        "employment_income_before_lsr": wage,
        "self_employment_income_before_lsr": self_employed,
        "_social_security": months["TSSSAMT"].fillna(0.0),
        **{name: months[c].fillna(0.0) for c, name in MONTHLY_AMOUNTS.items()},
        **{name: months[c].fillna(0.0) for c, name in OPTIONAL_AMOUNTS.items() if c in months},
    }
    flag = next((f for f in DISABILITY_FLAGS if f in months.columns), None)
    work = months.assign(
        **amounts,
        _disabled=months[flag].eq(1).fillna(False) if flag else False,
        _one=1,
    ).sort_values(["SSUID", "PNUM", "MONTHCODE"])
    grouped = work.groupby(["SSUID", "PNUM"], sort=True)
    last = grouped.tail(1).set_index(["SSUID", "PNUM"])
    sums = grouped[list(amounts)].sum()
    person = pd.DataFrame(
        {
            "months_observed": grouped["_one"].sum(),
            "last_month": last["MONTHCODE"].astype(np.int64),
            "age": last["TAGE"].astype(np.int64),
            "is_female": last["ESEX"].eq(2),
            "is_disabled": grouped["_disabled"].any(),
            "person_weight_reported": last["WPFINWGT"].astype(float),
            "_residence": last[residence],
            "_state": last["TEHC_ST"] if "TEHC_ST" in last.columns else np.nan,
        }
    ).join(sums)
    return person.reset_index(), earnings_rule


def load_sipp(path: Path | str, year: int | None = None) -> ObservationFrame:
    """Load a SIPP public-use file as person-years grouped into last-month households."""
    path = Path(path)
    data_year = reference_year(path, year)
    months = read_columns(path, COLUMNS, SOURCE, sep=SEPARATOR, upper_case_header=True)
    residence = _residence_key(months, path)
    _check_person_months(months, path)
    person, earnings_rule = _person_years(months, residence)

    keys = ["SSUID", "_residence"]
    person["household_id"] = person.groupby(keys, sort=True).ngroup().astype(np.int64) + 1
    person = person.sort_values(["household_id", "PNUM"]).reset_index(drop=True)
    person.insert(0, "person_id", np.arange(1, len(person) + 1, dtype=np.int64))
    social_security = person.pop("_social_security").to_numpy(dtype=float)
    retired = person["age"].to_numpy() >= SOCIAL_SECURITY_RETIREMENT_AGE
    person["social_security_retirement"] = np.where(retired, social_security, 0.0)
    person["social_security_disability"] = np.where(retired, 0.0, social_security)

    first = person.groupby("household_id", sort=True).head(1)
    household = pd.DataFrame(
        {
            "household_id": first["household_id"].to_numpy(dtype=np.int64),
            "ssuid": first["SSUID"].to_numpy(),
            "residence_id": first["_residence"].to_numpy(),
            "household_weight": first["person_weight_reported"].to_numpy(dtype=float),
            "persons": person.groupby("household_id", sort=True).size().to_numpy(np.int64),
        }
    )
    if "TEHC_ST" in months.columns:
        state = first["_state"].astype("Int64").reset_index(drop=True)
        household["state_fips"] = state.astype(np.int64) if state.notna().all() else state
    person = person.rename(columns={"SSUID": "ssuid", "PNUM": "pnum"}).drop(
        columns=["_residence", "_state"]
    )

    frame = ObservationFrame(
        source=SOURCE,
        year=data_year,
        tables={"household": household, "person": person},
        links={"person": ["household"]},
        provenance={
            "kind": "real",
            "files": {"sipp": file_provenance(path)},
            "year": data_year,
            "person_months": len(months),
            "persons": len(person),
            "households": len(household),
            "persons_with_partial_year": int((person["months_observed"] < 12).sum()),
            "household_key": ["SSUID", residence],
            "earnings_rule": earnings_rule,
            "state_column": "TEHC_ST" if "TEHC_ST" in months.columns else None,
            "notes": [
                "amounts are sums of monthly amounts over observed months (not annualised)",
                "person weight, age, household and state from the last observed month "
                "(WPFINWGT of December for full-year respondents)",
                "household_weight = last-month WPFINWGT of the lowest PNUM member "
                "(SIPP has no household weight)",
                f"TSSSAMT: retirement at age >= {SOCIAL_SECURITY_RETIREMENT_AGE}, else disability",
                "snap/tanf/wic/ssi *_reported are diagnostics, not exported inputs",
            ],
        },
    )
    frame.validate()
    return frame
