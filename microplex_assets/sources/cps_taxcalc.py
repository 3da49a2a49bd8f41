"""Stage-2 CPS source: taxcalc's shipped ``cps.csv.gz`` rebuilt into households, tax units, persons.

Tax-Calculator ships 280,005 real CPS-derived tax units (ASEC survey years 2012-2014,
pooled) with their household key ``(FLPDYR, h_seq)``, state, head/spouse splits of
earnings, tax-unit amounts and reported benefits. PolicyEngine needs persons, so each
tax unit becomes ``XTOT`` persons: head, spouse (``MARS == 2``) and dependents whose
ages are drawn inside the age bands the file counts (``nu06``, ``nu13``, ``n24``,
``nu18``, ``n1820``, ``n21``, ``elderly_dependents``). Amounts are named as
policyengine-us person input variables and uprated from the survey's tax year to the
build year with PolicyEngine's own uprating indices (see ``uprating.py``).

Plain functions only: the Dagster asset in ``assets.py`` wraps ``load_taxcalc_cps``.
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
from microplex_assets.sources.frame import ObservationFrame, SourceFormatError
from microplex_assets.sources.uprating import CPI_U, uprating_factor, uprating_factors
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
    # e01100 is capital gain *distributions* (1040 line 13 without Schedule D): the only
    # capital gains the CPS file carries; they are long-term by law (IRC 852(b)(3)).
    # ``long_term_capital_gains`` itself is a sum (adds) of this input and a response.
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

# Dependent age bands [low, high) and how many dependents the file puts in each.
AGE_BANDS: tuple[tuple[int, int], ...] = (
    (0, 6),
    (6, 13),
    (13, 17),
    (17, 18),
    (18, 21),
    (21, 65),
    (65, 86),
)
FILL_BAND = 5  # dependents the bands miss are working-age adults (qualifying relatives)
TRIM_ORDER = (5, 4, 6, 3, 2, 1, 0)  # surplus leaves the least specific bands first

COUNT_COLUMNS = ("XTOT", "nu06", "nu13", "n24", "nu18", "n1820", "n21", "elderly_dependents")
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
NON_NEGATIVE_COLUMNS = (*COUNT_COLUMNS, "s006", "age_head", "age_spouse")
# 50 states and DC.
STATE_FIPS: frozenset[int] = frozenset(
    {1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26}
    | {27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 44, 45, 46, 47}
    | {48, 49, 50, 51, 53, 54, 55, 56}
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


def _read_csv(path: Path, what: str, usecols: list[str] | None = None) -> pd.DataFrame:
    if not path.is_file():
        raise SourceFormatError(f"{what} file not found: {path}")
    try:
        return pd.read_csv(path, usecols=usecols)
    except (ValueError, OSError, EOFError, pd.errors.ParserError) as error:
        raise SourceFormatError(f"{path}: cannot be read as a gzip CSV ({error})") from error


def _require_numeric(frame: pd.DataFrame, path: Path, columns: tuple[str, ...] | list[str]) -> None:
    """Missing, non-numeric or empty cells in a required column are format errors."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SourceFormatError(
            f"{path}: missing column(s) {missing}; expected the taxcalc cps.csv.gz columns "
            f"including {list(columns)}"
        )
    for column in columns:
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            parsed = pd.to_numeric(values, errors="coerce")
            bad = values[parsed.isna() & values.notna()]
            example = bad.iloc[0] if len(bad) else values.iloc[0]
            raise SourceFormatError(
                f"{path}: column '{column}' expected numeric, found {values.dtype} "
                f"(e.g. {example!r} at row {bad.index[0] if len(bad) else 0})"
            )
        empty = values.isna()
        if empty.any():
            raise SourceFormatError(
                f"{path}: column '{column}' has {int(empty.sum())} empty values "
                f"(first at row {int(np.flatnonzero(empty.to_numpy())[0])}); expected numeric"
            )


def _validate_cps(cps: pd.DataFrame, path: Path) -> None:
    _require_numeric(cps, path, REQUIRED_COLUMNS)
    for column in NON_NEGATIVE_COLUMNS:
        negative = cps[column] < 0
        if negative.any():
            row = int(np.flatnonzero(negative.to_numpy())[0])
            raise SourceFormatError(
                f"{path}: column '{column}' has {int(negative.sum())} negative values "
                f"(e.g. {cps[column].iloc[row]} at row {row}); expected counts >= 0"
            )
    bad_mars = ~cps["MARS"].isin([1, 2, 3, 4, 5])
    if bad_mars.any():
        raise SourceFormatError(
            f"{path}: column 'MARS' has values {sorted(cps.loc[bad_mars, 'MARS'].unique())[:5]}; "
            "expected filing status 1-5"
        )
    bad_fips = ~cps["fips"].isin(list(STATE_FIPS))
    if bad_fips.any():
        raise SourceFormatError(
            f"{path}: column 'fips' has {int(bad_fips.sum())} values that are not a state "
            f"FIPS code (e.g. {sorted(cps.loc[bad_fips, 'fips'].unique())[:5]}); "
            "expected one of the 50 states or DC"
        )
    states = cps.groupby(["FLPDYR", "h_seq"])["fips"].nunique()
    split = states[states > 1]
    if len(split):
        year, h_seq = split.index[0]
        raise SourceFormatError(
            f"{path}: column 'fips' differs within {len(split)} household(s) "
            f"(e.g. FLPDYR={year}, h_seq={h_seq}); expected one state per household"
        )


