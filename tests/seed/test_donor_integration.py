import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from microplex_assets.seed.donor_evidence import imputation_evidence
from microplex_assets.seed.donor_forest import (
    donor_unit_features,
    draw_records,
    fit_donor_forest,
    neighbourhood,
    returns_at_or_above,
    systematic_pps,
)
from microplex_assets.seed.donor_inputs import (
    OVERRIDE_SOURCE,
    SELF_EMPLOYMENT,
    DonorIntegrationConfig,
    choose_conditioning,
    eligible_donor_rows,
    imputing_self_employment,
    scaffold_unit_features,
)
from microplex_assets.seed.donor_integration import integrate_tax_donor, minimum_depth
from microplex_assets.sources import tax_records as tr
from microplex_assets.sources.frame import ObservationFrame, SourceFormatError
from tests.frames import tiny_scaffold

GAINS = "long_term_capital_gains_before_response"
SENTINELS = {"excluded_ids": 7.77e11, "zero_weight": 8.88e11, "spine": 9.99e11}
SPINE_FLAG = "top_wealth_spine"
EXCLUDED_IDS = frozenset(range(1_000_001, 1_000_041))


def synthetic_donor(records: int = 4000, seed: int = 0) -> ObservationFrame:
    """Tax records whose capital gains depend strongly on wages and joint filing.

    Besides ``records`` ordinary rows it holds 40 rows in EXCLUDED_IDS, 20 zero-weight rows
    and 20 rows flagged SPINE_FLAG, each rich and carrying a sentinel gain.
    """
    rng = np.random.default_rng(seed)
    n = records + 80
    joint = rng.random(n) < 0.5
    wage = rng.lognormal(10.5, 1.2, n)
    wage[rng.random(n) < 0.02] = 5e6
    logit = -2.0 + 1.5 * (np.log(wage) - 10.5) + 1.0 * joint
    has_gain = rng.random(n) < 1 / (1 + np.exp(-logit))
    gains = np.where(has_gain, 0.2 * wage * rng.lognormal(0, 0.5, n), 0.0)
    table = pd.DataFrame(
        {
            tr.ID: np.arange(1, n + 1),
            tr.WEIGHT: rng.uniform(100, 1000, n),
            tr.FILING_STATUS: np.where(joint, 2, np.where(rng.random(n) < 0.1, 4, 1)),
            "age_head": rng.integers(25, 80, n),
            "age_spouse": np.where(joint, rng.integers(25, 80, n), 0),
            "count_dependents": rng.integers(0, 3, n),
        }
    )
    for amount in tr.TAX_RECORD_AMOUNTS:
        table[amount] = np.where(rng.random(n) < 0.2, rng.lognormal(7, 1, n), 0.0)
    table["employment_income_before_lsr"] = wage
    table[GAINS] = gains
    table["qualified_dividend_income"] = np.where(has_gain, 0.05 * wage, 0.0)
    table[SPINE_FLAG] = False
    special = np.arange(records, n)
    table.loc[special, "employment_income_before_lsr"] = 5e6
    table.loc[special[:40], tr.ID] = sorted(EXCLUDED_IDS)
    table.loc[special[:40], GAINS] = SENTINELS["excluded_ids"]
    table.loc[special[40:60], tr.WEIGHT] = 0.0
    table.loc[special[40:60], GAINS] = SENTINELS["zero_weight"]
    table.loc[special[60:], SPINE_FLAG] = True
    table.loc[special[60:], GAINS] = SENTINELS["spine"]
    amounts = [a for a in tr.TAX_RECORD_AMOUNTS if a not in ("charitable_cash_donations",)]
    table[tr.AGI] = table[amounts[:14]].sum(axis=1)
    return ObservationFrame(
        source="synthetic_puf",
        year=2024,
        tables={"tax_unit": table},
        links={},
        provenance={"kind": "synthetic"},
    )


CONFIG = DonorIntegrationConfig(
    n_estimators=40,
    seed=3,
    excluded_ids=EXCLUDED_IDS,
    exclusion_flags=(SPINE_FLAG,),
    keep_scaffold_flags=(),  # every unit imputed here; the recipient rule has its own test
)


@pytest.fixture(scope="module")
def scaffold() -> ObservationFrame:
    return tiny_scaffold(households=1500, seed=1)


@pytest.fixture(scope="module")
def donor() -> ObservationFrame:
    return synthetic_donor()


@pytest.fixture(scope="module")
def integrated(scaffold, donor):
    return integrate_tax_donor(scaffold, donor, CONFIG)


