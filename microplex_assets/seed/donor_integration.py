"""Stage 4: tax-record donor integration with a quantile regression forest.

The CPS scaffold under-reports capital gains, dividends, pass-through income and itemised
deductions and misses the top tail; a tax-record donor (IRS PUF or the synthetic PUF-like
donor, contract in ``sources/tax_records.py``) is authoritative for them. This module gives
every scaffold tax unit those amounts, drawn from the donor conditional on what both files
observe (filing status, ages, dependents, wages, ...).

Method (why each choice):

* One multi-output ``quantile_forest.RandomForestQuantileRegressor`` partitions donor
  records on the conditioning variables, all imputed amounts at once (one fit instead of
  14; targets are ``asinh``-scaled and standardised so no single heavy-tailed amount
  dominates the splits). As in quantile-forest's default ``max_samples_leaf=1``, each
  leaf of each tree keeps one donor record, so a unit's conditional distribution is the
  ``n_estimators`` records its leaves hold. That leaf table is built here from
  ``forest.apply`` (weight-aware, whole records) and both the imputation and the
  evidence's quantiles read it, so the evidence measures exactly what is imputed.
* Each scaffold unit draws ``q ~ U(0, 1)`` (seeded) and receives the *whole* donor record
  at position ``q`` of that distribution ordered by donor AGI. Because ``q`` is uniform the
  draw reproduces the conditional distribution, not its median; because a whole record is
  taken, the joint structure across amounts (gains with dividends, losses, itemised
  deductions together) and the zero-inflation (most amounts are exactly 0) are kept.
* Weights: quantile-forest 1.4.2 fails on ``sample_weight`` with multi-output targets, so
  donor weights enter through the record kept in each leaf (drawn with probability
  proportional to weight) and, for donors above ``max_fit_rows``, through a
  systematic weight-proportional subsample (rows drawn more than once carry counts).
* The donor has no geography, so after the draw whole records are swapped between
  similar units in different states until each state's weighted units in the IRS SOI
  AGI bands from $200k up ($1m+, $500k-$1m, $200k-$500k) follow its SOI shares
  (``top_tail_placement.py``; on by default).
* Imputed amounts are tax-unit amounts on the head's person row; other members' values
  of an imputed variable are zeroed so nothing is counted twice. Overrides (wages,
  pensions, UC, Social Security) stay as the scaffold reports them.

``self_employment_income_before_lsr`` is *not* imputed by default: the scaffold splits it
between head and spouse (which the donor's tax-unit total would lose) and the CPS measures
it about as well as wages, so it is an override and a conditioning variable instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.files import json_safe
from microplex_assets.seed.canonical import INCOME_COLUMNS
from microplex_assets.seed.donor_forest import (
    DERIVED_FROM_FILING_STATUS,
    _rng,
    cached_donor_forest,
    conditional_quantiles,
    donor_unit_features,
    draw_records,
    fit_donor_forest,
    returns_at_or_above,
)
from microplex_assets.seed.hot_deck import hot_deck, pinball_loss
from microplex_assets.seed.top_tail_placement import TopTailReport, place_top_tail
from microplex_assets.sources import tax_records as tr
from microplex_assets.sources.frame import ObservationFrame, SourceFormatError

# Amounts the donor is authoritative for: the CPS under-reports or lacks them.
DEFAULT_IMPUTED: tuple[str, ...] = (
    "long_term_capital_gains_before_response",
    "short_term_capital_gains",
    "qualified_dividend_income",
    "non_qualified_dividend_income",
    "taxable_interest_income",
    "tax_exempt_interest_income",
    "partnership_income",
    "s_corp_income",
    "rental_income",
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

    def __post_init__(self) -> None:
        both = sorted(set(self.imputed) & set(self.overrides))
        if both:
            raise ValueError(f"variables both imputed and overridden: {both}")
        if not self.imputed:
            raise ValueError("no variables to impute")
        if not 0 < self.held_out_share < 1:
            raise ValueError(f"held_out_share must be in (0, 1), got {self.held_out_share}")
        if self.n_estimators < 1 or self.min_samples_leaf < 1 or self.max_fit_rows < 2:
            raise ValueError("n_estimators, min_samples_leaf >= 1 and max_fit_rows >= 2")


@dataclass
class DonorIntegrationReport:
    """How the donor was integrated and the evidence that it helps (for stage metadata)."""

    donor: str
    conditioning: list[str]
    conditioning_reasons: dict[str, dict[str, str]]
    donor_source: dict[str, str]
    exclusions: dict[str, int]
    overrides: list[str]
    rows_fitted: int
    units_imputed: int
    seconds: dict[str, float]
    totals: pd.DataFrame
    non_head_values_zeroed: dict[str, int] = field(default_factory=dict)
    evidence: pd.DataFrame | None = None
    top_tail: TopTailReport | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable dict (tables as records, NaN as None)."""
        return json_safe(
            {
                "donor": self.donor,
                "conditioning": self.conditioning,
                "conditioning_reasons": self.conditioning_reasons,
                "donor_source": self.donor_source,
                "exclusions": self.exclusions,
                "overrides": self.overrides,
                "rows_fitted": self.rows_fitted,
                "units_imputed": self.units_imputed,
                "seconds": self.seconds,
                "non_head_values_zeroed": self.non_head_values_zeroed,
                "totals": self.totals.to_dict("records"),
                "evidence": None if self.evidence is None else self.evidence.to_dict("records"),
                "top_tail": None if self.top_tail is None else self.top_tail.as_dict(),
                "notes": self.notes,
            }
        )


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
    features["weight"] = _unit_weights(seed).to_numpy()
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


