"""Stage-2 CPS source: the Census CPS ASEC public-use CSV files as households, families, persons.

Format. Since the 2019 survey Census publishes each ASEC as three comma-separated files with
upper-case headers (``asecpubYYcsv.zip``): ``hhpubYY.csv`` (one row per household),
``ffpubYY.csv`` (one row per family) and ``pppubYY.csv`` (one row per person). Keys:

* household ``H_SEQ``; family ``(FH_SEQ, FFPOS)``; person ``(PH_SEQ, A_LINENO)`` with its
  family at ``(PH_SEQ, PF_SEQ)``; since 2019 also ``TAX_ID`` (Census tax-model unit, unique
  in the file) and ``SPM_ID`` (SPM resource unit);
* weights ``HSUP_WGT``, ``FSUP_WGT`` and ``MARSUPWT`` carry two implied decimals (the file
  holds the weight x 100 as an integer), so they are divided by 100 here;
* amounts are whole dollars for the income year, the calendar year before the survey
  (``H_YEAR`` - 1); "not in universe" is 0 in the CSV files.

Mapping (person amounts are policyengine-us person input variables):

* ``WSAL_VAL`` -> employment_income_before_lsr, ``SEMP_VAL`` ->
  self_employment_income_before_lsr, ``FRSE_VAL`` -> farm_income (PolicyEngine's
  ``employment_income`` etc. are sums of these ``_before_lsr`` inputs and a response);
* ``INT_VAL`` -> taxable_interest_income in full: the ASEC does not separate tax-exempt
  interest;
* ``DIV_VAL`` is all dividends; ``QUALIFIED_DIVIDEND_SHARE`` of it becomes
  qualified_dividend_income and the rest non_qualified_dividend_income. The share is the
  approximate ratio of qualified to ordinary dividends on individual returns in SOI
  Publication 1304 Table 1.4 (recent years: roughly three quarters); the ASEC itself has no
  information on the split, so one national share is the least-assumption rule;
* ``RNT_VAL`` -> rental_income; ``UC_VAL`` -> unemployment_compensation;
  ``PNSN_VAL + ANN_VAL`` -> taxable_private_pension_income (all treated as taxable);
* ``SS_VAL`` -> social_security_retirement at age >= 62, else social_security_disability
  (the ASEC reason codes are not used: survivors and dependents would need them);
* optional ``CAP_VAL`` -> long_term_capital_gains_before_response, ``CSP_VAL`` ->
  child_support_received, ``VET_VAL`` -> veterans_benefits, ``WC_VAL`` ->
  workers_compensation;
* reported benefits ``SSI_VAL`` -> ssi_reported and optional ``PAW_VAL`` -> tanf_reported are
  diagnostics (PolicyEngine computes SSI and TANF itself).

Tax units (only when ``TAX_ID`` is present): dependents are persons with ``DEP_STAT`` > 0
(when the column exists); the head is the non-dependent with the lowest line number, the
spouse the non-dependent whose line is the head's ``A_SPOUSE``; any other member is
treated as a dependent. Line in tax unit: head 0, spouse 1, others 2.. by line number.

Households with no person record (ASEC non-interview rows, ``H_NUMPER`` 0) and families no
person points to are dropped and counted in provenance.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.geography.states import FIPS_CODES
from microplex_assets.sources.frame import ObservationFrame, SourceFormatError
from microplex_assets.sources.readers import ColumnSpec, check_link, file_provenance, read_columns
from microplex_assets.uprating import uprate_columns

SOURCE = "cps_asec"
WEIGHT_SCALE = 100.0  # HSUP_WGT, FSUP_WGT, MARSUPWT: two implied decimals
QUALIFIED_DIVIDEND_SHARE = 0.75
SOCIAL_SECURITY_RETIREMENT_AGE = 62

HOUSEHOLD_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("H_SEQ", "int", non_negative=True),
    ColumnSpec("GESTFIPS", "int", allowed=FIPS_CODES),  # 50 states and DC
    ColumnSpec("HSUP_WGT", "int", non_negative=True),
    ColumnSpec("H_NUMPER", "int", required=False, non_negative=True),
    ColumnSpec("H_YEAR", "int", required=False),
)
FAMILY_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("FH_SEQ", "int", non_negative=True),
    ColumnSpec("FFPOS", "int", non_negative=True),
    ColumnSpec("FSUP_WGT", "int", non_negative=True),
)
# Amount columns of the person file -> person variable (signed ones may be losses).
PERSON_AMOUNTS: dict[str, str] = {
    "WSAL_VAL": "employment_income_before_lsr",
    "SEMP_VAL": "self_employment_income_before_lsr",
    "FRSE_VAL": "farm_income",
    "INT_VAL": "taxable_interest_income",
    "RNT_VAL": "rental_income",
    "UC_VAL": "unemployment_compensation",
}
OPTIONAL_AMOUNTS: dict[str, str] = {
    "CAP_VAL": "long_term_capital_gains_before_response",
    "CSP_VAL": "child_support_received",
    "VET_VAL": "veterans_benefits",
    "WC_VAL": "workers_compensation",
}
REPORTED_BENEFITS: dict[str, str] = {"SSI_VAL": "ssi_reported", "PAW_VAL": "tanf_reported"}
DIVIDEND_VARIABLES = ("qualified_dividend_income", "non_qualified_dividend_income")
PENSION_VARIABLE = "taxable_private_pension_income"
SOCIAL_SECURITY = ("social_security_retirement", "social_security_disability")
OTHER_REQUIRED_AMOUNTS = ("DIV_VAL", "SS_VAL", "SSI_VAL", "PNSN_VAL", "ANN_VAL")

PERSON_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("PH_SEQ", "int", non_negative=True),
    ColumnSpec("PF_SEQ", "int", non_negative=True),
    ColumnSpec("A_LINENO", "int", non_negative=True),
    ColumnSpec("A_AGE", "int", non_negative=True),
    ColumnSpec("A_SEX", "int", allowed=(1, 2)),
    ColumnSpec("A_MARITL", "int", non_negative=True),
    ColumnSpec("MARSUPWT", "int", non_negative=True),
    ColumnSpec("P_SEQ", "int", required=False, non_negative=True),
    ColumnSpec("A_SPOUSE", "int", required=False, non_negative=True),
    ColumnSpec("TAX_ID", "int", required=False, non_negative=True),
    ColumnSpec("SPM_ID", "int", required=False, non_negative=True),
    ColumnSpec("DEP_STAT", "int", required=False, non_negative=True),
    ColumnSpec("PERIDNUM", "str", required=False),
    *(ColumnSpec(c) for c in PERSON_AMOUNTS),
    *(ColumnSpec(c) for c in OTHER_REQUIRED_AMOUNTS),
    *(ColumnSpec(c, required=False) for c in OPTIONAL_AMOUNTS),
    ColumnSpec("PAW_VAL", required=False),
)


def survey_year_from_name(path: Path) -> int | None:
    """Survey year from a Census file name such as ``pppub24.csv`` (None if it has none)."""
    match = re.search(r"pub(\d{2})", Path(path).name.lower())
    return 2000 + int(match.group(1)) if match else None


def _link(
    child: pd.DataFrame,
    child_keys: list[str],
    parent: pd.DataFrame,
    parent_keys: list[str],
    child_path: Path,
    parent_path: Path,
) -> None:
    """check_link across differently named keys; the error names both key sets."""
    renamed = parent[parent_keys].set_axis(child_keys, axis=1)
    try:
        check_link(child, renamed, child_keys, SOURCE, child_path, parent_path)
    except SourceFormatError as error:
        raise SourceFormatError(f"{error}; matched {child_keys} against {parent_keys}") from None


def require_filled(frame: pd.DataFrame, specs: tuple[ColumnSpec, ...], path: Path) -> None:
    """Required columns may not hold empty cells: a blank key or weight is a format error."""
    for spec in specs:
        if spec.required and frame[spec.name].isna().any():
            row = int(np.flatnonzero(frame[spec.name].isna().to_numpy())[0])
            raise SourceFormatError(
                f"{SOURCE}: {path} column '{spec.name}' is empty at row {row + 1}; "
                f"expected {spec.kind}"
            )


def _unique(frame: pd.DataFrame, keys: list[str], path: Path) -> None:
    """Keys that must identify one row; duplicates name the file and key."""
    duplicated = frame.duplicated(keys)
    if duplicated.any():
        first = frame.loc[duplicated, keys].iloc[0].to_dict()
        raise SourceFormatError(
            f"{SOURCE}: {path} has {int(duplicated.sum())} rows repeating key {keys} "
            f"(first: {first})"
        )


def income_year_of(
    household: pd.DataFrame, household_path: Path, income_year: int | None
) -> int | None:
    """Income year: given, else ``H_YEAR`` - 1, else the file name's survey year - 1."""
    if income_year is not None:
        return int(income_year)
    if "H_YEAR" in household.columns and household["H_YEAR"].notna().all():
        years = household["H_YEAR"].unique()
        if len(years) != 1:
            raise SourceFormatError(
                f"{SOURCE}: {household_path} column 'H_YEAR' holds several survey years "
                f"{sorted(int(y) for y in years)}; expected one"
            )
        return int(years[0]) - 1
    survey = survey_year_from_name(household_path)
    return None if survey is None else survey - 1


