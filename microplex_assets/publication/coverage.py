"""The manifest's eCPS coverage table: each of the eCPS's 235 exported inputs, provided or
missing, with where ours comes from or why it is missing.

A variable counts as provided only when the H5 holds it with more than one value: an
array that is one value on every record (a default written out) is a constant fill, not
data, and is listed as missing with that reason. ``VARIABLE_SOURCES`` says where each
variable the build can export comes from and of what kind:

- ``observed``: a value the CPS respondent reported (as carried in taxcalc's CPS file);
- ``taxdata imputation``: a column taxdata imputed into its CPS file from PUF-fitted models
  (``taxdata/cps/impute.py``), carried as is;
- ``derived``: computed from observed columns by a stated rule (a count from an amount, a
  flag from a receipt);
- ``imputed``: drawn by this build from a carried table (sex from SSA, counties from ACS,
  take-up from published rates, dependents' ages within the file's bands);
- ``donor``: replaced on tax units by the tax-record donor (quantile regression forest);
- ``structural``: ids, links, weights and roles.

``python -m microplex_assets.publication.coverage FILE.h5`` prints the count for any H5
without importing PolicyEngine.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import h5py
import numpy as np

from microplex_assets.seed.donor_inputs import DEFAULT_IMPUTED
from microplex_assets.sources import cps_taxcalc as cps
from microplex_assets.sources import cps_taxcalc_inputs as inputs

DONOR = (
    "; replaced on tax units not reporting SSI, SNAP or TANF by the tax-record donor "
    "(the SOI-synthesized donor by default, the IRS PUF when puf_path is set)"
)
DONOR_IMPUTED = frozenset(DEFAULT_IMPUTED)  # what donor integration imputes by default
TAXDATA_IMPUTED_COLUMNS = frozenset(
    {"e03150", "e03210", "e03240", "e03270", "e03300", "e17500", "e18500", "e19200"}
    | {"e19800", "e20100", "e20400", "e32800"}
)
SSA = "SSA 2024 Trustees Report population by age, sex, marital status"
ASSET_DONOR = (
    "QRF draw on age and income rank from the SCF-like donor (published SCF 2022 tables, "
    "synthetic below $2.1m; real SCF 2022 top-tail records above; seed/asset_imputation.py)"
)
TAKE_UP = "eCPS take-up rate ({rate}), entities/data/take_up_rates.csv"
QBI = "eCPS stated assumption: policyengine-us-data qbi_assumptions.yaml (entities/qbi.py)"


def _cps(columns: str, kind: str = "observed") -> tuple[str, str]:
    return f"taxcalc CPS {columns}", kind


def _column_kind(column: str) -> str:
    return "taxdata imputation" if column in TAXDATA_IMPUTED_COLUMNS else "observed"


def variable_sources() -> dict[str, tuple[str, str]]:
    """variable -> (source, kind) for everything the build exports."""
    sources: dict[str, tuple[str, str]] = {
        "person_id": ("one person per XTOT member of each taxcalc CPS tax unit", "structural"),
        "household_id": ("taxcalc CPS household (FLPDYR, h_seq)", "structural"),
        "tax_unit_id": ("taxcalc CPS tax unit (RECID)", "structural"),
        "family_id": ("taxcalc CPS family position (ffpos)", "structural"),
        "spm_unit_id": ("CPS family, adult-less families folded in (entities/build.py)",
                        "structural"),
        "marital_unit_id": ("head and spouse of the CPS tax unit", "structural"),
        "household_weight": ("calibrated (stage 7) from taxcalc cps_weights WT<year>",
                             "structural"),
        "age": ("taxcalc CPS age_head, age_spouse; dependents' ages drawn within the file's "
                "age bands (nu06, nu13, n24, nu18, n1820, n21)", "observed"),
        "is_blind": _cps("blind_head, blind_spouse"),
        "state_fips": _cps("fips"),
        "county_fips": ("drawn within the state by ACS 2024 population share "
                        "(geography/data)", "imputed"),
        "is_household_head": ("CPS householder: head of the first family's first tax unit",
                              "structural"),
        "tax_unit_role_input": ("CPS tax unit roles (head, spouse, dependent)", "structural"),
        "net_worth": (ASSET_DONOR + "; spine households: the top-wealth list", "imputed"),
        **{v: (ASSET_DONOR + " (reference head and spouse, split equally)", "imputed")
           for v in ("bank_account_assets", "stock_assets", "bond_assets")},
        "social_security_retirement": _cps("e02400 split head/spouse, age 62+", "derived"),
        "social_security_disability": _cps("e02400 split head/spouse, under 62", "derived"),
        "spm_unit_tenure_type": _cps(
            "e18500 > 0 (CPS h_tenure) per household; owners' mortgage status drawn by "
            "householder age at ACS free-and-clear shares (entities/tenure.py)",
            "imputed",
        ),
        "spm_unit_pre_subsidy_childcare_expenses": _cps(
            "e32800 summed over the SPM unit's tax units", "taxdata imputation"
        ),
        "is_female": (f"{SSA}; joint filers opposite sex (entities/demographics.py)",
                      "imputed"),
        "domestic_production_ald": _cps("e03240 (tax unit)", "taxdata imputation"),
        "claimed_as_dependent_on_another_return": _cps("DSI (head of a dependent filer)"),
        "receives_medicaid": _cps("mcaid_ben / value per enrollee, placed by age", "derived"),
        "has_medicaid_health_coverage_at_interview": _cps(
            "mcaid_ben / value per enrollee, placed by age", "derived"
        ),
        "receives_ssi": _cps("ssi_ben / 12 x federal benefit rate, placed by age", "derived"),
        "is_disabled": _cps("SSI recipients under 65; heads 18-61 with Social Security and "
                            "nobody 62+ in the unit (e02400, ssi_ben)", "derived"),
        "meets_ssi_disability_criteria": _cps("as is_disabled", "derived"),
        "receives_snap": _cps("snap_ben > 0 in any tax unit of the SPM unit", "derived"),
        "receives_tanf": _cps("tanf_ben > 0 in any tax unit of the SPM unit", "derived"),
        "receives_housing_assistance": _cps("housing_ben > 0 in any tax unit of the SPM unit",
                                            "derived"),
        "takes_up_housing_assistance_if_eligible": _cps("housing_ben > 0 (rationed: take-up "
                                                        "is receipt)", "derived"),
        "receives_wic": _cps("wic_ben > 0: members under 5, else a woman head/spouse",
                             "derived"),
        "is_self_employed": ("nonzero self-employment or farm income", "derived"),
        "congressional_district_geoid": ("drawn within the drawn county by the district's "
                                         "share of its population (ACS 2024 S0101 x "
                                         "P(county | district); geography/districts.py)",
                                         "imputed"),
        "is_separated": _cps("MARS == 3: the head of a married-filing-separately unit "
                             "(entities/family.py)", "derived"),
        "own_children_in_household": ("the tax unit's dependents under 18, on head and spouse "
                                      "(entities/family.py)", "derived"),
        "tenure_type": ("owner: taxcalc CPS e18500 > 0 in any tax unit (taxdata's flag of "
                        "the ASEC's H_TENURE 1), else rented; owners' mortgage drawn by "
                        "householder age at ACS free-and-clear shares (entities/tenure.py)",
                        "imputed"),
        "pre_subsidy_rent": ("renter householders (tenure_type RENTED from data): 12 x the "
                             "district's ACS 2023 median gross rent of 2-bedroom units "
                             "(entities/rent.py)", "imputed"),
        "would_file_taxes_voluntarily": ("a member has wages or taxable pension income, both "
                                         "withheld at source (entities/filing.py)", "derived"),
        "takes_up_eitc": ("drawn to the EITC take-up rate by EITC children (taxcalc CPS EIC): "
                          + TAKE_UP.format(rate="0.65/0.86/0.85/0.85"), "imputed"),
    }  # fmt: skip
    for entity in ("household", "tax_unit", "family", "spm_unit", "marital_unit"):
        sources[f"person_{entity}_id"] = (f"each person's {entity}", "structural")
    for variable, (reported, program, rate) in {
        "takes_up_snap_if_eligible": ("snap_ben", "SNAP", "0.82"),
        "takes_up_tanf_if_eligible": ("tanf_ben", "TANF", "0.22"),
        "takes_up_ssi_if_eligible": ("ssi_ben", "SSI", "0.50"),
        "takes_up_medicaid_if_eligible": ("mcaid_ben", "Medicaid", "by state"),
    }.items():
        sources[variable] = (
            f"reported {program} receipt (taxcalc CPS {reported}) takes up; others drawn to "
            + TAKE_UP.format(rate=rate),
            "imputed",
        )
    for variable, (program, rate) in {
        "takes_up_aca_if_eligible": ("ACA", "0.672"),
        "takes_up_dc_ptc": ("DC property tax credit", "0.32"),
        "takes_up_head_start_if_eligible": ("Head Start", "0.30"),
        "takes_up_early_head_start_if_eligible": ("Early Head Start", "0.09"),
    }.items():
        sources[variable] = (
            f"no {program} receipt in the file: every unit drawn to " + TAKE_UP.format(rate=rate),
            "imputed",
        )
    for variable, detail in {
        "self_employment_income_would_be_qualified": "P = 0.95, every person",
        "rental_income_would_be_qualified": "P = 0.70, every person",
        "partnership_s_corp_income_would_be_qualified": "P = 0.90, every person",
        "estate_income_would_be_qualified": "P = 0.60, every person",
        "business_is_sstb": "P by the largest positive qualified source: self-employment "
        "0.30, partnership/S-corp 0.25, estate 0.15",
    }.items():
        sources[variable] = (f"{QBI} ({detail})", "imputed")
    for variable, (head, spouse) in cps.SPLIT_AMOUNTS.items():
        sources[variable] = _cps(f"{head} (head), {spouse} (spouse)")
    for variable, (column, minus) in cps.HEAD_AMOUNTS.items():
        sources[variable] = _cps(column + (f" - {minus}" if minus else ""), _column_kind(column))
    for variable, column in {**inputs.HEAD_INPUTS, **inputs.SELF_EMPLOYED_INPUTS}.items():
        where = "head" if variable in inputs.HEAD_INPUTS else "self-employed member"
        sources[variable] = _cps(f"{column} ({where})", _column_kind(column))
    sources["estate_income"] = (
        "SOI Table 1.4 estate and trust income less losses, by AGI band (synthetic donor); "
        "real PUF: E26390 - E26400",
        "donor",
    )
    for variable in DONOR_IMPUTED:
        source, _ = sources.get(variable, ("not in the CPS scaffold", ""))
        sources[variable] = (source + DONOR, "donor")
    return sources


VARIABLE_SOURCES = variable_sources()

# eCPS inputs this build leaves out on purpose, with the reason.
LEFT_OUT: dict[str, str] = {
    "traditional_401k_contributions_desired": (
        "taxcalc CPS pencon_p / pencon_s (DC pension contributions) are zero in every row of "
        "the shipped file; no other source yet"
    ),
    "roth_401k_contributions_desired": "no source: the taxcalc CPS has no Roth split",
    "takes_up_medicare_if_eligible": (
        "policyengine-us 2.68 has no Medicare coverage input; the file's mcare_ben is kept as "
        "a count (tax_unit.medicare_enrollees_reported); enrolment of eligibles is "
        "near-universal, so PolicyEngine's default (true) stands"
    ),
    "is_wic_at_nutritional_risk": (
        "PolicyEngine's default (true) kept; the eCPS draws it by WIC category at rates "
        "(policyengine-us-data wic_nutritional_risk.yaml) that cite no source"
    ),
    "is_full_time_college_student": (
        "the taxcalc CPS has no school enrolment; its dependents' ages are drawn within bands "
        "(18-20, 21-64), too coarse to tell 19-23-year-old students from qualifying relatives"
    ),
    "is_surviving_spouse": "the taxcalc CPS has no MARS 5 (surviving spouse) units",
    "social_security_survivors": (
        "taxcalc CPS e02400 is one Social Security total; under-62 benefits go to "
        "social_security_disability (no benefit-type split)"
    ),
    "social_security_dependents": "as social_security_survivors: e02400 has no type split",
}


def constant_arrays(arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Arrays holding one value on every record (or none), with that value (JSON-ready)."""
    out: dict[str, Any] = {}
    for name, values in arrays.items():
        values = np.asarray(values)
        if len(values) and not (values[:1] == values).all():
            continue
        value = values[0].item() if len(values) else None
        out[name] = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return out


