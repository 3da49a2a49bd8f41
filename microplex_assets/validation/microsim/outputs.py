"""Stage 9 microsimulation benchmark: statistics of one simulation under one weight vector.

The runner simulates each reform of the frozen manifest once per record set and hands
the per-record results here; the same records are then aggregated with several weight
vectors (the candidate's calibrated weights, the eCPS-method baseline weights), so any
difference between datasets comes from the weights alone. Every weighted statistic goes
through microdf (``MicroSeries``) so the numbers match what a policyengine-us user gets
from ``Microsimulation.calculate(...).sum()`` and PolicyEngine's app; no hand-written
weight arithmetic lives here.

Person-based income statistics (Gini, top 1% share, deciles, winners and losers) weight
each household by ``household_weight × people``, the way PolicyEngine's app weights
household income: a household of four counts as four people at its household income.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from microdf import MicroSeries

BILLION = 1e9
NET_INCOME = "household_net_income"
HOUSEHOLD_COLUMNS = (NET_INCOME, "people", "income_tax")
PERSON_COLUMNS = ("household_id", "age", "in_poverty")
CHILD_MAX_AGE = 18  # children: age < 18
SENIOR_MIN_AGE = 65  # seniors: age >= 65
CHANGED_DOLLARS = 1.0  # a household "changed" when |Δ net income| > $1
IMPACT_COLUMNS = (
    "budget_impact_bn",
    "income_tax_change_bn",
    "household_net_income_change_bn",
    "gain_more_than_1pct",
    "lose_more_than_1pct",
    "spm_poverty_rate_change_pp",
    "child_spm_poverty_rate_change_pp",
)


@dataclass
class SimulationResults:
    """Per-record values of one simulation (baseline or one reform) on a set of households."""

    # index household_id (int64, sorted); columns: "household_net_income", "people"
    # (persons in the household), and money columns summed to the household: "income_tax"
    # and one column per tracked benefit (e.g. "ssi", "snap", "eitc", "refundable_ctc", ...)
    household: pd.DataFrame
    # columns: "household_id", "age", "in_poverty" (bool: SPM poverty of the person's SPM unit)
    person: pd.DataFrame


def _validate(results: SimulationResults, name: str) -> None:
    """Reject malformed results early, with the table and column at fault."""
    household, person = results.household, results.person
    missing = [column for column in HOUSEHOLD_COLUMNS if column not in household.columns]
    if missing:
        raise ValueError(f"{name}.household lacks columns {missing}")
    missing = [column for column in PERSON_COLUMNS if column not in person.columns]
    if missing:
        raise ValueError(f"{name}.person lacks columns {missing}")
    if not household.index.is_unique or not household.index.is_monotonic_increasing:
        raise ValueError(f"{name}.household index (household_id) must be unique and sorted")
    unknown = ~person["household_id"].isin(household.index)
    if unknown.any():
        example = person.loc[unknown, "household_id"].unique()[:5].tolist()
        raise ValueError(f"{name}.person has household_ids not in {name}.household: {example}")
    # Person statistics use person rows, income statistics use "people": they must agree
    # or poverty and inequality would describe different populations.
    counted = person.groupby("household_id").size().reindex(household.index, fill_value=0)
    wrong = counted.to_numpy() != household["people"].to_numpy()
    if wrong.any():
        example = household.index[wrong][:5].tolist()
        raise ValueError(
            f"{name}.household 'people' disagrees with the person rows for households {example}"
        )


def _household_weights(results: SimulationResults, weights: pd.Series) -> pd.Series:
    """``weights`` aligned to the simulated households; it must cover exactly those."""
    index = results.household.index
    missing = index.difference(weights.index)
    if len(missing):
        raise ValueError(f"weights lack {len(missing)} simulated households, e.g. {missing[:5]}")
    extra = weights.index.difference(index)
    if len(extra):
        raise ValueError(
            f"weights cover {len(extra)} households that were not simulated, e.g. {extra[:5]}"
        )
    aligned = weights.reindex(index).astype(float)
    if not np.isfinite(aligned.to_numpy()).all() or (aligned < 0).any():
        raise ValueError("weights must be finite and non-negative")
    if aligned.sum() == 0:
        raise ValueError("weights are all zero")
    return aligned


def _person_weights(results: SimulationResults, household_weights: pd.Series) -> np.ndarray:
    """Each person takes the household's weight (PolicyEngine's person_weight)."""
    return household_weights.reindex(results.person["household_id"]).to_numpy()


def _people_weights(results: SimulationResults, household_weights: pd.Series) -> np.ndarray:
    """household_weight × people, via microdf's ``MicroSeries.weight`` (value × weight)."""
    people = MicroSeries(
        results.household["people"].to_numpy(float), weights=household_weights.to_numpy()
    )
    return np.asarray(people.weight(), dtype=float)


