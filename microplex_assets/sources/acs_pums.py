"""Stage-2 ACS source: the Census ACS PUMS person and housing CSV files as households, persons.

Format. Census publishes each ACS PUMS as comma-separated files with upper-case headers,
``psam_pNN.csv`` (persons) and ``psam_hNN.csv`` (housing units and group-quarters
placeholders), one pair per state or ``psam_pus[a-d]`` / ``psam_hus[a-d]`` nationally:

* ``SERIALNO`` is a 13-character string: survey year, ``HU`` (housing unit) or ``GQ``
  (group-quarters person), 7 digits (``2022HU0000001``); persons link to housing on it and
  are numbered within it by ``SPORDER`` (1 = householder);
* the state column is ``ST`` up to the 2022 files and ``STATE`` from 2023 (both accepted);
  ``PUMA`` is a zero-padded 5-character code, kept as text;
* ``WGTP`` is the housing-unit weight and ``PWGTP`` the person weight, whole persons; a
  group-quarters housing record is a placeholder with ``WGTP == 0`` and ``NP == 1``;
* ``ADJINC`` and ``ADJHSG`` hold adjustment factors with 6 implied decimals
  (``1042311`` = 1.042311): income amounts (``WAGP SEMP INTP RETP SSP SSIP PAP OIP PINCP``
  and ``HINCP``) are multiplied by ``ADJINC / 1e6`` and monthly housing amounts (``RNTP``,
  ``MRGP``) by ``ADJHSG / 1e6`` to state them in the data year's dollars;
* ``TAXAMT`` (2023 on) is yearly real-estate taxes in dollars; older files have ``TAXP``, a
  band code, which is not converted (real_estate_taxes is then missing);
* blank cells are "not in universe" (persons under 15 for income, GQ for housing).

Mapping (person variables are policyengine-us person inputs where one exists):

* ``WAGP`` -> employment_income_before_lsr, ``SEMP`` -> self_employment_income_before_lsr;
* ``SSP`` -> social_security_retirement at age >= 62, else social_security_disability (the
  ACS does not separate survivors and dependents benefits);
* ``SSIP`` -> ssi_reported; ``PAP`` (TANF and general assistance together) ->
  public_assistance_reported; ``INTP`` (interest, dividends and net rent together),
  ``RETP`` (pensions, IRA and annuity income) and ``OIP`` have no single policyengine-us
  input and are kept as ``*_reported`` diagnostics, as are ``PINCP`` and ``PWGTP``;
* ``DIS == 1`` -> is_disabled, ``HINS4 == 1`` -> receives_medicaid, ``SEX == 2`` ->
  is_female, ``SPORDER == 1`` -> is_household_head;
* the householder (``SPORDER == 1``) carries the household's yearly rent
  (``12 x RNTP``) as pre_subsidy_rent and ``TAXAMT`` as real_estate_taxes: those
  policyengine-us inputs are person variables.

Households: occupied housing units (``NP > 0``) and group-quarters persons. Vacant units
have no persons and are dropped. A group-quarters record has no housing weight, so its
one-person household takes the person's ``PWGTP``; the count is in provenance.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from microplex_assets.geography.states import FIPS_CODES
from microplex_assets.sources.frame import ObservationFrame, SourceFormatError
from microplex_assets.sources.readers import ColumnSpec, check_link, file_provenance, read_columns

SOURCE = "acs_pums"
IMPLIED = 1e6  # ADJINC / ADJHSG carry 6 implied decimals
SOCIAL_SECURITY_RETIREMENT_AGE = 62
SERIAL_PATTERN = re.compile(r"^\d{4}(HU|GQ)\d{7}$")
# 50 states, DC and Puerto Rico (the PUMS ships PR as state 72).
PUERTO_RICO_FIPS = 72
STATE_CODES: tuple[int, ...] = (*FIPS_CODES, PUERTO_RICO_FIPS)
TENURE: dict[int, str] = {1: "OWNED_WITH_MORTGAGE", 2: "OWNED_OUTRIGHT", 3: "RENTED", 4: "NONE"}

HOUSING_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("SERIALNO", "str"),
    ColumnSpec("ST", "int", required=False, allowed=STATE_CODES),
    ColumnSpec("STATE", "int", required=False, allowed=STATE_CODES),
    ColumnSpec("PUMA", "str"),
    ColumnSpec("ADJHSG", "int", non_negative=True),
    ColumnSpec("ADJINC", "int", non_negative=True),
    ColumnSpec("WGTP", "float", non_negative=True),
    ColumnSpec("NP", "int", non_negative=True),
    ColumnSpec("TEN", "int", allowed=tuple(TENURE)),
    ColumnSpec("RNTP", non_negative=True),
    ColumnSpec("MRGP", non_negative=True),
    ColumnSpec("VALP", non_negative=True),
    ColumnSpec("HINCP"),
    ColumnSpec("TAXAMT", required=False, non_negative=True),
    ColumnSpec("TAXP", "int", required=False),
)
# Person income amounts: file column -> output name, all multiplied by ADJINC.
PERSON_AMOUNTS: dict[str, str] = {
    "WAGP": "employment_income_before_lsr",
    "SEMP": "self_employment_income_before_lsr",
    "SSIP": "ssi_reported",
    "PAP": "public_assistance_reported",
    "INTP": "interest_dividend_rental_income_reported",
    "RETP": "retirement_income_reported",
    "OIP": "other_income_reported",
    "PINCP": "total_income_reported",
}
SOCIAL_SECURITY_COLUMN = "SSP"
PERSON_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("SERIALNO", "str"),
    ColumnSpec("SPORDER", "int", non_negative=True),
    ColumnSpec("PWGTP", "float", non_negative=True),
    ColumnSpec("ADJINC", "int", non_negative=True),
    ColumnSpec("AGEP", "int", non_negative=True),
    ColumnSpec("SEX", "int", allowed=(1, 2)),
    ColumnSpec("DIS", "int", allowed=(1, 2)),
    ColumnSpec("HINS4", "int", allowed=(1, 2)),
    ColumnSpec(SOCIAL_SECURITY_COLUMN, non_negative=True),
    *(ColumnSpec(column) for column in PERSON_AMOUNTS),
)


def _fail(path: Path, message: str) -> SourceFormatError:
    return SourceFormatError(f"{SOURCE}: {path} {message}")


def _check_serials(frame: pd.DataFrame, path: Path) -> None:
    """SERIALNO must be year + HU/GQ + 7 digits: anything else is a different file."""
    bad = ~frame["SERIALNO"].str.match(SERIAL_PATTERN)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise _fail(
            path,
            f"column 'SERIALNO' holds {frame['SERIALNO'].iloc[row]!r} at row {row + 1}; "
            "expected e.g. '2022HU0000001' or '2022GQ0000001'",
        )


def _check_unique(frame: pd.DataFrame, keys: list[str], path: Path) -> None:
    duplicated = frame.duplicated(keys)
    if duplicated.any():
        first = frame.loc[duplicated, keys].iloc[0].to_dict()
        raise _fail(path, f"has {int(duplicated.sum())} duplicate {keys} rows (first: {first})")


def _state_column(housing: pd.DataFrame, path: Path) -> pd.Series:
    """``ST`` (to 2022) or ``STATE`` (2023 on); one must be present and filled."""
    for column in ("STATE", "ST"):
        if column in housing.columns:
            values = housing[column]
            if values.isna().any():
                raise _fail(path, f"column '{column}' has {int(values.isna().sum())} blanks")
            return values.astype(np.int64)
    raise _fail(path, "lacks a state column: expected 'ST' (to 2022) or 'STATE' (2023 on)")


def _households(
    housing: pd.DataFrame, person: pd.DataFrame, housing_path: Path
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Occupied units and group-quarters persons, numbered 1..H in file order."""
    state = _state_column(housing, housing_path)
    housing = housing.assign(_state=state)
    occupied = housing["NP"].fillna(0) > 0
    kept = housing[occupied].reset_index(drop=True)
    group_quarters = kept["SERIALNO"].str[4:6].eq("GQ").to_numpy()
    person_weight = person.groupby("SERIALNO")["PWGTP"].sum()
    gq_weight = kept["SERIALNO"].map(person_weight).to_numpy(dtype=float)
    weight = np.where(group_quarters, gq_weight, kept["WGTP"].to_numpy(dtype=float))
    weight = np.nan_to_num(weight, nan=0.0)
    adjinc = kept["ADJINC"].to_numpy(dtype=float) / IMPLIED
    adjhsg = kept["ADJHSG"].to_numpy(dtype=float) / IMPLIED
    tenure = kept["TEN"].map(TENURE).fillna("NONE")
    household = pd.DataFrame(
        {
            "household_id": np.arange(1, len(kept) + 1, dtype=np.int64),
            "serialno": kept["SERIALNO"].to_numpy(),
            "state_fips": kept["_state"].to_numpy(dtype=np.int64),
            "puma": kept["PUMA"].to_numpy(),
            "household_weight": weight,
            "is_group_quarters": group_quarters,
            "tenure_type": tenure.to_numpy(),
            "household_size_reported": kept["NP"].to_numpy(dtype=np.int64),
            "household_income_reported": kept["HINCP"].to_numpy(dtype=float) * adjinc,
            "property_value_reported": kept["VALP"].fillna(0).to_numpy(dtype=float),
            "mortgage_payments_reported": 12 * kept["MRGP"].fillna(0).to_numpy(float) * adjhsg,
            "_rent": 12 * kept["RNTP"].fillna(0).to_numpy(dtype=float) * adjhsg,
            "_taxes": kept["TAXAMT"].to_numpy(dtype=float)
            if "TAXAMT" in kept.columns
            else np.full(len(kept), np.nan),
        }
    )
    counts = {
        "vacant_units_dropped": int((~occupied).sum()),
        "group_quarters_households": int(group_quarters.sum()),
        "housing_units_with_zero_wgtp": int(((weight == 0) & ~group_quarters).sum()),
    }
    return household, counts


