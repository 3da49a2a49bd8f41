import datetime

import numpy as np
import pandas as pd
import pytest

from microplex_assets.publication.capital_gains_lots import build_capital_gains_lots
from microplex_assets.validation.microsim.indexation import (
    apply_indexation,
    indexed_long_term_gains,
    policyengine_cpi_u,
)
from microplex_assets.validation.microsim.reforms import (
    STRUCTURAL_REFORMS,
    poverty_with_cash_restored,
)

LONG = "long_term_capital_gains_before_response"
# CPI by year: +50% from 2014 to 2024, flat 2022-2023, a fall 2019 -> 2020.
CPI_BY_YEAR = {2014: 100.0, 2019: 130.0, 2020: 120.0, 2022: 140.0, 2023: 140.0, 2024: 150.0}


def cpi(when: datetime.date) -> float:
    return CPI_BY_YEAR[when.year]


def lots_frame(rows: list[tuple[int, str, str, str, float, float]]) -> pd.DataFrame:
    """Lots from (person_id, term, acquired, sold, proceeds, cost_basis)."""
    frame = pd.DataFrame(
        rows,
        columns=["person_id", "term", "acquisition_date", "sale_date", "proceeds", "cost_basis"],
    )
    frame["gain"] = frame["proceeds"] - frame["cost_basis"]
    for column in ("acquisition_date", "sale_date"):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[s]")
    frame.insert(0, "lot_id", np.arange(1, len(frame) + 1))
    return frame


def test_a_long_lot_with_rising_cpi_loses_basis_times_the_cpi_rise():
    lots = lots_frame([(1, "long", "2014-03-01", "2024-06-01", 30_000.0, 10_000.0)])
    result = indexed_long_term_gains(lots, cpi)
    row = result.loc[1]
    assert row["original_long_term_gains"] == pytest.approx(20_000.0)
    assert row["indexation_amount"] == pytest.approx(10_000.0 * (150 / 100 - 1))
    assert row["adjusted_long_term_gains"] == pytest.approx(15_000.0)
    adjusted = apply_indexation(np.array([20_000.0]), np.array([1]), lots, cpi)
    np.testing.assert_allclose(adjusted, [15_000.0])


def test_only_long_lots_are_indexed():
    lots = lots_frame(
        [
            (1, "short", "2023-09-01", "2024-03-01", 8_000.0, 5_000.0),
            (2, "short", "2023-09-01", "2024-03-01", 8_000.0, 5_000.0),
            (2, "long", "2022-01-01", "2024-03-01", 14_000.0, 7_000.0),
        ]
    )
    result = indexed_long_term_gains(lots, cpi)
    assert 1 not in result.index  # short lots only: nothing to index
    # Person 2's short lot would add 5,000 * (150/140 - 1) if indexed; only the long one counts.
    assert result.loc[2, "indexation_amount"] == pytest.approx(7_000.0 * (150 / 140 - 1))
    baseline = np.array([0.0, 7_000.0])  # the long-term input; short gains are elsewhere
    adjusted = apply_indexation(baseline, np.array([1, 2]), lots, cpi)
    np.testing.assert_allclose(adjusted, [0.0, 7_000.0 - 500.0])


def test_indexation_never_turns_a_small_gain_into_a_loss():
    # Net long gain 1,000 (a 6,000 gain and a 5,000 loss); indexation 0.5 * 30,000 = 15,000.
    lots = lots_frame(
        [
            (7, "long", "2014-01-01", "2024-01-01", 16_000.0, 10_000.0),
            (7, "long", "2014-01-01", "2024-01-01", 15_000.0, 20_000.0),
        ]
    )
    result = indexed_long_term_gains(lots, cpi)
    assert result.loc[7, "original_long_term_gains"] == pytest.approx(1_000.0)
    assert result.loc[7, "indexation_amount"] == pytest.approx(15_000.0)
    assert result.loc[7, "adjusted_long_term_gains"] == 0.0
    np.testing.assert_array_equal(apply_indexation(np.array([1_000.0]), [7], lots, cpi), [0.0])


def test_a_net_long_term_loss_is_unchanged():
    lots = lots_frame([(3, "long", "2014-01-01", "2024-01-01", 4_000.0, 9_000.0)])
    result = indexed_long_term_gains(lots, cpi)
    assert result.loc[3, "indexation_amount"] > 0  # the basis did rise...
    assert result.loc[3, "adjusted_long_term_gains"] == -5_000.0  # ...but no extra loss
    np.testing.assert_array_equal(
        apply_indexation(np.array([-5_000.0]), [3], lots, cpi), [-5_000.0]
    )