def _series(values: pd.Series | np.ndarray, weights: np.ndarray) -> MicroSeries:
    return MicroSeries(np.asarray(values, dtype=float), weights=weights)


def _total_bn(values: pd.Series | np.ndarray, weights: np.ndarray) -> float:
    return float(_series(values, weights).sum()) / BILLION


def _share(mask: pd.Series | np.ndarray, weights: np.ndarray) -> float:
    """Weighted share of records where ``mask`` holds; NaN when the records weigh nothing.

    microdf's ``mean`` is ``np.average``, which raises on zero total weight.
    """
    series = _series(mask, weights)
    if series.count() == 0:
        return float("nan")
    return float(series.mean())


def _poverty_rates(results: SimulationResults, person_weights: np.ndarray) -> dict[str, float]:
    """SPM poverty rates of all persons, children and seniors (person-weighted)."""
    person = results.person
    poor = person["in_poverty"].astype(bool).to_numpy()
    age = person["age"].to_numpy()
    child = age < CHILD_MAX_AGE
    senior = age >= SENIOR_MIN_AGE
    return {
        "all": _share(poor, person_weights),
        "child": _share(poor[child], person_weights[child]),
        "senior": _share(poor[senior], person_weights[senior]),
    }


def baseline_levels(baseline: SimulationResults, weights: pd.Series) -> dict[str, float]:
    """Headline levels of the baseline under one weight vector.

    ``weights`` is household_weight indexed by household_id; persons take their
    household's weight. Poverty rates are person-weighted. The Gini and top 1% share
    are of household net income over people (household weight × people, as PolicyEngine's
    app weights household income), with negative incomes set to zero as the app does
    (a Lorenz curve needs non-negative values).
    """
    _validate(baseline, "baseline")
    household_weights = _household_weights(baseline, weights)
    person_weights = _person_weights(baseline, household_weights)
    people_weights = _people_weights(baseline, household_weights)
    household = baseline.household
    rates = _poverty_rates(baseline, person_weights)
    income_over_people = _series(household[NET_INCOME], people_weights).clip(lower=0)
    return {
        "spm_poverty_rate": rates["all"],
        "child_spm_poverty_rate": rates["child"],
        "senior_spm_poverty_rate": rates["senior"],
        "gini_household_net_income": float(income_over_people.gini()),
        "top_1pct_share": float(income_over_people.top_x_pct_share(0.01)),
        "household_net_income_bn": _total_bn(household[NET_INCOME], household_weights.to_numpy()),
        "income_tax_bn": _total_bn(household["income_tax"], household_weights.to_numpy()),
    }


def _check_same_records(baseline: SimulationResults, reform: SimulationResults) -> None:
    """Baseline and reform must describe the same households and persons, in order."""
    base_ids, reform_ids = baseline.household.index, reform.household.index
    if not base_ids.equals(reform_ids):
        only_base = base_ids.difference(reform_ids)
        only_reform = reform_ids.difference(base_ids)
        raise ValueError(
            "baseline and reform households differ: "
            f"{len(only_base)} only in baseline (e.g. {only_base[:5].tolist()}), "
            f"{len(only_reform)} only in reform (e.g. {only_reform[:5].tolist()})"
        )
    if not baseline.household["people"].equals(reform.household["people"]):
        raise ValueError("baseline and reform households differ in 'people'")
    if len(baseline.person) != len(reform.person):
        raise ValueError(
            f"baseline has {len(baseline.person)} person rows, reform {len(reform.person)}"
        )
    for column in ("household_id", "age"):
        differs = baseline.person[column].to_numpy() != reform.person[column].to_numpy()
        if differs.any():
            rows = np.flatnonzero(differs)
            raise ValueError(
                f"baseline and reform persons differ in {column!r} at {len(rows)} rows "
                f"(first at position {rows[0]})"
            )


def _winners_losers(
    base_income: pd.Series, reform_income: pd.Series, people_weights: np.ndarray
) -> dict[str, float]:
    """Shares of people by the relative change of their household's net income.

    The change is relative to max(|baseline net income|, $1): a household with negative
    baseline income that gains is a winner (PolicyEngine's app uses max(baseline, $1),
    which makes any change of a non-positive-income household count as over 100%), and
    a household at zero is not divided by zero. The bands are cumulative: "more than 1%"
    includes "more than 5%"; gain >1%, lose >1% and no_change_or_under_1pct sum to one.
    """
    relative = (reform_income - base_income) / base_income.abs().clip(lower=1.0)
    return {
        "gain_more_than_5pct": _share(relative > 0.05, people_weights),
        "gain_more_than_1pct": _share(relative > 0.01, people_weights),
        "lose_more_than_1pct": _share(relative < -0.01, people_weights),
        "lose_more_than_5pct": _share(relative < -0.05, people_weights),
        "no_change_or_under_1pct": _share(relative.abs() <= 0.01, people_weights),
    }


