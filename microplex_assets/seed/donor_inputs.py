"""What donor integration reads: its configuration, each scaffold tax unit's features, the
conditioning chosen from them, and the donor rows allowed to donate."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from microplex_assets.seed.canonical import INCOME_COLUMNS
from microplex_assets.seed.donor_forest import (
    DERIVED_FROM_FILING_STATUS,
    donor_unit_features,
)
from microplex_assets.sources import tax_records as tr
from microplex_assets.sources.frame import ObservationFrame, SourceFormatError

# Amounts the donor is authoritative for: the CPS under-reports or lacks them.
DEFAULT_IMPUTED: tuple[str, ...] = (
    "long_term_capital_gains_before_response",
    "short_term_capital_gains",
    "non_sch_d_capital_gains",  # distributions without Schedule D (SOI's own targets)
    "qualified_dividend_income",
    "non_qualified_dividend_income",
    "taxable_interest_income",
    "tax_exempt_interest_income",
    "partnership_income",
    "s_corp_income",
    "rental_income",
    "estate_income",
    "charitable_cash_donations",
    "charitable_non_cash_donations",
    "real_estate_taxes",
    "home_mortgage_interest",
    "other_medical_expenses",
)
# Amounts the scaffold stays authoritative for even when the donor carries them.
DEFAULT_OVERRIDES: tuple[str, ...] = (
    "employment_income_before_lsr",
    "self_employment_income_before_lsr",
    "taxable_private_pension_income",
    "taxable_ira_distributions",
    "unemployment_compensation",
    "social_security_retirement",
    "social_security_disability",
)
DEFAULT_CONDITIONING: tuple[str, ...] = (
    *DERIVED_FROM_FILING_STATUS,
    "age_head",
    "age_spouse",
    "count_dependents",
    "employment_income_before_lsr",
    "self_employment_income_before_lsr",
    "taxable_private_pension_income",
    "taxable_ira_distributions",
    "unemployment_compensation",
)
EVIDENCE_QUANTILES: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
WAGE = "employment_income_before_lsr"
# The scaffold's reported income, summed per tax unit, that places it in its own file's
# income ranking (for ``rank_leap``).
SCAFFOLD_INCOME: tuple[str, ...] = tuple(
    c for c in INCOME_COLUMNS if not c.startswith(("social_security", "tax_exempt_private"))
)
SELF_EMPLOYMENT = "self_employment_income_before_lsr"
OVERRIDE_SOURCE = "scaffold (override)"
NOT_IMPUTED_SOURCE = "scaffold (not imputed)"


@dataclass(frozen=True)
class DonorIntegrationConfig:
    """What to condition on, what to impute, which donor rows may donate, forest size."""

    conditioning: tuple[str, ...] = DEFAULT_CONDITIONING
    imputed: tuple[str, ...] = DEFAULT_IMPUTED
    overrides: tuple[str, ...] = DEFAULT_OVERRIDES
    # Donor tax_unit_id values that never donate (e.g. the fixed top-wealth spine).
    excluded_ids: frozenset[int] = frozenset()
    # Boolean donor tax_unit columns; a row true in any of them never donates.
    exclusion_flags: tuple[str, ...] = ()
    n_estimators: int = 100
    min_samples_leaf: int = 5
    max_fit_rows: int = 40_000
    seed: int = 0
    held_out_share: float = 0.2
    evidence: bool = True
    n_jobs: int = -1
    # Scaffold tax-unit columns: a unit with any of them > 0 keeps its own values. The tax
    # donor holds filers' returns only; means-tested recipients (SSI, SNAP, TANF) are mostly
    # outside its support, and a draw of a filer's interest and dividends would take their
    # benefits away in PolicyEngine (income and asset tests).
    keep_scaffold_flags: tuple[str, ...] = ("ssi_reported", "snap_reported", "tanf_reported")
    # A unit of weight W only takes donor records that >= W donor returns reach in AGI.
    weight_support: bool = True
    # ... and, optionally, with D the scaffold's weighted units at or above the unit's own
    # reported income, only records that >= rank_leap x D donor returns reach: a unit
    # climbs at most ~1/rank_leap in income rank over what the survey reported. Off by
    # default: 0.1 helped a 5,000-household build (held-out 0.677 -> 0.347) but hurt the
    # 40,000 one (train 0.0298 -> 0.0370, held-out 0.641 -> 0.945) by cutting the donor's
    # capital-income tail the national targets need.
    rank_leap: float | None = None
    # Swap whole drawn records between similar units in different states so the weighted
    # units in each IRS SOI AGI band at or above ``top_tail_floor`` follow the SOI state
    # counts (the donor has no geography; see ``top_tail_placement``). 40,000 households,
    # mean over states of squared relative errors of returns in the bands $100k-200k /
    # 200k-500k / 500k-1m / 1m+: off 0.021 / 0.087 / 0.45 / 0.36; floor $500k 0.020 /
    # 0.108 / 0.014 / 0.021; $200k 0.030 / 0.004 / 0.014 / 0.021; $100k: 0.001 / ... but
    # $75k-100k 0.025 -> 0.065 (the partners' records push errors one band down).
    top_tail_placement: bool = True
    top_tail_floor: float = 200_000.0
    # Imputed variables whose scaffold amounts stay wherever the scaffold's tax unit reports
    # a nonzero one (each member's own amount): the donor fills only units reporting none.
    keep_reported: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        both = sorted(set(self.imputed) & set(self.overrides))
        if both:
            raise ValueError(f"variables both imputed and overridden: {both}")
        if not self.imputed:
            raise ValueError("no variables to impute")
        stray = sorted(set(self.keep_reported) - set(self.imputed))
        if stray:
            raise ValueError(f"keep_reported names variables that are not imputed: {stray}")
        if not 0 < self.held_out_share < 1:
            raise ValueError(f"held_out_share must be in (0, 1), got {self.held_out_share}")
        if self.n_estimators < 1 or self.min_samples_leaf < 1 or self.max_fit_rows < 2:
            raise ValueError("n_estimators, min_samples_leaf >= 1 and max_fit_rows >= 2")


# --- features --------------------------------------------------------------------------


def scaffold_unit_features(seed: ObservationFrame, candidates: tuple[str, ...]) -> pd.DataFrame:
    """One row per scaffold tax unit (index tax_unit_id): weight, filing status, candidates.

    Ages and dependents come from the person roles; amounts are summed over the unit's
    persons (the donor holds tax-unit totals). Candidates the scaffold cannot provide are
    simply absent, so ``choose_conditioning`` can say why.
    """
    person, unit = seed.tables["person"], seed.tables["tax_unit"]
    if "role" not in person.columns:
        raise SourceFormatError(f"{seed.source}: person table lacks 'role' (head/spouse/...)")
    heads = person[person["role"] == "head"]
    per_unit = heads["tax_unit_id"].value_counts().reindex(unit["tax_unit_id"], fill_value=0)
    if (per_unit != 1).any():
        bad = per_unit[per_unit != 1]
        raise SourceFormatError(
            f"{seed.source}: {len(bad)} tax units do not have exactly one head "
            f"(e.g. tax_unit_id {bad.index[0]} has {bad.iloc[0]})"
        )
    features = pd.DataFrame(index=pd.Index(unit["tax_unit_id"], name="tax_unit_id"))
    features["weight"] = unit_weights(seed).to_numpy()
    status = unit[tr.FILING_STATUS].to_numpy()
    features[tr.FILING_STATUS] = status
    for name, code in DERIVED_FROM_FILING_STATUS.items():
        features[name] = (status == code).astype(float)
    by_unit = person.groupby("tax_unit_id")
    features["age_head"] = heads.set_index("tax_unit_id")["age"].reindex(features.index)
    spouse_age = person[person["role"] == "spouse"].groupby("tax_unit_id")["age"].max()
    features["age_spouse"] = spouse_age.reindex(features.index, fill_value=0)
    dependents = (person["role"] == "dependent").groupby(person["tax_unit_id"]).sum()
    features["count_dependents"] = dependents.reindex(features.index, fill_value=0)
    amounts = [
        c
        for c in dict.fromkeys((*candidates, WAGE))
        if c in person.columns and c not in features.columns
    ]
    if amounts:
        summed = by_unit[amounts].sum().reindex(features.index, fill_value=0.0)
        features[amounts] = summed.to_numpy(dtype=float)
    return features


def unit_weights(seed: ObservationFrame) -> pd.Series:
    """The seed's household weight of each tax unit (the sampled weight), else its own."""
    unit, household = seed.tables["tax_unit"], seed.tables["household"]
    if "household_weight" in household.columns:
        weight = household.set_index("household_id")["household_weight"]
        return unit["household_id"].map(weight).astype(float)
    if tr.WEIGHT in unit.columns:
        return unit[tr.WEIGHT].astype(float)
    raise SourceFormatError(f"{seed.source}: no household_weight or {tr.WEIGHT} column")