def test_falling_cpi_never_raises_gains():
    # Bought 2019 at CPI 130, sold 2020 at CPI 120: the ratio is below one.
    lots = lots_frame([(4, "long", "2019-01-01", "2020-06-01", 12_000.0, 10_000.0)])
    assert indexed_long_term_gains(lots, cpi).loc[4, "indexation_amount"] == 0.0
    np.testing.assert_array_equal(apply_indexation(np.array([2_000.0]), [4], lots, cpi), [2_000.0])


def test_persons_without_lots_keep_their_values_in_their_order():
    lots = lots_frame([(5, "long", "2014-01-01", "2024-01-01", 30_000.0, 10_000.0)])
    person_ids = np.array([9, 5, 8, 6])
    baseline = np.array([123.45, 20_000.0, -50.0, 0.0])
    adjusted = apply_indexation(baseline, person_ids, lots, cpi)
    np.testing.assert_array_equal(adjusted, [123.45, 15_000.0, -50.0, 0.0])
    unchanged = apply_indexation(baseline, person_ids, lots.iloc[:0], cpi)
    np.testing.assert_array_equal(unchanged, baseline)
    with pytest.raises(ValueError, match="person_ids"):
        apply_indexation(baseline, person_ids[:2], lots, cpi)


def test_registered_reform_on_real_lots(bundle):
    """Lots from the stage-8 builder, CPI +3%/year: gains only fall, never below zero."""
    person = bundle.tables["person"]
    gains = np.zeros(len(person))
    gains[::3] = np.resize([250_000.0, -3_000.0, 0.01, 47_321.55, 812.4], len(gains[::3]))
    person[LONG] = gains
    lots = build_capital_gains_lots(bundle, 2024, seed=5)

    def rising(when: datetime.date) -> float:
        return 100.0 * 1.03 ** ((when - datetime.date(1980, 1, 1)).days / 365.25)

    spec = STRUCTURAL_REFORMS["capital_gains_indexation"]
    assert spec["variable"] == LONG
    ids = person["person_id"].to_numpy()
    adjusted = spec["apply"](gains, ids, {"lots": lots, "cpi": rising})
    positive = gains > 0
    assert (adjusted[~positive] == gains[~positive]).all()
    assert (adjusted[positive] >= 0).all() and (adjusted[positive] <= gains[positive]).all()
    assert (adjusted[positive] < gains[positive]).any()
    # Agrees with the per-person table built from the same lots.
    table = indexed_long_term_gains(lots, rising)
    for person_id, row in table.iterrows():
        position = int(np.flatnonzero(ids == person_id)[0])
        expected = max(gains[position] - row["indexation_amount"], 0.0)
        expected = expected if gains[position] > 0 else gains[position]
        assert adjusted[position] == pytest.approx(expected)
    with pytest.raises(KeyError, match="lots"):
        spec["apply"](gains, ids, {"cpi": rising})


def test_policyengine_cpi_u_rises_from_2000_to_2024(pe_system):
    cpi_u = policyengine_cpi_u(pe_system)
    yearly = [cpi_u(datetime.date(year, 7, 1)) for year in range(2000, 2025)]
    assert yearly[-1] > 1.7 * yearly[0]  # CPI-U roughly doubled (172 -> 314)
    assert sum(b < a for a, b in zip(yearly, yearly[1:], strict=False)) <= 1  # 2009 dipped
    # The value dated on or before a day is in force; before January 1913 the earliest.
    assert cpi_u(datetime.date(2024, 1, 31)) == pytest.approx(309.794)
    assert cpi_u(datetime.date(1900, 6, 1)) == cpi_u(datetime.date(1913, 1, 1)) == 9.8


def test_poverty_is_judged_on_resources_with_the_removed_gain_restored():
    """SPM units 10 (two people, $3,000 of taxable gain removed from one) and 20 (nothing
    removed). PolicyEngine's resources after the rewrite put unit 10 under its threshold;
    with the $3,000 back it is above it. Unit 20 stays poor; unit 30 is exactly at its
    threshold with $500 restored, which is not below it."""
    flags = poverty_with_cash_restored(
        resources=np.array([10_000.0, 5_000.0, 11_500.0]),
        thresholds=np.array([12_000.0, 12_000.0, 12_000.0]),
        spm_unit_ids=np.array([10, 20, 30]),
        person_spm_unit_ids=np.array([20, 10, 10, 30]),
        removed_per_person=np.array([0.0, 3_000.0, 0.0, 500.0]),
    )
    assert flags.tolist() == [True, False, False, False]
    unrestored = poverty_with_cash_restored(
        np.array([10_000.0, 5_000.0, 11_500.0]),
        np.array([12_000.0] * 3),
        np.array([10, 20, 30]),
        np.array([20, 10, 10, 30]),
        np.zeros(4),
    )
    assert unrestored.tolist() == [True, True, True, True]