def unit_amount(frame: ObservationFrame, variable: str) -> pd.Series:
    person = frame.tables["person"]
    return person.groupby("tax_unit_id")[variable].sum()


def test_imputed_values_land_on_head_rows_only_and_overrides_stay(scaffold, integrated):
    frame, report = integrated
    before, after = scaffold.tables["person"], frame.tables["person"]
    non_heads = after["role"] != "head"
    for variable in CONFIG.imputed:
        assert (after.loc[non_heads, variable] == 0).all()
    assert (after.loc[~non_heads, GAINS] > 0).any()
    # The scaffold's flat 100 of interest is replaced by donor draws.
    assert not np.allclose(after.loc[~non_heads, "taxable_interest_income"], 100.0)
    pd.testing.assert_series_equal(
        before["employment_income_before_lsr"], after["employment_income_before_lsr"]
    )
    assert report.donor_source[GAINS] == "synthetic_puf"
    assert report.donor_source["employment_income_before_lsr"] == OVERRIDE_SOURCE
    assert report.units_imputed == len(scaffold.tables["tax_unit"])
    pd.testing.assert_frame_equal(frame.tables["tax_unit"], scaffold.tables["tax_unit"])


def test_zero_share_matches_the_donor(integrated):
    _, report = integrated
    totals = report.totals.set_index("variable")
    gap = (totals["imputed_zero_share"] - totals["donor_zero_share"]).abs()
    assert gap[GAINS] < 0.05
    assert gap.max() < 0.06
    # Scaffold totals are kept for comparison.
    assert totals.loc["taxable_interest_income", "scaffold_total"] > 0


def test_imputed_gains_rise_with_wages_as_in_the_donor(integrated):
    frame, _ = integrated
    wage = unit_amount(frame, "employment_income_before_lsr")
    gains = unit_amount(frame, GAINS)
    tercile = pd.qcut(wage, 3, labels=False)
    means = gains.groupby(tercile).mean()
    assert means.iloc[0] < means.iloc[1] < means.iloc[2]
    nonzero = (gains > 0).groupby(tercile).mean()
    assert nonzero.iloc[0] + 0.2 < nonzero.iloc[2]


def test_deterministic_for_a_seed(donor):
    small = tiny_scaffold(households=200, seed=4)
    config = DonorIntegrationConfig(n_estimators=15, seed=5, evidence=False)
    first, _ = integrate_tax_donor(small, donor, config)
    again, _ = integrate_tax_donor(small, donor, config)
    other, _ = integrate_tax_donor(
        small, donor, DonorIntegrationConfig(n_estimators=15, seed=6, evidence=False)
    )
    pd.testing.assert_frame_equal(first.tables["person"], again.tables["person"])
    assert not first.tables["person"][GAINS].equals(other.tables["person"][GAINS])


def test_excluded_donor_rows_never_donate(integrated):
    frame, report = integrated
    values = set(frame.tables["person"][GAINS].unique())
    assert not values & set(SENTINELS.values())
    assert report.exclusions["excluded_ids"] == 40
    assert report.exclusions["nonpositive_weight"] == 20
    assert report.exclusions[f"flag:{SPINE_FLAG}"] == 20
    assert report.exclusions["eligible"] == 4000
    # Held-out totals would explode if a sentinel had been fitted and drawn.
    evidence = report.evidence.set_index("variable")
    assert evidence.loc[GAINS, "qrf_total_ratio"] < 3


def test_subsampled_fit_respects_weights_count_and_exclusions(donor):
    config = replace(CONFIG, max_fit_rows=1000, evidence=False)
    frame, report = integrate_tax_donor(tiny_scaffold(households=200, seed=2), donor, config)
    assert 500 < report.rows_fitted <= 1000
    assert not set(frame.tables["person"][GAINS].unique()) & set(SENTINELS.values())


def test_systematic_pps_draws_each_row_floor_or_ceil_of_its_expected_count():
    weight = np.tile([1.0, 1.0, 2.0, 4.0, 30.0], 20)
    rows, counts = systematic_pps(weight, 150, np.random.default_rng(0))
    assert counts.sum() == 150
    expected = 150 * weight / weight.sum()
    drawn = np.zeros(len(weight))
    drawn[rows] = counts
    assert ((drawn == np.floor(expected)) | (drawn == np.ceil(expected))).all()