def coverage_table(
    reference: Iterable[str],
    h5_variables: Iterable[str],
    constant: Mapping[str, Any],
    missing_reasons: Mapping[str, str],
    entities: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One row per eCPS input: provided (with source and kind) or missing (with reason)."""
    ours = set(h5_variables)
    rows = []
    for name in reference:
        row: dict[str, Any] = {"variable": name, "entity": (entities or {}).get(name)}
        if name in ours and name not in constant:
            source, kind = VARIABLE_SOURCES.get(name, ("not recorded", "unknown"))
            row.update(status="provided", source=source, kind=kind)
        else:
            row.update(status="missing", reason=missing_reasons[name])
        rows.append(row)
    return rows


def h5_coverage(path: str) -> dict[str, Any]:
    """Provided / missing count of the eCPS inputs for an H5 on disk (no PolicyEngine)."""
    from microplex_assets.publication.manifest import ecps_coverage

    with h5py.File(path, "r") as h5:
        arrays = {name: h5[name][next(iter(h5[name]))][:] for name in h5}
    return ecps_coverage(arrays, constant=constant_arrays(arrays))


if __name__ == "__main__":  # pragma: no cover - a command-line report
    result = h5_coverage(sys.argv[1])
    print(json.dumps({k: result[k] for k in ("ecps_inputs", "provided", "constant_fills")}))
    if "--table" in sys.argv:
        for row in result["table"]:
            detail = row.get("source") or row.get("reason")
            print(f"{row['status']:8} {row['variable']:60} {detail}")
