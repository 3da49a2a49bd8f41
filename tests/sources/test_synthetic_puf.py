"""The synthetic PUF-like donor reproduces the carried SOI table and meets the donor contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex_assets.files import file_sha256
from microplex_assets.sources.frame import SourceFormatError
from microplex_assets.sources.soi_bands import SOI_FILE, choose_soi_year, read_soi_table, soi_facts
from microplex_assets.sources.synthetic_puf import LONG_TERM_SHARE, synthesize_tax_records
from microplex_assets.sources.synthetic_puf_evidence import soi_reproduction
from microplex_assets.sources.tax_records import TAX_UNIT_TABLE, validate_tax_records
from microplex_assets.targets.carried import DATA_DIR

RECORDS = 5_000
CHECKED = (
    "employment_income",
    "capital_gains_gross",
    "capital_gains_losses",
    "capital_gains_distributions",
    "qualified_dividends",
    "partnership_and_s_corp_income",
    "partnership_and_s_corp_losses",
    "s_corporation_net_income",
    "charitable_contributions_deductions",
)


@pytest.fixture(scope="module")
def frame():
    return synthesize_tax_records(2024, records=RECORDS)


@pytest.fixture(scope="module")
def reproduction(frame) -> pd.DataFrame:
    return soi_reproduction(frame)


def _table(frame) -> pd.DataFrame:
    return frame.tables[TAX_UNIT_TABLE]


def test_contract_and_provenance(frame):
    validate_tax_records(frame)
    p = frame.provenance
    assert p["kind"] == "synthetic"
    assert "not survey or tax data" in p["label"]
    assert p["soi_year"] == 2023
    assert p["sha256"] == file_sha256(DATA_DIR / SOI_FILE)
    assert p["seed"] == 1456 and p["records"] == RECORDS
    assert p["uprating"]["uprated"] is False and "not uprated" in p["uprating"]["note"]
    assert {row["variable"] for row in p["reproduction"]} >= set(CHECKED)


def test_return_counts_and_agi_by_band_and_status(reproduction):
    counts = reproduction[reproduction["variable"] == "count"]
    assert len(counts) == 5 * 19  # All + four statuses x 19 AGI bands
    assert counts["relative_error"].abs().max() < 1e-3
    agi = reproduction[reproduction["variable"] == "adjusted_gross_income"]
    assert agi["relative_error"].abs().max() < 1e-2


@pytest.mark.parametrize("variable", CHECKED)
def test_item_band_totals_and_holders(reproduction, variable):
    rows = reproduction[(reproduction["variable"] == variable) & (reproduction["soi"] > 0)]
    # SOI shows no distributions without Schedule D from $1m of AGI up (14 bands).
    assert len(rows) >= 2 * (14 if variable == "capital_gains_distributions" else 15)
    for measure in ("count", "amount"):
        errors = rows.loc[rows["measure"] == measure, "relative_error"].abs()
        assert errors.max() < 0.02, (variable, measure, errors.max())


def _soi_totals(is_count: bool) -> pd.Series:
    facts = soi_facts(read_soi_table()[0])
    return facts[
        (facts["year"] == 2023)
        & (facts["status"] == "All")
        & (facts["is_count"] == is_count)
        & np.isinf(facts["low"])
        & np.isinf(facts["high"])
    ].set_index("variable")["value"]


def test_long_term_gains_split(frame):
    t, total = _table(frame), _soi_totals(is_count=False)
    expected = LONG_TERM_SHARE * (total["capital_gains_gross"] - total["capital_gains_losses"])
    weighted = (t["tax_unit_weight"] * t["long_term_capital_gains_before_response"]).sum()
    assert weighted == pytest.approx(expected, rel=0.02)


def test_distributions_are_non_sch_d_capital_gains(frame, reproduction):
    """SOI's distributions (no Schedule D) are their own input, not long-term gains."""
    t, weight = _table(frame), _table(frame)["tax_unit_weight"]
    distributions = t["non_sch_d_capital_gains"]
    amount, count = _soi_totals(is_count=False), _soi_totals(is_count=True)
    assert (weight * distributions).sum() == pytest.approx(
        amount["capital_gains_distributions"], rel=0.02
    )
    assert weight[distributions > 0].sum() == pytest.approx(
        count["capital_gains_distributions"], rel=0.02
    )
    assert (distributions >= 0).all()
    # Their holders file no Schedule D: no other gain or loss on the same return.
    held = distributions > 0
    assert (t.loc[held, "long_term_capital_gains_before_response"] == 0).all()
    assert (t.loc[held, "short_term_capital_gains"] == 0).all()
    rows = reproduction[reproduction["variable"] == "capital_gains_distributions"]
    assert set(rows["pe_variable"]) == {"non_sch_d_capital_gains"}