def test_evidence_shows_qrf_beats_no_imputation_on_the_dependent_variable(integrated):
    _, report = integrated
    evidence = report.evidence.set_index("variable")
    assert len(evidence) == len(CONFIG.imputed)
    row = evidence.loc[GAINS]
    assert row["qrf_loss"] < row["zero_loss"]
    assert row["qrf_loss"] < row["hot_deck_loss"] * 1.1
    assert abs(row["qrf_zero_share"] - row["heldout_zero_share"]) < 0.06
    assert row["train_rows"] + row["heldout_rows"] == 4000


def test_evidence_runs_on_the_donor_alone(donor):
    config = DonorIntegrationConfig(n_estimators=20, seed=1, imputed=(GAINS,), evidence=False)
    table = imputation_evidence(donor, config)
    assert table["variable"].tolist() == [GAINS]
    assert table.loc[0, "qrf_beats_zero"]


def test_conditioning_reasons(scaffold, donor):
    config = DonorIntegrationConfig(conditioning=(*CONFIG.conditioning, "taxable_interest_income"))
    units = scaffold_unit_features(scaffold, config.conditioning)
    chosen, reasons = choose_conditioning(units, donor, config)
    assert "is_joint" in chosen and "employment_income_before_lsr" in chosen
    assert "age_head" in chosen and "count_dependents" in chosen
    rejected = reasons["rejected"]
    assert rejected["is_head_of_household"].startswith("constant in scaffold")
    assert rejected["self_employment_income_before_lsr"] == "absent in scaffold"
    assert rejected["taxable_interest_income"].startswith("imputed")
    assert set(chosen) == set(reasons["chosen"])


def test_summary_is_json_serialisable(integrated):
    _, report = integrated
    summary = json.loads(json.dumps(report.summary(), allow_nan=False))
    assert summary["rows_fitted"] == 4000
    assert summary["seconds"]["total"] > 0
    assert {r["variable"] for r in summary["totals"]} == set(CONFIG.imputed)


def test_donor_missing_a_contract_column_is_a_clear_error(scaffold, donor):
    table = donor.tables["tax_unit"].drop(columns=["age_head"])
    broken = ObservationFrame("broken_puf", 2024, {"tax_unit": table}, links={})
    with pytest.raises(SourceFormatError, match=r"broken_puf.*lacks columns \['age_head'\]"):
        integrate_tax_donor(scaffold, broken, CONFIG)


def test_config_rejects_a_variable_both_imputed_and_overridden():
    with pytest.raises(ValueError, match="both imputed and overridden"):
        DonorIntegrationConfig(overrides=(GAINS,))


def test_means_tested_recipients_keep_their_reported_values(scaffold, donor):
    frame, report = integrate_tax_donor(
        scaffold, donor, replace(CONFIG, keep_scaffold_flags=("ssi_reported", "snap_reported"))
    )
    unit = scaffold.tables["tax_unit"]
    recipients = unit.loc[(unit["ssi_reported"] > 0) | (unit["snap_reported"] > 0), "tax_unit_id"]
    assert 0 < len(recipients) < len(unit)
    before, after = unit_amount(scaffold, "taxable_interest_income"), unit_amount(frame, GAINS)
    assert (unit_amount(frame, "taxable_interest_income")[recipients] == before[recipients]).all()
    assert (after[recipients] == 0).all()  # the scaffold has no realized gains for them
    assert report.units_imputed == len(unit) - len(recipients)
    assert report.exclusions["scaffold_units_kept_as_reported"] == len(recipients)


def test_returns_at_or_above_counts_the_weighted_tail():
    agi = np.array([10.0, 50.0, 50.0, 1e6])
    weight = np.array([100.0, 10.0, 5.0, 1.0])
    np.testing.assert_allclose(
        returns_at_or_above(agi, weight, np.array([0.0, 10.0, 50.0, 1e6, 2e6])),
        [116.0, 116.0, 16.0, 1.0, 0.0],
    )


def test_heavy_units_never_take_records_rarer_than_they_are(donor):
    """A unit standing for W returns takes no record that fewer than W donor returns reach."""
    rows, _ = eligible_donor_rows(donor, CONFIG)
    conditioning = ["is_joint", "employment_income_before_lsr"]
    model = fit_donor_forest(rows, conditioning, [GAINS], CONFIG)
    x = donor_unit_features(rows, conditioning).to_numpy(dtype=float)
    q = np.full(len(x), 0.999)  # the top of every unit's distribution
    heavy = float(np.quantile(model.depth, 0.5))
    free = draw_records(model, x, q)
    guarded = draw_records(model, x, q, unit_weight=np.full(len(x), heavy))
    assert (model.depth[free] < heavy).any()  # unguarded, heavy units take rare records
    hood = neighbourhood(model, x)
    fallback = model.rank_key[guarded] == model.rank_key[hood].min(axis=1)
    assert ((model.depth[guarded] >= heavy) | fallback).all()