def _unit_weights(seed: ObservationFrame) -> pd.Series:
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


# --- integration ---------------------------------------------------------------------------


def integrate_tax_donor(
    seed: ObservationFrame,
    donor: ObservationFrame,
    config: DonorIntegrationConfig | None = None,
) -> tuple[ObservationFrame, DonorIntegrationReport]:
    """The seed with donor amounts on each tax unit's head, and the report that says how."""
    config = config or DonorIntegrationConfig()
    started = perf_counter()
    rows, exclusions = eligible_donor_rows(donor, config)
    units = scaffold_unit_features(seed, config.conditioning)
    conditioning, reasons = choose_conditioning(units, rows, config)
    imputed = list(dict.fromkeys(config.imputed))
    model = cached_donor_forest(rows, conditioning, imputed, config)
    fitted = perf_counter()
    x = units[conditioning].to_numpy(dtype=float)
    floor = minimum_depth(seed, units, config)
    picked = draw_records(model, x, _rng(config, 3).random(len(units)), floor)
    kept = scaffold_kept_units(seed, config.keep_scaffold_flags)
    top_tail = None
    if config.top_tail_placement:
        picked, top_tail = place_top_tail(seed, units, picked, model, kept.values, floor, config)
    values = pd.DataFrame(model.values[picked], index=units.index, columns=imputed)
    values.loc[kept.index[kept]] = scaffold_unit_totals(seed, imputed).loc[kept.index[kept]]
    person, zeroed = write_to_heads(seed.tables["person"], values)
    imputed_at = perf_counter()
    frame = ObservationFrame(
        source=seed.source,
        year=seed.year,
        tables={**seed.tables, "person": person},
        links=seed.links,
        provenance={
            **seed.provenance,
            "donor_integration": {
                "donor": donor.source,
                "donor_kind": donor.provenance.get("kind"),
                "imputed": imputed,
                "conditioning": conditioning,
                "seed": config.seed,
                "method": "multi-output QRF, whole donor record at q ~ U(0,1) per tax unit",
                "top_tail_swaps": None if top_tail is None else top_tail.swaps,
            },
        },
    )
    frame.validate()
    evidence = (
        imputation_evidence(donor, config, conditioning, rows=rows) if config.evidence else None
    )
    done = perf_counter()
    report = DonorIntegrationReport(
        donor=donor.source,
        conditioning=conditioning,
        conditioning_reasons=reasons,
        donor_source=donor_sources(donor.source, rows.columns, config),
        exclusions={**exclusions, "scaffold_units_kept_as_reported": int(kept.sum())},
        overrides=[v for v in config.overrides if v not in imputed],
        rows_fitted=len(model.values),
        units_imputed=int(len(units) - kept.sum()),
        seconds={
            "fit": round(fitted - started, 3),
            "impute": round(imputed_at - fitted, 3),
            "evidence": round(done - imputed_at, 3),
            "total": round(done - started, 3),
        },
        totals=totals_table(seed, frame, rows, imputed),
        non_head_values_zeroed=zeroed,
        evidence=evidence,
        top_tail=top_tail,
        notes=[
            "tax-unit weight = the seed household_weight of the unit's household",
            "each unit takes one whole donor record: joint structure and zeros are kept",
            "imputed values replace the scaffold's on the head; other members are zeroed",
            "donor weights enter through weight-proportional leaf records (and subsample)",
            f"{int(kept.sum()):,} scaffold units reporting {list(config.keep_scaffold_flags)} "
            "keep their own values (outside a filers-only donor's support)",
            "top-tail placement: "
            + (f"swaps per SOI AGI band {top_tail.swaps}" if top_tail else "off"),
        ],
    )
    return frame, report