def _persons(person: pd.DataFrame, household: pd.DataFrame) -> pd.DataFrame:
    """Person table in (household, SPORDER) order with amounts in data-year dollars."""
    ids = dict(zip(household["serialno"], household["household_id"], strict=True))
    person = person.assign(_household=person["SERIALNO"].map(ids))
    person = person.sort_values(["_household", "SPORDER"]).reset_index(drop=True)
    adjinc = person["ADJINC"].to_numpy(dtype=float) / IMPLIED
    age = person["AGEP"].to_numpy(dtype=np.int64)
    head = person["SPORDER"].to_numpy() == 1
    out = pd.DataFrame(
        {
            "person_id": np.arange(1, len(person) + 1, dtype=np.int64),
            "household_id": person["_household"].to_numpy(dtype=np.int64),
            "line_in_household": person["SPORDER"].to_numpy(dtype=np.int64),
            "age": age,
            "is_female": person["SEX"].to_numpy() == 2,
            "is_disabled": person["DIS"].fillna(2).to_numpy() == 1,
            "receives_medicaid": person["HINS4"].fillna(2).to_numpy() == 1,
            "is_household_head": head,
            "person_weight_reported": person["PWGTP"].to_numpy(dtype=float),
        }
    )
    for column, name in PERSON_AMOUNTS.items():
        out[name] = person[column].fillna(0).to_numpy(dtype=float) * adjinc
    social_security = person[SOCIAL_SECURITY_COLUMN].fillna(0).to_numpy(dtype=float) * adjinc
    retired = age >= SOCIAL_SECURITY_RETIREMENT_AGE
    out["social_security_retirement"] = np.where(retired, social_security, 0.0)
    out["social_security_disability"] = np.where(retired, 0.0, social_security)
    index = out["household_id"].to_numpy() - 1
    out["pre_subsidy_rent"] = np.where(head, household["_rent"].to_numpy()[index], 0.0)
    out["real_estate_taxes"] = np.where(head, household["_taxes"].to_numpy()[index], 0.0)
    return out