def choose_conditioning(
    scaffold_units: pd.DataFrame,
    donor: ObservationFrame | pd.DataFrame,
    config: DonorIntegrationConfig,
) -> tuple[list[str], dict[str, dict[str, str]]]:
    """Candidates both files observe and that vary; a reason for each chosen and rejected."""
    table = donor.tables[tr.TAX_UNIT_TABLE] if isinstance(donor, ObservationFrame) else donor
    donor_columns = set(table.columns) | (
        set(DERIVED_FROM_FILING_STATUS) if tr.FILING_STATUS in table.columns else set()
    )
    chosen: dict[str, str] = {}
    rejected: dict[str, str] = {}
    for name in dict.fromkeys(config.conditioning):
        if name in config.imputed:
            rejected[name] = "imputed from the donor, so it cannot also be conditioned on"
        elif name not in scaffold_units.columns:
            rejected[name] = "absent in scaffold"
        elif name not in donor_columns:
            rejected[name] = "absent in donor"
        elif scaffold_units[name].nunique() < 2:
            rejected[name] = f"constant in scaffold ({scaffold_units[name].iloc[0]})"
        elif donor_unit_features(table, [name])[name].nunique() < 2:
            rejected[name] = "constant in donor"
        else:
            share = float((scaffold_units[name] != 0).mean())
            chosen[name] = f"in both and varies (scaffold nonzero share {share:.2f})"
    if not chosen:
        raise ValueError(f"no conditioning variable is usable: {rejected}")
    return list(chosen), {"chosen": chosen, "rejected": rejected}


