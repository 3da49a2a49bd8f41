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

``self_employment_income_before_lsr`` is not imputed by ``DonorIntegrationConfig``'s
default: the scaffold splits it between head and spouse (which the donor's tax-unit total
would lose), so there it is an override and a conditioning variable. The build draws it
from the donor by default (run profile ``self_employment``: the CPS has 5% of SOI's
Schedule C loss returns; ``imputing_self_employment``), either everywhere or only
for the units whose scaffold reports none (``keep_reported``: the reported amounts, with
their head/spouse split, are restored after the draw). Top-tail placement's approximate AGI
then reads the drawn amount for every unit, reported or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.files import json_safe
from microplex_assets.seed.donor_evidence import donor_sources, imputation_evidence, totals_table
from microplex_assets.seed.donor_forest import (
    _rng,
    cached_donor_forest,
    draw_records,
    returns_at_or_above,
)
from microplex_assets.seed.donor_inputs import (
    SCAFFOLD_INCOME,
    DonorIntegrationConfig,
    choose_conditioning,
    eligible_donor_rows,
    scaffold_unit_features,
)
from microplex_assets.seed.top_tail_placement import TopTailReport, place_top_tail
from microplex_assets.sources.frame import ObservationFrame


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
    person, reported = restore_reported(person, seed.tables["person"], config.keep_reported)
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
        exclusions={
            **exclusions,
            "scaffold_units_kept_as_reported": int(kept.sum()),
            **{f"units_keeping_reported_{name}": count for name, count in reported.items()},
        },
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


def restore_reported(
    person: pd.DataFrame, scaffold: pd.DataFrame, columns: tuple[str, ...]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """``person`` with each member's scaffold amount of ``columns`` restored in every tax
    unit whose scaffold reports a nonzero one (``DonorIntegrationConfig.keep_reported``);
    returns it and the number of such units per column."""
    if not columns:
        return person, {}
    person = person.copy()
    counts: dict[str, int] = {}
    for column in columns:
        if column not in scaffold.columns:
            raise ValueError(f"keep_reported: the scaffold's person table has no '{column}'")
        own = scaffold[column].to_numpy(dtype=float)
        reporting = pd.Series(own != 0).groupby(scaffold["tax_unit_id"].to_numpy()).any()
        rows = scaffold["tax_unit_id"].map(reporting).to_numpy(dtype=bool)
        person.loc[rows, column] = own[rows]
        counts[column] = int(reporting.sum())
    return person, counts
