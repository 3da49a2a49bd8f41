"""Estate and trust income: SOI's Table 1.4 items in the synthetic donor, E26390 - E26400 on
a real PUF, imputed by default, and read by PolicyEngine as ``estate_income`` (QBI too)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex_assets.entities.qbi import add_qbi_inputs, flag_name
from microplex_assets.seed.donor_inputs import DEFAULT_IMPUTED
from microplex_assets.sources import tax_records as tr
from microplex_assets.sources.puf import estate, rental
from microplex_assets.sources.synthetic_puf import synthesize_tax_records


@pytest.fixture(scope="module")
def donor():
    return synthesize_tax_records(2024, records=3_000, seed=11)


def test_synthetic_donor_reproduces_soi_estate_items(donor):
    assert "estate_income" in tr.TAX_RECORD_AMOUNTS and "estate_income" in DEFAULT_IMPUTED
    rows = pd.DataFrame(donor.provenance["reproduction"]).set_index(["variable", "measure"])
    for item in ("estate_income", "estate_losses"):
        for measure in ("count", "amount"):
            assert rows.loc[(item, measure), "max_abs_relative_error"] < 1e-9
            assert rows.loc[(item, measure), "soi_total"] > 0
    table = donor.tables[tr.TAX_UNIT_TABLE]
    values = table["estate_income"].to_numpy()
    assert (values > 0).any() and (values < 0).any()


def test_estate_draw_leaves_the_other_columns_alone(donor, monkeypatch):
    from microplex_assets.sources import synthetic_puf

    def zeros(ctx, ret, seed):
        ret["estate_income"] = np.zeros(len(ret))

    monkeypatch.setattr(synthetic_puf, "_estates", zeros)
    without = synthesize_tax_records(2024, records=3_000, seed=11).tables[tr.TAX_UNIT_TABLE]
    with_estates = donor.tables[tr.TAX_UNIT_TABLE]
    # Boundary splits add rows at the end; the rows both have are the same returns.
    n = len(without)
    for column in ("adjusted_gross_income", "employment_income_before_lsr", "rental_income"):
        np.testing.assert_allclose(with_estates[column].to_numpy()[:n], without[column])


def test_puf_estate_columns_and_rental_fallback():
    puf = pd.DataFrame(
        {"E02000": [30_000.0], "E26270": [10_000.0], "E26390": [8_000.0], "E26400": [0.0]}
    )
    amount, rule = estate(puf)
    assert amount.tolist() == [8_000.0] and rule == "E26390 - E26400"
    # Schedule E total less partnership/S-corp less estates: rents and royalties only.
    assert rental(puf)[0].tolist() == [12_000.0]
    bare = puf.drop(columns=["E26390", "E26400"])
    assert estate(bare)[0].tolist() == [0.0] and rental(bare)[0].tolist() == [20_000.0]


def test_estate_income_reaches_policyengine_qbi():
    from policyengine_us import Simulation

    person = pd.DataFrame({"estate_income": [20_000.0] * 4})
    summary = add_qbi_inputs(person, seed=2)
    assert summary[flag_name("estate_income")]["probability"] == 0.60
    year = "2024"
    flags = [True, False]
    people = {
        f"p{i}": {
            "age": {year: 50},
            "estate_income": {year: 20_000.0},
            flag_name("estate_income"): {year: flag},
        }
        for i, flag in enumerate(flags)
    }
    groups = {
        group: {f"{group}_{i}": {"members": [f"p{i}"]} for i in range(len(flags))}
        for group in ("tax_units", "spm_units", "families", "households", "marital_units")
    }
    for i in range(len(flags)):
        groups["households"][f"households_{i}"]["state_code"] = {year: "TX"}
    simulation = Simulation(situation={"people": people, **groups})
    assert simulation.calculate("estate_income", 2024).tolist() == [20_000.0, 20_000.0]
    qbi = simulation.calculate("qualified_business_income", 2024)
    assert qbi[0] == pytest.approx(20_000.0) and qbi[1] == 0