def _read_weights(
    path: Path, year: int, rows: int, cps: pd.DataFrame, cps_path: Path
) -> tuple[np.ndarray, str]:
    """Tax-unit weights in persons: ``WT<year>`` from the weights file, else ``s006``."""
    if not path.is_file():
        raise SourceFormatError(f"weights file not found: {path}")
    try:
        columns = list(pd.read_csv(path, nrows=0).columns)
    except (ValueError, OSError, EOFError, pd.errors.ParserError) as error:
        raise SourceFormatError(f"{path}: cannot be read as a gzip CSV ({error})") from error
    if not columns:
        raise SourceFormatError(f"{path}: no columns; expected WT2014..WT2036")
    wanted = f"WT{year}"
    column = wanted if wanted in columns else None
    weights_frame = _read_csv(path, "weights", usecols=[column or columns[0]])
    if len(weights_frame) != rows:
        raise SourceFormatError(
            f"{path}: {len(weights_frame)} weight rows but {cps_path} has {rows} records; "
            "expected one weight row per cps record, in the same order"
        )
    if column is None:
        values, column_name, source = cps["s006"], "s006", cps_path
    else:
        _require_numeric(weights_frame, path, [column])
        values, column_name, source = weights_frame[column], column, path
    negative = values < 0
    if negative.any():
        row = int(np.flatnonzero(negative.to_numpy())[0])
        raise SourceFormatError(
            f"{source}: column '{column_name}' has {int(negative.sum())} negative weights "
            f"(e.g. {values.iloc[row]} at row {row}); expected weights >= 0"
        )
    # Both files store weights in hundredths of a person.
    return values.to_numpy(dtype=float) / 100.0, column_name


def dependent_band_counts(cps: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dependents per age band (rows x 7), adjusted to sum to each unit's dependent count.

    ``nu18``, ``n1820`` and ``n21`` count everyone in the unit, so head and spouse are
    taken out of their own band; ``nu06``, ``nu13`` and ``n24`` count dependents only
    (a 5-year-old head is in ``nu18`` but not ``nu06``). A spouse whose age is 0 in the
    file is in no band (all 103 such rows count XTOT - 1 people in the bands), so is
    not taken out. Units whose bands still disagree with the dependent count get the
    missing dependents in [21, 65) (the file's 992 head-of-household units that count
    one person too few are this case) or lose surplus ones in ``TRIM_ORDER``.

    Returns (band counts, dependents per unit, adjusted-row mask).
    """
    spouse = (cps["MARS"].to_numpy() == 2).astype(np.int64)
    head_age = cps["age_head"].to_numpy()
    spouse_age = cps["age_spouse"].to_numpy()
    spouse_banded = spouse * (spouse_age > 0)

    def in_band(low: int, high: int) -> np.ndarray:
        head = (head_age >= low) & (head_age < high)
        return head.astype(np.int64) + spouse_banded * ((spouse_age >= low) & (spouse_age < high))

    dependents = np.clip(cps["XTOT"].to_numpy() - 1 - spouse, 0, None)
    under6 = cps["nu06"].to_numpy()
    under13 = np.maximum(cps["nu13"].to_numpy(), under6)
    under17 = np.maximum(cps["n24"].to_numpy(), under13)
    under18 = np.maximum(cps["nu18"].to_numpy() - in_band(0, 18), under17)
    aged_18_20 = np.clip(cps["n1820"].to_numpy() - in_band(18, 21), 0, None)
    elderly = cps["elderly_dependents"].to_numpy()
    adults = np.clip(cps["n21"].to_numpy() - in_band(21, 200) - elderly, 0, None)
    bands = np.column_stack(
        [
            under6,
            under13 - under6,
            under17 - under13,
            under18 - under17,
            aged_18_20,
            adults,
            elderly,
        ]
    ).astype(np.int64)

    gap = dependents - bands.sum(axis=1)
    adjusted = gap != 0
    bands[:, FILL_BAND] += np.clip(gap, 0, None)
    surplus = np.clip(-gap, 0, None)
    for band in TRIM_ORDER:
        take = np.minimum(surplus, bands[:, band])
        bands[:, band] -= take
        surplus -= take
    assert (bands.sum(axis=1) == dependents).all()
    return bands, dependents, adjusted


def _draw_dependent_ages(
    bands: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Unit index and age of every dependent, oldest first within a unit."""
    units, n_bands = bands.shape
    counts = bands.ravel()
    band_of = np.repeat(np.tile(np.arange(n_bands), units), counts)
    unit_of = np.repeat(np.repeat(np.arange(units), n_bands), counts)
    low = np.array([b[0] for b in AGE_BANDS])[band_of]
    high = np.array([b[1] for b in AGE_BANDS])[band_of]
    ages = rng.integers(low, high)
    order = np.lexsort((-ages, unit_of))
    return unit_of[order], ages[order]


def load_taxcalc_cps(
    year: int,
    seed: int,
    system: Any,
    cps_path: Path | None = None,
    weights_path: Path | None = None,
) -> ObservationFrame:
    """Load taxcalc's CPS file as households, tax units and persons, uprated to ``year``.

    ``system`` is the policyengine-us tax-benefit system: it names the input variables
    and supplies the uprating indices. ``seed`` drives the dependent-age draws only.
    Paths default to the files taxcalc ships.
    """
    default_cps, default_weights = shipped_paths()
    cps_path = Path(cps_path) if cps_path is not None else default_cps
    weights_path = Path(weights_path) if weights_path is not None else default_weights
    check_person_inputs(system)

    cps = _read_csv(cps_path, "cps")
    _validate_cps(cps, cps_path)
    weights, weight_column = _read_weights(weights_path, year, len(cps), cps, cps_path)
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
    dependent_units, dependent_ages = _draw_dependent_ages(bands, rng)
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
        "long_term_capital_gains_before_response = e01100 capital gain distributions only",
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