def scaffold_kept_units(seed: ObservationFrame, flags: tuple[str, ...]) -> pd.Series:
    """Per tax_unit_id: True where a flag column of the scaffold's tax unit is positive."""
    unit = seed.tables["tax_unit"]
    present = [flag for flag in flags if flag in unit.columns]
    kept = (unit[present] > 0).any(axis=1) if present else pd.Series(False, index=unit.index)
    return pd.Series(kept.to_numpy(), index=pd.Index(unit["tax_unit_id"], name="tax_unit_id"))


def scaffold_unit_totals(seed: ObservationFrame, variables: list[str]) -> pd.DataFrame:
    """Per tax_unit_id, the scaffold's own unit totals of ``variables`` (0 where absent)."""
    person, unit = seed.tables["person"], seed.tables["tax_unit"]
    totals = pd.DataFrame(0.0, index=pd.Index(unit["tax_unit_id"], name="tax_unit_id"),
                          columns=variables)  # fmt: skip
    present = [v for v in variables if v in person.columns]
    if present:
        summed = person.groupby("tax_unit_id")[present].sum()
        totals[present] = summed.reindex(totals.index, fill_value=0.0).to_numpy(dtype=float)
    return totals


def minimum_depth(
    seed: ObservationFrame, units: pd.DataFrame, config: DonorIntegrationConfig
) -> np.ndarray | None:
    """Per unit, the fewest donor returns that must reach a record's AGI for the unit to
    take it (see ``weight_support`` and ``rank_leap``); None when both rules are off."""
    weight = units["weight"].to_numpy(dtype=float)
    floors = [weight] if config.weight_support else []
    if config.rank_leap is not None:
        person = seed.tables["person"]
        components = [c for c in SCAFFOLD_INCOME if c in person.columns]
        income = (
            person[components].sum(axis=1).groupby(person["tax_unit_id"]).sum()
            .reindex(units.index, fill_value=0.0).to_numpy(dtype=float)
        )  # fmt: skip
        floors.append(config.rank_leap * returns_at_or_above(income, weight, income))
    return np.maximum.reduce(floors) if floors else None


