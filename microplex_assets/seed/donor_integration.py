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
from quantile_forest import RandomForestQuantileRegressor

from microplex_assets.files import json_safe
from microplex_assets.seed.canonical import INCOME_COLUMNS
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
# Unit features derived from MARS on both sides.
DERIVED_FROM_FILING_STATUS: dict[str, int] = {"is_joint": 2, "is_head_of_household": 4}
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
HOT_DECK_WAGE_GROUPS = 5  # weighted quantile groups of positive wages, plus a zero-wage group
WAGE = "employment_income_before_lsr"
# The scaffold's reported income, summed per tax unit, that places it in its own file's
# income ranking (for ``rank_leap``).
SCAFFOLD_INCOME: tuple[str, ...] = tuple(
    c for c in INCOME_COLUMNS if not c.startswith(("social_security", "tax_exempt_private"))
)
OVERRIDE_SOURCE = "scaffold (override)"
NOT_IMPUTED_SOURCE = "scaffold (not imputed)"
TARGET_SCALE = 1_000.0  # asinh(y / 1000): linear near 0, logarithmic in the tail


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


def donor_unit_features(table: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Donor columns for the given conditioning names (MARS-derived flags computed)."""
    out = pd.DataFrame(index=table.index)
    for name in names:
        if name in DERIVED_FROM_FILING_STATUS:
            code = DERIVED_FROM_FILING_STATUS[name]
            out[name] = (table[tr.FILING_STATUS] == code).astype(float)
        else:
            out[name] = table[name].astype(float)
    return out


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


# --- the forest --------------------------------------------------------------------------


@dataclass
class DonorForest:
    """A fitted forest plus, per tree and leaf, the one donor record that leaf holds."""

    forest: RandomForestQuantileRegressor
    leaf_record: np.ndarray  # (n_trees, max_nodes): index into values, -1 for inner nodes
    values: np.ndarray  # (records, imputed): raw donor amounts of the fitted records
    rank_key: np.ndarray  # (records,): donor AGI, orders a unit's conditional distribution
    record_ids: np.ndarray  # (records,): donor tax_unit_id of each fitted record
    # (records,): donor returns (weighted, all eligible rows) with AGI at least the record's
    depth: np.ndarray
    conditioning: list[str]
    imputed: list[str]

    @property
    def n_trees(self) -> int:
        return self.leaf_record.shape[0]


def _rng(config: DonorIntegrationConfig, stream: int) -> np.random.Generator:
    """Independent seeded streams, so e.g. the unit draws do not shift with the donor size."""
    return np.random.default_rng([config.seed, stream])


def systematic_pps(
    weight: np.ndarray, draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and their counts from ``draws`` systematic weight-proportional draws.

    Each row is drawn floor or ceil of its expected count (draws x weight share), in a
    shuffled order: unbiased like draws with replacement but far more distinct rows when
    the donor is only a little larger than ``draws``.
    """
    order = rng.permutation(len(weight))
    cumulative = np.cumsum(weight[order]) / weight.sum() * draws
    points = rng.random() + np.arange(draws)
    hits = np.minimum(np.searchsorted(cumulative, points, side="right"), len(weight) - 1)
    rows, counts = np.unique(order[hits], return_counts=True)
    return rows, counts


_FOREST_CACHE: dict[str, DonorForest] = {}


def cached_donor_forest(
    rows: pd.DataFrame,
    conditioning: list[str],
    imputed: list[str],
    config: DonorIntegrationConfig,
) -> DonorForest:
    """The forest for these donor rows, conditioning and config, fitted once per process.

    Every local shard fits the same forest (same donor, same seed: only the units it
    predicts for differ), so a backfill that fits it in the parent lets each forked shard
    reuse it instead of paying the fit again. Only the latest forest is kept.
    """
    key = "|".join(
        [
            str(int(pd.util.hash_pandas_object(rows, index=False).sum())),
            ",".join(conditioning),
            ",".join(imputed),
            repr(config),
        ]
    )
    if key not in _FOREST_CACHE:
        _FOREST_CACHE.clear()
        _FOREST_CACHE[key] = fit_donor_forest(rows, conditioning, imputed, config)
    return _FOREST_CACHE[key]


def fit_donor_forest(
    rows: pd.DataFrame,
    conditioning: list[str],
    imputed: list[str],
    config: DonorIntegrationConfig,
) -> DonorForest:
    """Fit the multi-output forest on (a weight-proportional subsample of) eligible rows."""
    weight = rows[tr.WEIGHT].to_numpy(dtype=float)
    all_agi, all_weight = rows[tr.AGI].to_numpy(dtype=float), weight
    if len(rows) > config.max_fit_rows:
        picked, counts = systematic_pps(weight, config.max_fit_rows, _rng(config, 1))
        rows, weight = rows.iloc[picked].reset_index(drop=True), counts.astype(float)
    x = donor_unit_features(rows, conditioning).to_numpy(dtype=np.float32)
    values = rows[imputed].to_numpy(dtype=float)
    target = np.arcsinh(values / TARGET_SCALE)
    spread = target.std(axis=0)
    target = (target - target.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    forest = RandomForestQuantileRegressor(
        n_estimators=config.n_estimators,
        min_samples_leaf=config.min_samples_leaf,
        random_state=config.seed,
        n_jobs=config.n_jobs,
        max_samples_leaf=1,  # the library's own leaf store; larger ones cost GBs for 14 targets
    )
    forest.fit(x, target[:, 0] if target.shape[1] == 1 else target)
    leaf_record = _one_record_per_leaf(forest, forest.apply(x), weight, _rng(config, 2))
    return DonorForest(
        forest=forest,
        leaf_record=leaf_record,
        values=values,
        rank_key=rows[tr.AGI].to_numpy(dtype=float),
        record_ids=rows[tr.ID].to_numpy(),
        depth=returns_at_or_above(all_agi, all_weight, rows[tr.AGI].to_numpy(dtype=float)),
        conditioning=list(conditioning),
        imputed=list(imputed),
    )


def returns_at_or_above(agi: np.ndarray, weight: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Weighted donor returns with AGI >= each value of ``at``."""
    order = np.argsort(agi)
    tail = np.cumsum(weight[order][::-1])[::-1]  # weight at or above each sorted position
    position = np.searchsorted(agi[order], at, side="left")
    return np.where(position < len(agi), tail[np.minimum(position, len(agi) - 1)], 0.0)


def _one_record_per_leaf(
    forest: RandomForestQuantileRegressor,
    leaves: np.ndarray,
    weight: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Per tree and leaf, one member drawn with probability proportional to its weight.

    The member with the smallest Exp(1)/weight key is a weight-proportional draw; one
    lexsort does it for every leaf of every tree at once.
    """
    records, trees = leaves.shape
    nodes = max(estimator.tree_.node_count for estimator in forest.estimators_)
    cell = (leaves + np.arange(trees) * nodes).ravel()
    key = (rng.exponential(size=leaves.shape) / weight[:, None]).ravel()
    member = np.repeat(np.arange(records), trees)
    order = np.lexsort((key, cell))
    first = order[np.r_[True, cell[order][1:] != cell[order][:-1]]]
    table = np.full(trees * nodes, -1, dtype=np.int64)
    table[cell[first]] = member[first]
    return table.reshape(trees, nodes)


def neighbourhood(model: DonorForest, x: np.ndarray) -> np.ndarray:
    """(units, trees) fitted-record indices: each unit's conditional donor distribution."""
    leaves = model.forest.apply(x.astype(np.float32))
    hood = model.leaf_record[np.arange(model.n_trees)[None, :], leaves]
    if (hood < 0).any():  # cannot happen: every leaf holds at least one fitted record
        raise RuntimeError("a unit landed in a leaf without a donor record")
    return hood


def draw_records(
    model: DonorForest, x: np.ndarray, q: np.ndarray, unit_weight: np.ndarray | None = None
) -> np.ndarray:
    """The donor record at quantile q of each unit's AGI-ordered conditional distribution.

    With ``unit_weight`` (a minimum depth per unit), a unit may only take records that at
    least that many donor returns reach or exceed in AGI (see ``minimum_depth``). If no
    candidate qualifies, the lowest-AGI candidate is taken.
    """
    hood = neighbourhood(model, x)
    key = model.rank_key[hood].astype(float)
    count = np.full(len(hood), model.n_trees)
    if unit_weight is not None:
        valid = model.depth[hood] >= np.asarray(unit_weight, dtype=float)[:, None]
        empty = np.flatnonzero(~valid.any(axis=1))
        valid[empty, np.argmin(key[empty], axis=1)] = True
        key = np.where(valid, key, np.inf)
        count = valid.sum(axis=1)
    order = np.argsort(key, axis=1, kind="stable")
    position = np.minimum((q * count).astype(np.int64), count - 1)
    rows = np.arange(len(hood))
    return hood[rows, order[rows, position]]


def conditional_quantiles(
    model: DonorForest, x: np.ndarray, quantiles: tuple[float, ...]
) -> np.ndarray:
    """(units, imputed, quantiles) per-variable quantiles of each unit's distribution."""
    hood = neighbourhood(model, x)
    out = np.empty((len(hood), len(model.imputed), len(quantiles)))
    for j in range(len(model.imputed)):
        out[:, j, :] = np.quantile(model.values[hood, j], quantiles, axis=1).T
    return out


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
    picked = draw_records(
        model, x, _rng(config, 3).random(len(units)), minimum_depth(seed, units, config)
    )
    values = pd.DataFrame(model.values[picked], index=units.index, columns=imputed)
    kept = scaffold_kept_units(seed, config.keep_scaffold_flags)
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
        notes=[
            "tax-unit weight = the seed household_weight of the unit's household",
            "each unit takes one whole donor record: joint structure and zeros are kept",
            "imputed values replace the scaffold's on the head; other members are zeroed",
            "donor weights enter through weight-proportional leaf records (and subsample)",
            f"{int(kept.sum()):,} scaffold units reporting {list(config.keep_scaffold_flags)} "
            "keep their own values (outside a filers-only donor's support)",
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


def pinball_loss(
    actual: np.ndarray, predicted: np.ndarray, weight: np.ndarray, quantiles: tuple[float, ...]
) -> float:
    """Weighted mean over rows of the pinball loss averaged over quantiles.

    actual: (rows,); predicted: (rows, quantiles).
    """
    q = np.asarray(quantiles)[None, :]
    error = actual[:, None] - predicted
    loss = np.maximum(q * error, (q - 1) * error).mean(axis=1)
    return float(weight @ loss / weight.sum())


def _weighted_quantiles(values: np.ndarray, weight: np.ndarray, quantiles: np.ndarray):
    """(quantiles, columns) inverted-CDF weighted quantiles of each column of values."""
    out = np.empty((len(quantiles), values.shape[1]))
    for j in range(values.shape[1]):
        order = np.argsort(values[:, j], kind="stable")
        cumulative = np.cumsum(weight[order]) / weight.sum()
        position = np.minimum(np.searchsorted(cumulative, quantiles), len(order) - 1)
        out[:, j] = values[order[position], j]
    return out


def hot_deck_cells(table: pd.DataFrame, wage_edges: np.ndarray) -> np.ndarray:
    """Cell label: filing status x wage group (0 = no wages, 1.. = positive-wage quantiles)."""
    wage = table[WAGE].to_numpy(dtype=float)
    group = np.where(wage > 0, 1 + np.searchsorted(wage_edges, wage, side="right"), 0)
    return table[tr.FILING_STATUS].to_numpy(dtype=np.int64) * 100 + group


def _wage_edges(table: pd.DataFrame) -> np.ndarray:
    wage = table[WAGE].to_numpy(dtype=float)
    positive = wage > 0
    if not positive.any():
        return np.array([])
    shares = np.arange(1, HOT_DECK_WAGE_GROUPS) / HOT_DECK_WAGE_GROUPS
    weight = table[tr.WEIGHT].to_numpy(dtype=float)[positive]
    return _weighted_quantiles(wage[positive, None], weight, shares)[:, 0]


def hot_deck(
    train: pd.DataFrame,
    test: pd.DataFrame,
    imputed: list[str],
    quantiles: tuple[float, ...],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Baseline: cell quantiles (test, imputed, quantiles) and one random donor per test row.

    Cells are filing status x wage group; a test cell with no training rows falls back to
    its filing status, then to all rows.
    """
    edges = _wage_edges(train)
    train_cell, test_cell = hot_deck_cells(train, edges), hot_deck_cells(test, edges)
    values = train[imputed].to_numpy(dtype=float)
    weight = train[tr.WEIGHT].to_numpy(dtype=float)
    q = np.asarray(quantiles)
    predicted = np.empty((len(test), len(imputed), len(q)))
    drawn = np.empty((len(test), len(imputed)))
    for cell in np.unique(test_cell):
        at = test_cell == cell
        pool = np.flatnonzero(train_cell == cell)
        if not len(pool):
            pool = np.flatnonzero(train_cell // 100 == cell // 100)
        if not len(pool):
            pool = np.arange(len(train))
        predicted[at] = _weighted_quantiles(values[pool], weight[pool], q).T[None, :, :]
        p = weight[pool] / weight[pool].sum()
        drawn[at] = values[rng.choice(pool, int(at.sum()), p=p)]
    return predicted, drawn


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