def _deciles(
    base_income: pd.Series,
    reform_income: pd.Series,
    household_weights: np.ndarray,
    people_weights: np.ndarray,
) -> list[dict[str, float]]:
    """Change by decile of baseline household net income, ranked over people.

    ``MicroSeries.decile_rank`` ranks by cumulative weight at the end of each tie group,
    so a household's people all land in the decile where the household's last person
    falls; a large household can leave a decile empty (then its values are NaN).
    Average change is per household (household-weighted mean); relative change is the
    decile's weighted Δ net income over its weighted baseline net income.
    """
    decile = np.asarray(_series(base_income, people_weights).decile_rank(), dtype=int)
    change = _series(reform_income - base_income, household_weights).groupby(decile)
    baseline_total = _series(base_income, household_weights).groupby(decile).sum()
    change_total = change.sum()
    # Weighted sum over weighted count, not groupby().mean(): microdf's mean is np.average,
    # which raises on a zero-weight group (zero-weight households ranked below every
    # weighted one get decile 0, and calibrated weights can be zero).
    households = change.count()
    rows = []
    for number in range(1, 11):
        present = households.get(number, 0.0) > 0
        average = change_total[number] / households[number] if present else float("nan")
        base = baseline_total.get(number, 0.0)
        relative = change_total[number] / base if present and base != 0 else float("nan")
        rows.append(
            {"decile": number, "average_change": float(average), "relative_change": relative}
        )
    return rows


def reform_impacts(
    baseline: SimulationResults,
    reform: SimulationResults,
    weights: pd.Series,
    benefits: Sequence[str],
) -> dict[str, Any]:
    """Budget, distributional and poverty impacts of one reform under one weight vector.

    ``budget_impact_bn`` is the federal budget effect: Δ income tax − Σ Δ benefits
    (positive = more revenue). Poverty changes are in percentage points (reform − baseline).
    ``households_changed`` is an unweighted count (|Δ net income| > $1): how many records
    carry the reform at all, which bounds how noisy its weighted totals can be.
    """
    _validate(baseline, "baseline")
    _validate(reform, "reform")
    _check_same_records(baseline, reform)
    for name, results in (("baseline", baseline), ("reform", reform)):
        missing = [benefit for benefit in benefits if benefit not in results.household.columns]
        if missing:
            raise ValueError(f"{name}.household lacks benefit columns {missing}")
    household_weights = _household_weights(baseline, weights)
    hh_weights = household_weights.to_numpy()
    person_weights = _person_weights(baseline, household_weights)
    people_weights = _people_weights(baseline, household_weights)
    base, new = baseline.household, reform.household

    tax_change = _total_bn(new["income_tax"] - base["income_tax"], hh_weights)
    benefit_changes = {
        benefit: _total_bn(new[benefit] - base[benefit], hh_weights) for benefit in benefits
    }
    income_change = new[NET_INCOME] - base[NET_INCOME]
    base_rates = _poverty_rates(baseline, person_weights)
    reform_rates = _poverty_rates(reform, person_weights)
    return {
        "budget_impact_bn": tax_change - sum(benefit_changes.values()),
        "income_tax_change_bn": tax_change,
        "benefit_changes_bn": benefit_changes,
        "household_net_income_change_bn": _total_bn(income_change, hh_weights),
        "winners_losers": _winners_losers(base[NET_INCOME], new[NET_INCOME], people_weights),
        "spm_poverty_rate_change_pp": 100 * (reform_rates["all"] - base_rates["all"]),
        "child_spm_poverty_rate_change_pp": 100 * (reform_rates["child"] - base_rates["child"]),
        "deciles": _deciles(base[NET_INCOME], new[NET_INCOME], hh_weights, people_weights),
        "households_changed": int((income_change.abs() > CHANGED_DOLLARS).sum()),
    }


def impacts_table(results: dict[str, dict[str, dict]]) -> pd.DataFrame:
    """One row per (reform, dataset) of ``results[reform_id][dataset_label]`` impacts."""
    rows = []
    for reform_id, by_dataset in results.items():
        for dataset, impacts in by_dataset.items():
            shares = impacts["winners_losers"]
            rows.append(
                {
                    "reform": reform_id,
                    "dataset": dataset,
                    "budget_impact_bn": impacts["budget_impact_bn"],
                    "income_tax_change_bn": impacts["income_tax_change_bn"],
                    "household_net_income_change_bn": impacts["household_net_income_change_bn"],
                    "gain_more_than_1pct": shares["gain_more_than_1pct"],
                    "lose_more_than_1pct": shares["lose_more_than_1pct"],
                    "spm_poverty_rate_change_pp": impacts["spm_poverty_rate_change_pp"],
                    "child_spm_poverty_rate_change_pp": impacts["child_spm_poverty_rate_change_pp"],
                }
            )
    return pd.DataFrame(rows, columns=["reform", "dataset", *IMPACT_COLUMNS])