def _year(serials: pd.Series) -> int:
    """The data year: the latest survey year in SERIALNO (a 5-year file spans five)."""
    return int(serials.str[:4].astype(int).max())


def load_acs_pums(
    person_path: Path | str, housing_path: Path | str, year: int | None = None
) -> ObservationFrame:
    """Load an ACS PUMS person/housing file pair as households and persons.

    ``year`` defaults to the latest survey year in ``SERIALNO``; amounts are in that
    year's dollars (ADJINC/ADJHSG applied) and are not uprated here.
    """
    person_path, housing_path = Path(person_path), Path(housing_path)
    housing = read_columns(housing_path, HOUSING_COLUMNS, SOURCE)
    person = read_columns(person_path, PERSON_COLUMNS, SOURCE)
    for frame, path in ((housing, housing_path), (person, person_path)):
        _check_serials(frame, path)
    _check_unique(housing, ["SERIALNO"], housing_path)
    _check_unique(person, ["SERIALNO", "SPORDER"], person_path)
    if person["AGEP"].isna().any():
        raise _fail(person_path, f"column 'AGEP' has {int(person['AGEP'].isna().sum())} blanks")
    check_link(person, housing, ["SERIALNO"], SOURCE, person_path, housing_path)
    household, counts = _households(housing, person, housing_path)
    orphan = ~person["SERIALNO"].isin(household["serialno"])
    if orphan.any():
        first = person.loc[orphan, "SERIALNO"].iloc[0]
        raise _fail(
            person_path,
            f"has {int(orphan.sum())} persons in units that {housing_path} marks vacant "
            f"(column 'NP' == 0; first SERIALNO {first!r})",
        )
    persons = _persons(person, household)
    household = household.drop(columns=["_rent", "_taxes"])
    data_year = _year(household["serialno"])
    tax_source = "TAXAMT" if "TAXAMT" in housing.columns else None
    notes = [
        "income amounts x ADJINC/1e6, RNTP and MRGP x 12 x ADJHSG/1e6 (6 implied decimals)",
        "group-quarters households take their person's PWGTP (housing WGTP is 0)",
        f"SSP: retirement at age >= {SOCIAL_SECURITY_RETIREMENT_AGE}, else disability",
        "pre_subsidy_rent and real_estate_taxes sit on the householder (SPORDER 1)",
        "INTP, RETP, OIP, PAP bundle several policyengine-us inputs: *_reported diagnostics",
    ]
    if tax_source is None:
        persons["real_estate_taxes"] = np.nan
        notes.append("no TAXAMT column (TAXP is a band code): real_estate_taxes left missing")
    frame = ObservationFrame(
        source=SOURCE,
        year=int(year) if year is not None else data_year,
        tables={"household": household, "person": persons},
        links={"person": ["household"]},
        provenance={
            "kind": "real",
            "files": {
                "person": file_provenance(person_path),
                "housing": file_provenance(housing_path),
            },
            "data_year": data_year,
            "households": len(household),
            "persons": len(persons),
            **counts,
            "real_estate_taxes_column": tax_source,
            "notes": notes,
        },
    )
    frame.validate()
    return frame
