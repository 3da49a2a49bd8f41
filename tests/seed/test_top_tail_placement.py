from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from microplex_assets.seed.donor_forest import DonorForest
from microplex_assets.seed.donor_inputs import DonorIntegrationConfig, scaffold_unit_features
from microplex_assets.seed.donor_integration import integrate_tax_donor
from microplex_assets.seed.top_tail_placement import (
    NATIONAL_DRIFT,
    SoiBands,
    place_top_tail,
    soi_bands,
    unit_agi,
)
from microplex_assets.sources import tax_records as tr
from microplex_assets.sources.frame import ObservationFrame
from tests.frames import tiny_scaffold

GAINS = "long_term_capital_gains_before_response"
IMPUTED = [GAINS, "taxable_interest_income"]
STATES = {1: "AL", 6: "CA", 36: "NY", 48: "TX"}
CONFIG = DonorIntegrationConfig(seed=11, evidence=False, keep_scaffold_flags=())


def scaffold(units: int = 400, weights: np.ndarray | None = None, fips=(1, 6, 36, 48)):
    """One-unit households: head (and spouse if joint), wages from three levels, ages from
    two, so every similarity cell holds units of every state."""
    weights = np.full(units, 1000.0) if weights is None else weights
    i = np.arange(units)
    joint = (i // 24) % 2 == 0  # state is i % 4: every cell spans the four states
    household = pd.DataFrame(
        {"household_id": i + 1, "state_fips": np.asarray(fips)[i % len(fips)],
         "household_weight": weights}
    )  # fmt: skip
    unit = pd.DataFrame(
        {"tax_unit_id": i + 1, "household_id": i + 1, "filing_status": np.where(joint, 2, 1)}
    )
    wage = np.array([30e3, 80e3, 150e3])[(i // 4) % 3]
    age = np.array([40, 70])[(i // 12) % 2]
    person = pd.DataFrame(
        {"household_id": i + 1, "tax_unit_id": i + 1, "role": "head", "age": age,
         "employment_income_before_lsr": wage, "taxable_interest_income": 50.0}
    )  # fmt: skip
    spouse = person[joint].assign(role="spouse", employment_income_before_lsr=0.0,
                                  taxable_interest_income=0.0)  # fmt: skip
    person = pd.concat([person, spouse], ignore_index=True)
    person.insert(0, "person_id", np.arange(1, len(person) + 1))
    return ObservationFrame(
        "hand", 2024, {"household": household, "tax_unit": unit, "person": person},
        links={"person": ["household", "tax_unit"], "tax_unit": ["household"]},
    )  # fmt: skip


def records() -> DonorForest:
    """10 records with $3m gains ($1m+), 10 with $700k ($500k-$1m), 380 with none."""
    values = np.zeros((400, 2))
    values[:10, 0], values[10:20, 0] = 3e6, 7e5
    return DonorForest(
        forest=None, leaf_record=np.zeros((1, 1)), values=values, rank_key=values[:, 0],
        record_ids=np.arange(400), depth=np.full(400, 1e9), conditioning=[], imputed=IMPUTED,
    )  # fmt: skip


def lopsided(frame: ObservationFrame) -> np.ndarray:
    """Every $1m+ record on an Alabama unit, every $500k-$1m record on a Texas unit."""
    state = frame.tables["household"]["state_fips"].to_numpy()
    picked = 20 + np.arange(len(state)) % 380  # records without gains for everyone ...
    picked[np.flatnonzero(state == 1)[:10]] = np.arange(10)
    picked[np.flatnonzero(state == 48)[:10]] = np.arange(10, 20)
    return picked


def place(frame, picked, config=CONFIG, soi=None):
    features = scaffold_unit_features(frame, CONFIG.conditioning)
    kept = np.zeros(len(features), dtype=bool)
    return place_top_tail(frame, features, picked, records(), kept, None, config, soi)


def by_state(frame, picked, low, high=np.inf) -> pd.Series:
    """Weighted units whose record puts them in [low, high), by state."""
    state = frame.tables["household"]["state_fips"].map(STATES).to_numpy()
    weight = frame.tables["household"]["household_weight"].to_numpy()
    wages = frame.tables["person"].groupby("tax_unit_id")["employment_income_before_lsr"].sum()
    agi = records().values[picked].sum(axis=1) + wages.to_numpy()
    inside = (agi >= low) & (agi < high)
    return pd.Series(weight * inside).groupby(state).sum().reindex(list(STATES.values()))


def msre(counts: pd.Series, band_low: float) -> float:
    soi = soi_bands(5e5).table
    returns = soi[soi["low"] == band_low].set_index("state")["returns"].reindex(counts.index)
    target = returns / returns.sum() * counts.sum()
    return float(((counts / target - 1) ** 2).mean())


def test_placement_moves_counts_toward_soi_state_shares():
    frame = scaffold()
    before = lopsided(frame)
    after, report = place(frame, before)
    top_before, top_after = by_state(frame, before, 1e6), by_state(frame, after, 1e6)
    assert top_before["AL"] == 10_000 and msre(top_before, 1e6) > 100
    # SOI $1m+ returns: CA 46%, TX 26%, NY 25%, AL 2% of the four states: of 10 equal units
    # AL gets none (0.23 of a unit) and every state ends within one unit of its target.
    soi = soi_bands(5e5).table.query("low == 1e6").set_index("state")["returns"]
    target = soi.reindex(top_after.index) / soi.reindex(top_after.index).sum() * 10_000
    assert ((top_after - target).abs() < 1_000).all() and top_after["AL"] == 0
    assert msre(top_after, 1e6) < 0.3  # AL's -100% is the floor: 1/4
    mid_before, mid_after = by_state(frame, before, 5e5, 1e6), by_state(frame, after, 5e5, 1e6)
    assert msre(mid_after, 5e5) < 0.2 * msre(mid_before, 5e5)
    assert report.swaps["$1m+"] >= 8 and report.swaps["$500k-$1m"] >= 6
    table = report.states.set_index(["band", "state"])
    assert table.loc[("$1m+", "AL"), "units_before"] == 10_000
    assert table.loc[("$1m+", "AL"), "units_after"] == 0
    assert report.summary["after"]["$1m+"]["units_msre"] < report.summary["before"]["$1m+"][
        "units_msre"]  # fmt: skip


def test_placement_keeps_the_national_count_and_permutes_whole_records():
    frame = scaffold()
    before = lopsided(frame)
    after, _ = place(frame, before)
    for low, high in ((1e6, np.inf), (5e5, 1e6), (0, 5e5)):
        assert by_state(frame, after, low, high).sum() == by_state(frame, before, low, high).sum()
    # Records only change hands: the same multiset, each unit holding one whole record.
    np.testing.assert_array_equal(np.sort(after), np.sort(before))


def test_unequal_weights_keep_each_band_national_count_within_the_drift_cap():
    weights = np.random.default_rng(0).uniform(600, 1400, 400)
    frame = scaffold(weights=weights)
    before = lopsided(frame)
    after, report = place(frame, before)
    assert report.swaps["$1m+"] > 0
    for low, high in ((1e6, np.inf), (5e5, 1e6), (0, 5e5)):
        drawn = by_state(frame, before, low, high).sum()
        assert abs(by_state(frame, after, low, high).sum() - drawn) <= NATIONAL_DRIFT * drawn


def test_placement_is_deterministic_for_a_seed():
    frame = scaffold(weights=np.random.default_rng(1).uniform(900, 1100, 400))
    first, _ = place(frame, lopsided(frame))
    again, _ = place(frame, lopsided(frame))
    np.testing.assert_array_equal(first, again)
    other, _ = place(frame, lopsided(frame), replace(CONFIG, seed=12))
    assert msre(by_state(frame, other, 1e6), 1e6) < 0.3


def test_a_state_missing_from_the_soi_table_names_the_state_and_the_file():
    frame = scaffold(fips=(1, 6, 72))  # 72: Puerto Rico, outside the SOI state table
    with pytest.raises(ValueError, match=r"FIPS 72.*agi_state\.csv"):
        place(frame, np.arange(400))
    soi = soi_bands(5e5)
    without_al = SoiBands(soi.table[soi.table["state"] != "AL"], soi.file, soi.edges)
    with pytest.raises(ValueError, match=r"state AL .*agi_state\.csv"):
        place(scaffold(), lopsided(scaffold()), soi=without_al)


def test_capital_losses_are_limited_in_the_unit_agi():
    from microplex_assets.seed.top_tail_placement import PlacementRecords, PlacementUnits

    units = PlacementUnits(
        state=np.zeros(2, dtype=int), states=["AL"], weight=np.ones(2), cell=np.zeros(2),
        movable=np.ones(2, dtype=bool), floor=np.zeros(2), own_plain=np.array([1e5, 1e5]),
        own_gain=np.array([0.0, 2e4]),
    )  # fmt: skip
    recs = PlacementRecords(plain=np.array([10.0]), gain=np.array([-5e4]), depth=np.ones(1))
    agi = unit_agi(units, recs, np.array([0, 1]), np.array([0, 0]))
    np.testing.assert_allclose(agi, [1e5 + 10 - 3e3, 1e5 + 10 - 3e3])


def donor(records_: int = 3000, seed: int = 0) -> ObservationFrame:
    """Tax records with gains rising steeply with wages, a few above $1m AGI."""
    rng = np.random.default_rng(seed)
    joint = rng.random(records_) < 0.5
    wage = rng.lognormal(11, 1.0, records_)
    table = pd.DataFrame(
        {tr.ID: np.arange(1, records_ + 1), tr.WEIGHT: rng.uniform(100, 1000, records_),
         tr.FILING_STATUS: np.where(joint, 2, 1), "age_head": rng.integers(25, 80, records_),
         "age_spouse": np.where(joint, rng.integers(25, 80, records_), 0),
         "count_dependents": rng.integers(0, 3, records_)}
    )  # fmt: skip
    for amount in tr.TAX_RECORD_AMOUNTS:
        table[amount] = 0.0
    table["employment_income_before_lsr"] = wage
    table[GAINS] = np.where(rng.random(records_) < 0.3, wage * rng.lognormal(1, 1, records_), 0)
    table["taxable_interest_income"] = 0.01 * wage
    table[tr.AGI] = wage + table[GAINS] + table["taxable_interest_income"]
    return ObservationFrame("hand_puf", 2024, {"tax_unit": table}, links={})


def test_integration_changes_no_scaffold_column_and_only_reassigns_drawn_records():
    frame, tax = tiny_scaffold(households=600, seed=3), donor()
    config = DonorIntegrationConfig(n_estimators=20, seed=2, evidence=False, n_jobs=1)
    on, report = integrate_tax_donor(frame, tax, config)
    off, report_off = integrate_tax_donor(frame, tax, replace(config, top_tail_placement=False))
    assert report_off.top_tail is None and report.top_tail is not None
    assert sum(report.top_tail.swaps.values()) > 0
    assert report.summary()["top_tail"]["summary"]["soi_file"].endswith("agi_state.csv")
    for entity in ("household", "tax_unit"):
        pd.testing.assert_frame_equal(on.tables[entity], frame.tables[entity])
    own = [c for c in frame.tables["person"].columns if c not in config.imputed]
    pd.testing.assert_frame_equal(on.tables["person"][own], frame.tables["person"][own])
    # The imputed head rows are the same records, only held by other units.
    heads = on.tables["person"]["role"] == "head"
    imputed = list(config.imputed)
    rows_on = on.tables["person"].loc[heads, imputed].to_numpy()
    rows_off = off.tables["person"].loc[heads, imputed].to_numpy()
    assert not np.array_equal(rows_on, rows_off)
    assert sorted(map(tuple, rows_on)) == sorted(map(tuple, rows_off))
