"""Stage-2 CPS source: taxcalc's shipped ``cps.csv.gz`` rebuilt into households, tax units, persons.

Tax-Calculator ships 280,005 real CPS-derived tax units (ASEC survey years 2012-2014,
pooled) with their household key ``(FLPDYR, h_seq)``, state, head/spouse splits of
earnings, tax-unit amounts and reported benefits. PolicyEngine needs persons, so each
tax unit becomes ``XTOT`` persons: head, spouse (``MARS == 2``) and dependents whose
ages are drawn inside the age bands the file counts (``nu06``, ``nu13``, ``n24``,
``nu18``, ``n1820``, ``n21``, ``elderly_dependents``). Amounts are named as
policyengine-us person input variables and uprated from the survey's tax year to the
build year with PolicyEngine's own uprating indices (see ``uprating.py``).

Reading and checking the files is ``cps_taxcalc_files.py``, dependents' age bands
``cps_taxcalc_dependents.py``, and the further inputs (deductions, benefits, receipt,
disability) ``cps_taxcalc_inputs.py``. Plain functions only: the Dagster asset in
``assets.py`` wraps ``load_taxcalc_cps``.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.files import file_sha256
from microplex_assets.sources import cps_taxcalc_inputs as inputs
from microplex_assets.sources.cps_taxcalc_dependents import (
    AGE_BANDS as AGE_BANDS,  # re-exported: the bands dependents' ages are drawn in
)
from microplex_assets.sources.cps_taxcalc_dependents import (
    dependent_band_counts,
    draw_dependent_ages,
)
from microplex_assets.sources.cps_taxcalc_files import (
    COUNT_COLUMNS,
    read_csv_file,
    read_weights,
    validate_cps,
)
from microplex_assets.sources.frame import ObservationFrame
from microplex_assets.uprating import CPI_U, uprating_factor, uprating_factors
from microplex_resources.policyengine_runtime import is_input_variable

SOURCE = "cps_taxcalc"

# Person amounts the file splits between head (``p``) and spouse (``s``).
# PolicyEngine's ``employment_income`` and ``self_employment_income`` are sums
# (``adds``) of these ``_before_lsr`` inputs plus a labour-supply response.
SPLIT_AMOUNTS: dict[str, tuple[str, str]] = {
    "employment_income_before_lsr": ("e00200p", "e00200s"),
    "self_employment_income_before_lsr": ("e00900p", "e00900s"),
    "farm_income": ("e02100p", "e02100s"),
}
# Tax-unit amounts, all given to the head: variable -> (column, column subtracted or None).
HEAD_AMOUNTS: dict[str, tuple[str, str | None]] = {
    "taxable_interest_income": ("e00300", None),
    "tax_exempt_interest_income": ("e00400", None),
    "qualified_dividend_income": ("e00650", None),
    # e00600 is all ordinary dividends, qualified included.
    "non_qualified_dividend_income": ("e00600", "e00650"),
    "taxable_private_pension_income": ("e01700", None),
    "tax_exempt_private_pension_income": ("e01500", "e01700"),
    "taxable_ira_distributions": ("e01400", None),
    "alimony_income": ("e00800", None),
    "unemployment_compensation": ("e02300", None),
    # e01100 is taxdata's rename of the Census tax model's CGAGIX (capital gains in AGI,
    # taxdata cps/finalprep.py), not Form 1040 distributions alone: all the capital gains
    # the CPS file carries, kept long-term (not non_sch_d_capital_gains, whose SOI targets
    # are distributions without Schedule D only). ``long_term_capital_gains`` is a sum
    # (adds) of this input and a response.
    "long_term_capital_gains_before_response": ("e01100", None),
    "charitable_cash_donations": ("e19800", None),
    "charitable_non_cash_donations": ("e20100", None),
    "real_estate_taxes": ("e18500", None),
    "home_mortgage_interest": ("e19200", None),
    "other_medical_expenses": ("e17500", None),
    "student_loan_interest": ("e03210", None),
}
SOCIAL_SECURITY_COLUMN = "e02400"
SOCIAL_SECURITY_RETIREMENT_AGE = 62
SOCIAL_SECURITY = ("social_security_retirement", "social_security_disability")
PERSON_AMOUNTS: tuple[str, ...] = (*SPLIT_AMOUNTS, *HEAD_AMOUNTS, *SOCIAL_SECURITY)

# Reported benefits: source diagnostics on the tax-unit table, never exported (stage 6
# turns SNAP, TANF, WIC and housing receipt into PolicyEngine's receipt and take-up flags;
# ``vet_ben`` is an input, ``veterans_benefits``: see cps_taxcalc_inputs.py).
REPORTED_BENEFITS: dict[str, str] = {
    "snap_ben": "snap_reported",
    "ssi_ben": "ssi_reported",
    "tanf_ben": "tanf_reported",
    "wic_ben": "wic_reported",
    "housing_ben": "housing_reported",
    "mcaid_ben": "medicaid_reported",
    "mcare_ben": "medicare_reported",
    "other_ben": "other_benefits_reported",
}
CHILDCARE_COLUMN = "e32800"
CHILDCARE_INPUT = "tax_unit_childcare_expenses"
CHILDCARE_REPORTED = "childcare_expenses_reported"

STRUCTURE_COLUMNS = (
    "RECID",
    "FLPDYR",
    "h_seq",
    "a_lineno",
    "ffpos",
    "fips",
    "MARS",
    "s006",
    "age_head",
    "age_spouse",
    "blind_head",
    "blind_spouse",
    "agi_bin",
    "EIC",
)
REQUIRED_COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys(
        [
            *STRUCTURE_COLUMNS,
            *COUNT_COLUMNS,
            *(c for pair in SPLIT_AMOUNTS.values() for c in pair),
            *(c for pair in HEAD_AMOUNTS.values() for c in pair if c),
            SOCIAL_SECURITY_COLUMN,
            CHILDCARE_COLUMN,
            *REPORTED_BENEFITS,
            *inputs.REQUIRED_COLUMNS,
        ]
    )
)


def shipped_paths() -> tuple[Path, Path]:
    """Paths of the ``cps.csv.gz`` and ``cps_weights.csv.gz`` that taxcalc ships."""
    import taxcalc

    folder = Path(os.path.dirname(taxcalc.__file__))
    return folder / "cps.csv.gz", folder / "cps_weights.csv.gz"


def check_person_inputs(
    system: Any, names: tuple[str, ...] = (*PERSON_AMOUNTS, *inputs.PERSON_INPUTS)
) -> None:
    """Fail early if a person column is not a policyengine-us person input variable (or a
    tax-unit input column not a tax-unit one)."""
    wrong = [name for name in names if not is_input_variable(system, name, "person")]
    wrong += [n for n in inputs.TAX_UNIT_INPUTS if not is_input_variable(system, n, "tax_unit")]
    if wrong:
        raise ValueError(f"not policyengine-us input variables on their entity: {wrong}")


def load_taxcalc_cps(
    year: int,
    seed: int,
    system: Any,
    cps_path: Path | None = None,
    weights_path: Path | None = None,
    allow_s006: bool = False,
) -> ObservationFrame:
    """Load taxcalc's CPS file as households, tax units and persons, uprated to ``year``.

    ``system`` is the policyengine-us tax-benefit system: it names the input variables
    and supplies the uprating indices. ``seed`` drives the dependent-age draws only.
    Paths default to the files taxcalc ships. Without ``WT<year>`` in the weights file
    the load fails unless ``allow_s006`` (then ``provenance["weight_fallback"]`` says so).
    """
    default_cps, default_weights = shipped_paths()
    cps_path = Path(cps_path) if cps_path is not None else default_cps
    weights_path = Path(weights_path) if weights_path is not None else default_weights
    check_person_inputs(system)

    cps = read_csv_file(cps_path, "cps")
    validate_cps(cps, cps_path, REQUIRED_COLUMNS)
    weights, weight_column = read_weights(weights_path, year, len(cps), cps, cps_path, allow_s006)
    cps = cps.assign(_weight=weights)

    # Households: (FLPDYR, h_seq), numbered 1..H in sorted order; tax units follow them.
    cps["_household"] = cps.groupby(["FLPDYR", "h_seq"], sort=True).ngroup() + 1
    cps = cps.sort_values(["_household", "a_lineno"], kind="stable").reset_index(drop=True)
    units = len(cps)
    tax_unit_id = np.arange(1, units + 1, dtype=np.int64)
    household_of_unit = cps["_household"].to_numpy(dtype=np.int64)
    source_year = cps["FLPDYR"].to_numpy(dtype=np.int64)
    source_years = sorted(int(y) for y in np.unique(source_year))

    grouped = cps.groupby("_household", sort=True)
    household = pd.DataFrame(
        {
            "household_id": grouped["_household"].first().to_numpy(dtype=np.int64),
            "state_fips": grouped["fips"].first().to_numpy(dtype=np.int64),
            # The mean keeps sum(household weight x tax units) = sum(tax-unit weights).
            "household_weight": grouped["_weight"].mean().to_numpy(dtype=float),
            "source_year": grouped["FLPDYR"].first().to_numpy(dtype=np.int64),
            "h_seq": grouped["h_seq"].first().to_numpy(dtype=np.int64),
        }
    )

    uprating: dict[str, dict[str, Any]] = {}

    def factor_array(variable: str, columns: list[str], path: str | None = None) -> np.ndarray:
        """Per-unit factor for ``variable``; records the index and factors in provenance."""
        if path is None:
            index, factors = uprating_factors(system, variable, source_years, year)
            path, reason = index.path, index.reason
        else:
            factors = {y: uprating_factor(system, path, y, year) for y in source_years}
            reason = "cpi_u (reported amount)"
        uprating[variable] = {
            "index": path,
            "index_reason": reason,
            "source_columns": columns,
            "factors": {str(y): round(f, 6) for y, f in factors.items()},
        }
        lookup = np.zeros(max(source_years) + 1)
        for y, f in factors.items():
            lookup[y] = f
        return lookup[source_year]

    # Tax units.
    tax_unit = pd.DataFrame(
        {
            "tax_unit_id": tax_unit_id,
            "household_id": household_of_unit,
            "filing_status": cps["MARS"].to_numpy(dtype=np.int64),
            "tax_unit_weight": cps["_weight"].to_numpy(dtype=float),
            "source_record_id": cps["RECID"].to_numpy(dtype=np.int64),
            "agi_bin": cps["agi_bin"].to_numpy(dtype=np.int64),
            "eitc_children": cps["EIC"].to_numpy(dtype=np.int64),
        }
    )
    childcare_name = (
        CHILDCARE_INPUT
        if is_input_variable(system, CHILDCARE_INPUT, "tax_unit")
        else CHILDCARE_REPORTED
    )
    childcare_index = None if childcare_name == CHILDCARE_INPUT else CPI_U
    tax_unit[childcare_name] = cps[CHILDCARE_COLUMN].to_numpy(dtype=float) * factor_array(
        childcare_name, [CHILDCARE_COLUMN], childcare_index
    )
    for column, name in REPORTED_BENEFITS.items():
        tax_unit[name] = cps[column].to_numpy(dtype=float) * factor_array(name, [column], CPI_U)

    # Persons: head (line 0), spouse (line 1), dependents (lines 2..., oldest first).
    rng = np.random.default_rng(seed)
    bands, dependents, adjusted = dependent_band_counts(cps)
    has_spouse = cps["MARS"].to_numpy() == 2
    spouse_units = np.flatnonzero(has_spouse)
    dependent_units, dependent_ages = draw_dependent_ages(bands, rng)
    first_dependent = np.cumsum(dependents) - dependents
    dependent_lines = 2 + np.arange(len(dependent_units)) - first_dependent[dependent_units]

    unit_index = np.concatenate([np.arange(units), spouse_units, dependent_units])
    line = np.concatenate(
        [np.zeros(units, np.int64), np.ones(len(spouse_units), np.int64), dependent_lines]
    )
    order = np.lexsort((line, unit_index))
    unit_index, line = unit_index[order], line[order]
    ages = np.concatenate(
        [cps["age_head"].to_numpy(), cps["age_spouse"].to_numpy()[spouse_units], dependent_ages]
    )[order]
    blind = np.concatenate(
        [
            cps["blind_head"].to_numpy() > 0,
            cps["blind_spouse"].to_numpy()[spouse_units] > 0,
            np.zeros(len(dependent_units), bool),
        ]
    )[order]
    is_head = line == 0
    is_spouse = line == 1
    role = np.where(is_head, "head", np.where(is_spouse, "spouse", "dependent"))
    people = len(unit_index)
    person = pd.DataFrame(
        {
            "person_id": np.arange(1, people + 1, dtype=np.int64),
            "household_id": household_of_unit[unit_index],
            "tax_unit_id": tax_unit_id[unit_index],
            "family_position": cps["ffpos"].to_numpy(dtype=np.int64)[unit_index],
            "role": pd.array(role, dtype="str"),
            "line_in_tax_unit": line.astype(np.int64),
            "age": ages.astype(np.int64),
            "is_blind": blind,
        }
    )
    head_units = unit_index[is_head]
    spouse_of = unit_index[is_spouse]

    def place(head_values: np.ndarray, spouse_values: np.ndarray | None = None) -> np.ndarray:
        out = np.zeros(people)
        out[is_head] = head_values[head_units]
        if spouse_values is not None:
            out[is_spouse] = spouse_values[spouse_of]
        return out

    for variable, (head_column, spouse_column) in SPLIT_AMOUNTS.items():
        factor = factor_array(variable, [head_column, spouse_column])
        person[variable] = place(
            cps[head_column].to_numpy(float) * factor, cps[spouse_column].to_numpy(float) * factor
        )
    clipped: dict[str, int] = {}
    for variable, (column, minus) in HEAD_AMOUNTS.items():
        amount = cps[column].to_numpy(float)
        if minus is not None:
            amount = amount - cps[minus].to_numpy(float)
            clipped[variable] = int((amount < 0).sum())
            amount = np.clip(amount, 0, None)
        factor = factor_array(variable, [column] + ([f"-{minus}"] if minus else []))
        person[variable] = place(amount * factor)

    # Social Security: split evenly between head and spouse when both exist (the file has
    # one tax-unit total); each share is retirement at 62+, otherwise disability.
    benefit = cps[SOCIAL_SECURITY_COLUMN].to_numpy(float) / np.where(has_spouse, 2.0, 1.0)
    share = place(benefit, benefit)
    retired = person["age"].to_numpy() >= SOCIAL_SECURITY_RETIREMENT_AGE
    for variable, mask in zip(SOCIAL_SECURITY, (retired, ~retired), strict=True):
        factor = factor_array(variable, [SOCIAL_SECURITY_COLUMN])
        person[variable] = np.where(mask, share * factor[unit_index], 0.0)
    added = inputs.add_cps_inputs(cps, person, tax_unit, unit_index, factor_array)

    xtot = cps["XTOT"].to_numpy()
    below = int((xtot < 1 + has_spouse).sum())
    notes = [
        "households are (FLPDYR, h_seq): three pooled ASEC years, so h_seq repeats across years",
        "person count per tax unit = XTOT (head, spouse if MARS==2, XTOT-1-spouse dependents)",
        "dependent ages drawn uniformly within the file's age bands (numpy default_rng(seed))",
        f"{int(adjusted.sum())} tax units whose age bands disagree with XTOT were filled into "
        "[21,65) or trimmed (see dependent_band_counts)",
        "household_weight = mean of its tax units' weights (keeps the weighted tax-unit total)",
        "long_term_capital_gains_before_response = e01100 (CGAGIX: capital gains in AGI)",
        "social security e02400 split evenly head/spouse; retirement if age >= 62 else disability",
        "reported benefits (*_reported) are uprated with CPI-U and are diagnostics, not exports",
        "vet_ben, e03150, e20400 on the head; e03300, e03270 on the self-employed member "
        "(dropped without self-employment income); e03240 on the tax unit; DSI -> the head's "
        "claimed_as_dependent_on_another_return (see cps_taxcalc_inputs.py)",
        "Medicaid enrollees round(mcaid_ben / value per enrollee), SSI recipients "
        "round(ssi_ben / 12 x federal benefit rate), placed by age; is_disabled for SSI "
        "recipients under 65 and heads 18-61 of units with Social Security and nobody 62+",
        "pencon_p/pencon_s (all zero) and f2441 (= nu13) are not used",
    ]
    if childcare_name == CHILDCARE_REPORTED:
        notes.append(
            f"e32800 kept as {CHILDCARE_REPORTED}: "
            f"{CHILDCARE_INPUT} is a formula in policyengine-us"
        )
    large = [
        f"{v} {y}->{year}: x{f}"
        for v, spec in uprating.items()
        for y, f in spec["factors"].items()
        if f > 3 or f < 1 / 3
    ]
    if large:
        notes.append(f"large uprating factors from PolicyEngine's indices: {large}")
    try:
        package_version = version("taxcalc")
    except PackageNotFoundError:  # pragma: no cover - taxcalc is a dependency
        package_version = "unknown"

    frame = ObservationFrame(
        source=SOURCE,
        year=year,
        tables={"household": household, "tax_unit": tax_unit, "person": person},
        links={"person": ["household", "tax_unit"], "tax_unit": ["household"]},
        provenance={
            "file": str(cps_path),
            "weights_file": str(weights_path),
            "sha256": {"file": file_sha256(cps_path), "weights_file": file_sha256(weights_path)},
            "package": "taxcalc",
            "package_version": package_version,
            "kind": "real",
            "year": year,
            "seed": seed,
            "source_years": source_years,
            "weight_column": weight_column,
            "weight_fallback": None
            if weight_column != "s006"
            else f"{weights_path} has no WT{year}: s006 (survey-year weights) used, as "
            "cps_weights_allow_s006 allows",
            "uprating": uprating,
            "records": units,
            "households": len(household),
            "persons": people,
            "age_band_adjusted_rows": int(adjusted.sum()),
            "xtot_below_head_and_spouse_rows": below,
            "spouse_age_zero_rows": int((has_spouse & (cps["age_spouse"].to_numpy() == 0)).sum()),
            "negative_differences_clipped": clipped,
            "inputs": added,
            "notes": notes,
        },
    )
    frame.validate()
    return frame