# --- donor rows ------------------------------------------------------------------------


def eligible_donor_rows(
    donor: ObservationFrame, config: DonorIntegrationConfig
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Donor rows allowed to donate, contract-checked, and counts of what was excluded.

    Nonpositive weights, ``excluded_ids`` and rows flagged by ``exclusion_flags`` are
    dropped *before* the contract check, so e.g. a zero-weight spine record is excluded
    rather than failing the whole donor.
    """
    if tr.TAX_UNIT_TABLE not in donor.tables:
        raise SourceFormatError(f"{donor.source}: tax-record donor has no '{tr.TAX_UNIT_TABLE}'")
    table = donor.tables[tr.TAX_UNIT_TABLE]
    needed = [*tr.REQUIRED_COLUMNS, *config.imputed, *config.exclusion_flags]
    missing = [c for c in dict.fromkeys(needed) if c not in table.columns]
    if missing:
        raise SourceFormatError(f"{donor.source}: tax-record donor lacks columns {missing}")
    masks = {
        "nonpositive_weight": ~(table[tr.WEIGHT] > 0).to_numpy(),
        "excluded_ids": table[tr.ID].isin(config.excluded_ids).to_numpy(),
    }
    for flag in config.exclusion_flags:
        masks[f"flag:{flag}"] = table[flag].fillna(False).astype(bool).to_numpy()
    excluded = np.logical_or.reduce(list(masks.values()))
    counts = {name: int(mask.sum()) for name, mask in masks.items()}
    counts.update(donor_rows=len(table), excluded=int(excluded.sum()))
    rows = table.loc[~excluded].reset_index(drop=True)
    counts["eligible"] = len(rows)
    if rows.empty:
        raise SourceFormatError(f"{donor.source}: every donor row is excluded ({counts})")
    check = ObservationFrame(donor.source, donor.year, {tr.TAX_UNIT_TABLE: rows}, links={})
    tr.validate_tax_records(check)
    for column in config.imputed:
        if not pd.api.types.is_numeric_dtype(rows[column]) or rows[column].isna().any():
            raise SourceFormatError(f"{donor.source}: imputed column '{column}' is not clean")
    return rows, counts


def imputing_self_employment(
    config: DonorIntegrationConfig, keep_reported: bool = False
) -> DonorIntegrationConfig:
    """``config`` with self-employment drawn from the donor (whole record, on the head)
    instead of kept from the scaffold and conditioned on; with ``keep_reported`` the
    scaffold's own amounts stay wherever its unit reports one, and the donor's fill only
    the units that report none.

    Why: the CPS misses most Schedule C losses and small profits. taxcalc's CPS file has
    0.48m weighted units with a net loss (-$10.6bn) and 9.8m with a profit; SOI's 2024
    targets hold 9.17m returns with losses (-$173bn), and even the design weights reach
    1-4% of the low-AGI loss and profit counts. Cost of the whole draw: the head/spouse
    split of the CPS amount is lost (the donor has one tax-unit amount), and units that
    report self-employment get a donor's amount instead. ``keep_reported`` keeps both for
    the units that report one. Self-employment leaves the conditioning in both modes:
    conditioned on a reported zero, the donor would fill almost nothing.
    """
    return dataclasses.replace(
        config,
        imputed=(*config.imputed, SELF_EMPLOYMENT),
        overrides=tuple(name for name in config.overrides if name != SELF_EMPLOYMENT),
        keep_reported=(
            (*config.keep_reported, SELF_EMPLOYMENT) if keep_reported else config.keep_reported
        ),
    )