def write_to_heads(
    person: pd.DataFrame, values: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Person table with each unit's values (index tax_unit_id) on its head, zero elsewhere."""
    person = person.copy()
    is_head = (person["role"] == "head").to_numpy()
    head_units = person.loc[is_head, "tax_unit_id"]
    zeroed: dict[str, int] = {}
    for variable in values.columns:
        if variable in person.columns:
            zeroed[variable] = int((person.loc[~is_head, variable] != 0).sum())
        column = np.zeros(len(person))
        column[is_head] = values[variable].reindex(head_units).to_numpy(dtype=float)
        person[variable] = column
    return person, zeroed


def donor_sources(
    donor: str, donor_columns: pd.Index, config: DonorIntegrationConfig
) -> dict[str, str]:
    """Variable -> where its values come from: the donor, or the scaffold and why."""
    sources = {v: donor for v in config.imputed}
    for variable in config.overrides:
        sources[variable] = OVERRIDE_SOURCE
    for variable in tr.TAX_RECORD_AMOUNTS:
        if variable in donor_columns:
            sources.setdefault(variable, NOT_IMPUTED_SOURCE)
    return sources


def _weighted_total(frame: ObservationFrame, variable: str) -> tuple[float, float]:
    """Weighted total and weighted share of tax units with a zero unit amount."""
    person = frame.tables["person"]
    weights = _unit_weights(frame).set_axis(frame.tables["tax_unit"]["tax_unit_id"])
    if variable not in person.columns:
        return 0.0, 1.0
    amount = person.groupby("tax_unit_id")[variable].sum().reindex(weights.index, fill_value=0)
    total = float((amount * weights).sum())
    return total, float(weights[amount == 0].sum() / weights.sum())


def totals_table(
    before: ObservationFrame, after: ObservationFrame, rows: pd.DataFrame, imputed: list[str]
) -> pd.DataFrame:
    """Weighted totals and zero shares per imputed variable: scaffold, imputed, donor."""
    weight = rows[tr.WEIGHT].to_numpy(dtype=float)
    records = []
    for variable in imputed:
        scaffold_total, scaffold_zero = _weighted_total(before, variable)
        imputed_total, imputed_zero = _weighted_total(after, variable)
        donor_values = rows[variable].to_numpy(dtype=float)
        records.append(
            {
                "variable": variable,
                "scaffold_total": scaffold_total,
                "imputed_total": imputed_total,
                "imputed_over_scaffold": imputed_total / scaffold_total
                if scaffold_total
                else float("nan"),
                "donor_total": float(weight @ donor_values),
                "scaffold_zero_share": scaffold_zero,
                "imputed_zero_share": imputed_zero,
                "donor_zero_share": float(weight[donor_values == 0].sum() / weight.sum()),
            }
        )
    return pd.DataFrame(records)


# --- evidence --------------------------------------------------------------------------


def imputation_evidence(
    donor: ObservationFrame,
    config: DonorIntegrationConfig | None = None,
    conditioning: list[str] | None = None,
    rows: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Held-out pinball loss and total ratios per imputed variable: QRF, hot-deck, zero.

    A seeded ``held_out_share`` of eligible donor rows plays the scaffold: the forest is
    fitted on the rest and predicts the held-out rows from the conditioning variables
    only. Losses are divided by the held-out weighted mean |value| so variables compare.
    Without ``conditioning`` the donor-side candidates that vary are used.
    """
    config = config or DonorIntegrationConfig()
    if rows is None:
        rows, _ = eligible_donor_rows(donor, config)
    if conditioning is None:
        known = set(rows.columns) | set(DERIVED_FROM_FILING_STATUS)
        names = [c for c in config.conditioning if c in known]
        candidates = donor_unit_features(rows, names)
        conditioning, _ = choose_conditioning(candidates, rows, config)
    imputed = list(dict.fromkeys(config.imputed))
    order = _rng(config, 4).permutation(len(rows))
    held = max(1, min(len(rows) - 2, round(config.held_out_share * len(rows))))
    test, train = rows.iloc[order[:held]], rows.iloc[order[held:]].reset_index(drop=True)
    model = fit_donor_forest(train, conditioning, imputed, config)
    x = donor_unit_features(test, conditioning).to_numpy(dtype=float)
    qrf_quantiles = conditional_quantiles(model, x, EVIDENCE_QUANTILES)
    qrf_draw = model.values[draw_records(model, x, _rng(config, 5).random(len(test)))]
    deck_quantiles, deck_draw = hot_deck(train, test, imputed, EVIDENCE_QUANTILES, _rng(config, 6))
    actual = test[imputed].to_numpy(dtype=float)
    weight = test[tr.WEIGHT].to_numpy(dtype=float)
    zero = np.zeros((len(test), len(EVIDENCE_QUANTILES)))
    records = []
    for j, variable in enumerate(imputed):
        scale = float(weight @ np.abs(actual[:, j]) / weight.sum())
        total = float(weight @ actual[:, j])

        def loss(predicted: np.ndarray, j: int = j, scale: float = scale) -> float:
            value = pinball_loss(actual[:, j], predicted, weight, EVIDENCE_QUANTILES)
            return value / scale if scale > 0 else float("nan")

        def ratio(drawn: np.ndarray, total: float = total) -> float:
            return float(weight @ drawn) / total if total else float("nan")

        qrf, deck, none = loss(qrf_quantiles[:, j]), loss(deck_quantiles[:, j]), loss(zero)
        records.append(
            {
                "variable": variable,
                "qrf_loss": qrf,
                "hot_deck_loss": deck,
                "zero_loss": none,
                "qrf_beats_hot_deck": bool(qrf < deck),
                "qrf_beats_zero": bool(qrf < none),
                "qrf_total_ratio": ratio(qrf_draw[:, j]),
                "hot_deck_total_ratio": ratio(deck_draw[:, j]),
                "zero_total_ratio": 0.0 if total else float("nan"),
                "heldout_zero_share": float(weight[actual[:, j] == 0].sum() / weight.sum()),
                "qrf_zero_share": float(weight[qrf_draw[:, j] == 0].sum() / weight.sum()),
                "heldout_mean_abs": scale,
                "heldout_rows": len(test),
                "train_rows": len(train),
            }
        )
    return pd.DataFrame(records)