def tax_unit_roles(person: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Role (head/spouse/dependent) and line in tax unit of every person row.

    Rows must be sorted by (TAX_ID, A_LINENO). See the module docstring for the rule.
    """
    dependent = (
        person["DEP_STAT"].fillna(0).to_numpy() > 0
        if "DEP_STAT" in person.columns
        else np.zeros(len(person), bool)
    )
    unit = person["TAX_ID"].to_numpy()
    line = person["A_LINENO"].to_numpy()
    spouse_line = (
        person["A_SPOUSE"].fillna(0).to_numpy()
        if "A_SPOUSE" in person.columns
        else np.zeros(len(person))
    )
    frame = pd.DataFrame({"unit": unit, "line": line, "dependent": dependent})
    # A unit where everyone is marked dependent still needs a head: its lowest line.
    all_dependent = frame.groupby("unit")["dependent"].transform("all").to_numpy()
    candidate = ~dependent | all_dependent
    head_line = (
        frame.assign(line=np.where(candidate, line, np.inf))
        .groupby("unit")["line"]
        .transform("min")
        .to_numpy()
    )
    is_head = line == head_line
    head_spouse = pd.Series(np.where(is_head, spouse_line, 0)).groupby(unit).transform("max")
    is_spouse = ~is_head & candidate & (line == head_spouse.to_numpy()) & (line > 0)
    role = np.where(is_head, "head", np.where(is_spouse, "spouse", "dependent"))
    others = ~is_head & ~is_spouse
    rank = pd.Series(others.astype(int)).groupby(unit).cumsum().to_numpy()
    line_in_unit = np.where(is_head, 0, np.where(is_spouse, 1, 1 + rank))
    return role, line_in_unit.astype(np.int64)


def _uprate(
    person: pd.DataFrame,
    variables: list[str],
    system: Any,
    income_year: int | None,
    year: int,
    paths: dict[str, Path],
) -> dict[str, Any]:
    """Multiply each amount by PolicyEngine's factor from the income year to ``year``."""
    if system is None:
        return {"status": "not uprated", "reason": "no policyengine system given"}
    if income_year is None:
        raise SourceFormatError(
            f"{SOURCE}: cannot uprate: no income year (no 'H_YEAR' in {paths['household']}, "
            "no year in its name, no income_year argument)"
        )
    return uprate_columns(person, variables, system, income_year, year)


def load_cps_asec(
    person_path: Path | str,
    household_path: Path | str,
    family_path: Path | str,
    year: int,
    system: Any = None,
    income_year: int | None = None,
) -> ObservationFrame:
    """Load one CPS ASEC public-use CSV release as households, families, tax units, persons.

    ``year`` is the frame's year; amounts are uprated to it from the income year only when
    ``system`` (the policyengine-us tax-benefit system) is given. ``income_year`` overrides
    the income year otherwise read from ``H_YEAR`` or the file name.
    """
    paths = {"person": Path(person_path), "household": Path(household_path),
             "family": Path(family_path)}  # fmt: skip
    household_raw = read_columns(paths["household"], HOUSEHOLD_COLUMNS, SOURCE)
    family_raw = read_columns(paths["family"], FAMILY_COLUMNS, SOURCE)
    person_raw = read_columns(paths["person"], PERSON_COLUMNS, SOURCE)

    require_filled(household_raw, HOUSEHOLD_COLUMNS, paths["household"])
    require_filled(family_raw, FAMILY_COLUMNS, paths["family"])
    require_filled(person_raw, PERSON_COLUMNS, paths["person"])
    _unique(household_raw, ["H_SEQ"], paths["household"])
    _unique(family_raw, ["FH_SEQ", "FFPOS"], paths["family"])
    _unique(person_raw, ["PH_SEQ", "A_LINENO"], paths["person"])
    _link(person_raw, ["PH_SEQ"], household_raw, ["H_SEQ"], paths["person"], paths["household"])
    _link(family_raw, ["FH_SEQ"], household_raw, ["H_SEQ"], paths["family"], paths["household"])
    _link(person_raw, ["PH_SEQ", "PF_SEQ"], family_raw, ["FH_SEQ", "FFPOS"], paths["person"],
          paths["family"])  # fmt: skip
    source_income_year = income_year_of(household_raw, paths["household"], income_year)

    # Keep households and families that persons point to (drops non-interview records).
    occupied = household_raw["H_SEQ"].isin(person_raw["PH_SEQ"])
    household_raw = household_raw[occupied].sort_values("H_SEQ").reset_index(drop=True)
    family_keys = pd.MultiIndex.from_frame(person_raw[["PH_SEQ", "PF_SEQ"]])
    used = pd.MultiIndex.from_frame(family_raw[["FH_SEQ", "FFPOS"]]).isin(family_keys)
    family_raw = family_raw[used].sort_values(["FH_SEQ", "FFPOS"]).reset_index(drop=True)

    household = pd.DataFrame(
        {
            "household_id": household_raw["H_SEQ"].to_numpy(np.int64),
            "household_weight": household_raw["HSUP_WGT"].to_numpy(float) / WEIGHT_SCALE,
            "state_fips": household_raw["GESTFIPS"].to_numpy(np.int64),
        }
    )
    persons_per_household = person_raw.groupby("PH_SEQ").size()
    household["person_count"] = persons_per_household.reindex(household["household_id"]).to_numpy(
        np.int64
    )
    numper_mismatch = 0
    if "H_NUMPER" in household_raw.columns:
        household["reported_person_count"] = household_raw["H_NUMPER"].to_numpy(np.int64)
        numper_mismatch = int(
            (household["person_count"] != household["reported_person_count"]).sum()
        )

    family = pd.DataFrame(
        {
            "family_id": family_raw["FH_SEQ"].to_numpy(np.int64) * 100
            + family_raw["FFPOS"].to_numpy(np.int64),
            "household_id": family_raw["FH_SEQ"].to_numpy(np.int64),
            "family_position": family_raw["FFPOS"].to_numpy(np.int64),
            "family_weight": family_raw["FSUP_WGT"].to_numpy(float) / WEIGHT_SCALE,
        }
    )

    sort_keys = ["TAX_ID", "A_LINENO"] if "TAX_ID" in person_raw.columns else ["PH_SEQ", "A_LINENO"]
    raw = person_raw.sort_values(sort_keys, kind="stable").reset_index(drop=True)
    age = raw["A_AGE"].to_numpy(np.int64)
    person = pd.DataFrame(
        {
            "person_id": raw["PH_SEQ"].to_numpy(np.int64) * 100
            + raw["A_LINENO"].to_numpy(np.int64),
            "household_id": raw["PH_SEQ"].to_numpy(np.int64),
            "family_id": raw["PH_SEQ"].to_numpy(np.int64) * 100 + raw["PF_SEQ"].to_numpy(np.int64),
            "line_number": raw["A_LINENO"].to_numpy(np.int64),
            "age": age,
            "is_female": raw["A_SEX"].to_numpy() == 2,
            "marital_status": raw["A_MARITL"].to_numpy(np.int64),
            "person_weight": raw["MARSUPWT"].to_numpy(float) / WEIGHT_SCALE,
        }
    )
    tables: dict[str, pd.DataFrame] = {"household": household, "family": family}
    links: dict[str, list[str]] = {"person": ["household", "family"], "family": ["household"]}
    if "TAX_ID" in raw.columns:
        if raw["TAX_ID"].isna().any():
            raise SourceFormatError(f"{SOURCE}: {paths['person']} column 'TAX_ID' has empty values")
        spans = raw.groupby("TAX_ID")["PH_SEQ"].nunique()
        if (spans > 1).any():
            first = int(spans[spans > 1].index[0])
            raise SourceFormatError(
                f"{SOURCE}: {paths['person']} column 'TAX_ID' value {first} "
                "spans several households (PH_SEQ); expected a tax unit inside one household"
            )
        role, line_in_unit = tax_unit_roles(raw)
        person["tax_unit_id"] = raw["TAX_ID"].to_numpy(np.int64)
        person["role"] = pd.array(role, dtype="str")
        person["line_in_tax_unit"] = line_in_unit
        heads = person[person["role"] == "head"]
        tables["tax_unit"] = pd.DataFrame(
            {
                "tax_unit_id": heads["tax_unit_id"].to_numpy(np.int64),
                "household_id": heads["household_id"].to_numpy(np.int64),
                "tax_unit_weight": heads["person_weight"].to_numpy(float),
                "person_count": person.groupby("tax_unit_id").size()
                .reindex(heads["tax_unit_id"]).to_numpy(np.int64),
            }
        )  # fmt: skip
        links["person"].append("tax_unit")
        links["tax_unit"] = ["household"]
    if "SPM_ID" in raw.columns:
        person["spm_unit_id"] = raw["SPM_ID"].astype("Int64").to_numpy()

    for column, variable in PERSON_AMOUNTS.items():
        person[variable] = raw[column].to_numpy(float)
    dividends = raw["DIV_VAL"].to_numpy(float)
    person[DIVIDEND_VARIABLES[0]] = dividends * QUALIFIED_DIVIDEND_SHARE
    person[DIVIDEND_VARIABLES[1]] = dividends * (1 - QUALIFIED_DIVIDEND_SHARE)
    person[PENSION_VARIABLE] = raw["PNSN_VAL"].to_numpy(float) + raw["ANN_VAL"].to_numpy(float)
    social_security = raw["SS_VAL"].to_numpy(float)
    retired = age >= SOCIAL_SECURITY_RETIREMENT_AGE
    person[SOCIAL_SECURITY[0]] = np.where(retired, social_security, 0.0)
    person[SOCIAL_SECURITY[1]] = np.where(retired, 0.0, social_security)
    optional = {c: v for c, v in OPTIONAL_AMOUNTS.items() if c in raw.columns}
    for column, variable in optional.items():
        person[variable] = raw[column].fillna(0.0).to_numpy(float)
    reported = {c: v for c, v in REPORTED_BENEFITS.items() if c in raw.columns}
    for column, variable in reported.items():
        person[variable] = raw[column].fillna(0.0).to_numpy(float)
    tables["person"] = person

    amounts = [*PERSON_AMOUNTS.values(), *DIVIDEND_VARIABLES, PENSION_VARIABLE,
               *SOCIAL_SECURITY, *optional.values(), *reported.values()]  # fmt: skip
    uprating = _uprate(person, amounts, system, source_income_year, year, paths)

    frame = ObservationFrame(
        source=SOURCE,
        year=year,
        tables=tables,
        links=links,
        provenance={
            "kind": "real",
            "files": {name: file_provenance(path) for name, path in paths.items()},
            "year": year,
            "income_year": source_income_year,
            "uprating": uprating,
            "households": len(household),
            "families": len(family),
            "persons": len(person),
            "tax_units": len(tables["tax_unit"]) if "tax_unit" in tables else 0,
            "dropped_households_without_persons": int((~occupied).sum()),
            "dropped_families_without_persons": int((~used).sum()),
            "household_person_count_mismatches": numper_mismatch,
            "optional_columns_absent": sorted(
                spec.name
                for spec in PERSON_COLUMNS
                if not spec.required and spec.name not in person_raw.columns
            ),
            "notes": [
                "weights HSUP_WGT, FSUP_WGT, MARSUPWT divided by 100 (two implied decimals)",
                f"DIV_VAL split {QUALIFIED_DIVIDEND_SHARE:.0%} qualified / rest non-qualified "
                "(approximate SOI Table 1.4 ratio; the ASEC has no split)",
                "INT_VAL all taxable interest; PNSN_VAL + ANN_VAL all taxable pension income",
                f"SS_VAL: retirement at age >= {SOCIAL_SECURITY_RETIREMENT_AGE}, else disability",
                "tax-unit roles: DEP_STAT > 0 dependent; head = lowest-line non-dependent; "
                "spouse = head's A_SPOUSE line",
                "ssi_reported / tanf_reported are diagnostics, not exported inputs",
            ],
        },
    )
    frame.validate()
    return frame