def test_per_return_consistency(frame):
    t = _table(frame)
    ordinary = t["qualified_dividend_income"] + t["non_qualified_dividend_income"]
    assert (t["qualified_dividend_income"] <= ordinary + 1e-6).all()
    net_gain = t["long_term_capital_gains_before_response"] + t["short_term_capital_gains"]
    assert (net_gain >= -3_000 - 1e-6).all()
    assert (t.loc[t["filing_status"] == 4, "count_dependents"] >= 1).all()
    assert (t.loc[t["filing_status"] != 2, "age_spouse"] == 0).all()
    assert (t.loc[t["filing_status"] == 2, "age_spouse"] >= 18).all()
    assert t["age_head"].between(18, 85).all()


def test_top_band_is_resolved(frame):
    t = _table(frame)
    top = t[t["adjusted_gross_income"] >= 10_000_000]
    middle = t[t["adjusted_gross_income"].between(50_000, 75_000, inclusive="left")]
    assert len(top) >= 25
    # more records per return at the top than in the middle
    assert top["tax_unit_weight"].mean() * 20 < middle["tax_unit_weight"].mean()


def test_deterministic_for_a_seed(frame):
    again = synthesize_tax_records(2024, records=RECORDS)
    pd.testing.assert_frame_equal(_table(again), _table(frame))
    other = synthesize_tax_records(2024, records=RECORDS, seed=7)
    assert not _table(other)["adjusted_gross_income"].equals(_table(frame)["adjusted_gross_income"])


def test_uprate_callback_is_applied_and_recorded(frame):
    calls = []

    def uprate(variable: str, start: int, end: int) -> float:
        calls.append((variable, start, end))
        return 1.5 if variable == "employment_income_before_lsr" else 1.1

    uprated = synthesize_tax_records(2024, records=RECORDS, uprate=uprate)
    assert ("employment_income_before_lsr", 2023, 2024) in calls
    assert ("adjusted_gross_income", 2023, 2024) in calls
    factors = uprated.provenance["uprating"]["factors"]
    assert factors["employment_income_before_lsr"] == 1.5
    base, up = _table(frame), _table(uprated)
    np.testing.assert_allclose(
        up["employment_income_before_lsr"], 1.5 * base["employment_income_before_lsr"]
    )
    np.testing.assert_allclose(up["adjusted_gross_income"], 1.1 * base["adjusted_gross_income"])
    np.testing.assert_allclose(up["tax_unit_weight"], base["tax_unit_weight"])
    # the evidence deflates with the recorded factors, so it still matches SOI
    assert soi_reproduction(uprated)["relative_error"].abs().max() < 1e-3


def test_soi_year_choice():
    facts = soi_facts(read_soi_table()[0])
    assert choose_soi_year(facts, 2024) == 2023
    assert choose_soi_year(facts, 2022) == 2022
    assert choose_soi_year(facts, 2016) == 2021  # 2015 lacks the S-corporation columns
    with pytest.raises(SourceFormatError, match="2015"):
        choose_soi_year(facts, 2024, soi_year=2015)


def test_malformed_soi_table_names_file_and_column(tmp_path: Path):
    table = pd.read_csv(DATA_DIR / SOI_FILE, comment="#").drop(columns=["Value"])
    path = tmp_path / "soi_broken.csv"
    table.to_csv(path, index=False)
    with pytest.raises(SourceFormatError) as error:
        synthesize_tax_records(2024, records=RECORDS, soi_path=path)
    assert str(path) in str(error.value) and "Value" in str(error.value)