def test_rank_leap_keeps_low_income_units_off_the_rarest_returns(scaffold, donor):
    """A unit may climb about one order of magnitude in income rank, not from the middle
    of the scaffold to the donor's top few returns."""
    units = scaffold_unit_features(scaffold, CONFIG.conditioning)
    weight_only = minimum_depth(scaffold, units, replace(CONFIG, rank_leap=None))
    with_leap = minimum_depth(scaffold, units, replace(CONFIG, rank_leap=0.1))
    np.testing.assert_array_equal(weight_only, units["weight"].to_numpy())
    assert (with_leap >= weight_only).all()
    wage = units["employment_income_before_lsr"].to_numpy()
    low, high = wage <= np.median(wage), wage >= np.quantile(wage, 0.99)
    # Units in the lower half must be reached by many more returns than the top 1%.
    assert with_leap[low].min() > 10 * with_leap[high].max()
    assert minimum_depth(scaffold, units, replace(CONFIG, weight_support=False,
                                                  rank_leap=None)) is None  # fmt: skip


def test_self_employment_can_come_from_the_donor_with_its_losses(scaffold, donor):
    """``imputing_self_employment``: the donor's Schedule C amounts (losses included) land on
    heads, the scaffold's split is dropped, and the variable is no longer conditioned on."""
    se = SELF_EMPLOYMENT
    table = donor.tables["tax_unit"].copy()
    rng = np.random.default_rng(5)
    table[se] = np.where(rng.random(len(table)) < 0.3, -rng.lognormal(8, 1, len(table)), 0.0)
    lossy = replace(donor, tables={"tax_unit": table})
    config = imputing_self_employment(CONFIG)
    assert se in config.imputed and se not in config.overrides
    frame, report = integrate_tax_donor(scaffold, lossy, config)
    person = frame.tables["person"]
    heads = person["role"] == "head"
    assert (person.loc[~heads, se] == 0).all()
    share = float((person.loc[heads, se] < 0).mean())
    assert 0.2 < share < 0.4  # the donor's 30% with a loss
    assert report.donor_source[se] == "synthetic_puf" and se not in report.conditioning


def test_donor_fills_self_employment_only_where_the_scaffold_reports_none(scaffold, donor):
    """``keep_reported``: a unit reporting self-employment keeps each member's own amount
    (the head/spouse split too); a unit reporting none takes the donor's, losses included."""
    se = SELF_EMPLOYMENT
    table = donor.tables["tax_unit"].copy()
    rng = np.random.default_rng(5)
    table[se] = np.where(rng.random(len(table)) < 0.3, -rng.lognormal(8, 1, len(table)), 0.0)
    lossy = replace(donor, tables={"tax_unit": table})
    seed_person = scaffold.tables["person"].copy()
    seed_person[se] = np.where(
        rng.random(len(seed_person)) < 0.2, rng.lognormal(9, 1, len(seed_person)), 0.0
    )
    scaffold = replace(scaffold, tables={**scaffold.tables, "person": seed_person})
    config = imputing_self_employment(CONFIG, keep_reported=True)
    assert config.keep_reported == (se,)
    frame, report = integrate_tax_donor(scaffold, lossy, config)
    person = frame.tables["person"]
    reporting = seed_person.groupby("tax_unit_id")[se].transform(lambda s: (s != 0).any())
    assert reporting.any() and (~reporting).any()
    assert (seed_person.loc[reporting & (seed_person["role"] != "head"), se] > 0).any()
    np.testing.assert_array_equal(
        person.loc[reporting.to_numpy(), se].to_numpy(), seed_person.loc[reporting, se].to_numpy()
    )
    filled = person.loc[~reporting.to_numpy()]
    assert (filled.loc[filled["role"] != "head", se] == 0).all()
    assert (filled.loc[filled["role"] == "head", se] < 0).mean() > 0.15  # the donor's losses
    assert se not in report.conditioning
    assert report.exclusions[f"units_keeping_reported_{se}"] == int(
        seed_person.groupby("tax_unit_id")[se].apply(lambda s: (s != 0).any()).sum()
    )


def test_keep_reported_must_name_an_imputed_variable():
    with pytest.raises(ValueError, match="not imputed"):
        replace(CONFIG, keep_reported=(SELF_EMPLOYMENT,))
