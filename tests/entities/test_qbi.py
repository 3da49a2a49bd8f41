"""Section 199A inputs drawn at the eCPS's stated assumptions: carried file checked, shares
at the probabilities, SSTB by the largest qualified source, and what they do in PolicyEngine."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from microplex_assets.entities.demographics import DATA_DIR
from microplex_assets.entities.qbi import (
    QBI_FILE,
    SOURCE_COLUMNS,
    SSTB_FLAG,
    add_qbi_inputs,
    flag_name,
    qbi_assumptions,
    sstb_probability,
)
from microplex_resources.policyengine_runtime import is_input_variable

NEW = [*(flag_name(s) for s in SOURCE_COLUMNS), SSTB_FLAG]


def persons(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "person_id": np.arange(1, n + 1),
            "self_employment_income_before_lsr": rng.choice([0.0, 30_000.0, -5_000.0], n),
            "rental_income": rng.choice([0.0, 12_000.0], n),
            "partnership_income": rng.choice([0.0, 50_000.0], n),
        }
    )


def test_carried_assumptions_match_their_sources_entry():
    entry = json.loads((DATA_DIR / "SOURCES.json").read_text())[QBI_FILE]
    assert hashlib.sha256((DATA_DIR / QBI_FILE).read_bytes()).hexdigest() == entry["sha256"]
    qualified, sstb, used = qbi_assumptions()
    assert used["sha256"] == entry["sha256"] and "stated assumptions" in entry["source"]
    assert qualified["self_employment_income"] == 0.95 and qualified["rental_income"] == 0.70
    assert qualified["partnership_s_corp_income"] == 0.90
    assert sstb == {
        "self_employment_income": 0.30,
        "partnership_s_corp_income": 0.25,
        "estate_income": 0.15,
    }


def test_flags_drawn_for_everyone_at_the_probabilities_and_fixed_by_the_seed():
    person = persons(60_000)
    summary = add_qbi_inputs(person, seed=4)
    assert summary["provenance"] == "eCPS stated assumption"
    for source, rate in {
        "self_employment_income": 0.95,
        "rental_income": 0.70,
        "partnership_s_corp_income": 0.90,
    }.items():
        flags = person[flag_name(source)]
        assert flags.dtype == bool and flags.mean() == pytest.approx(rate, abs=0.01)
    again, other = persons(60_000), persons(60_000)
    add_qbi_inputs(again, seed=4)
    add_qbi_inputs(other, seed=5)
    assert (again[NEW] == person[NEW]).all().all()
    assert (other[NEW] != person[NEW]).any().all()


def test_sstb_probability_follows_the_largest_positive_qualified_source():
    amounts = {
        "self_employment_income": np.array([30e3, 30e3, -5e3, 10e3, 0.0, 30e3]),
        "rental_income": np.array([0.0, 0.0, 0.0, 0.0, 9e4, 0.0]),
        "partnership_s_corp_income": np.array([0.0, 0.0, 0.0, 50e3, 0.0, 0.0]),
    }
    qualified = {flag_name(s): np.ones(6, dtype=bool) for s in amounts}
    qualified[flag_name("self_employment_income")][1] = False  # not qualified: no SSTB
    _, sstb, _ = qbi_assumptions()
    probability = sstb_probability(amounts, qualified, sstb)
    np.testing.assert_allclose(probability, [0.30, 0.0, 0.0, 0.25, 0.0, 0.30])


def test_sstb_share_among_candidates_and_none_without_business_income():
    person = persons(60_000)
    add_qbi_inputs(person, seed=1)
    se = person["self_employment_income_before_lsr"].to_numpy()
    partnership = person["partnership_income"].to_numpy()
    se_only = (se > 0) & (partnership == 0) & person[flag_name("self_employment_income")]
    assert person.loc[se_only, SSTB_FLAG].mean() == pytest.approx(0.30, abs=0.02)
    no_business = (se <= 0) & (partnership == 0)
    assert not person.loc[no_business, SSTB_FLAG].any()  # rental alone is never SSTB


def test_flags_are_policyengine_person_inputs_and_reach_the_deduction(pe_system):
    from policyengine_us import Simulation

    assert all(is_input_variable(pe_system, name, "person") for name in NEW)
    # Four single filers with $400k of self-employment income and $200k of W-2 wages paid
    # (above the 2024 phase-out, so an SSTB keeps no deduction and a non-SSTB 20% of QBI up
    # to half the wages); flags as add_qbi_inputs sets them.
    frame = pd.DataFrame(
        {
            "self_employment_income_before_lsr": [400e3] * 4,
            "w2_wages_from_qualified_business": [200e3] * 4,
            flag_name("self_employment_income"): [True, False, True, True],
            SSTB_FLAG: [False, False, True, False],
            flag_name("rental_income"): [True, True, True, False],
            "rental_income": [0.0, 0.0, 0.0, 10e3],
        }
    )
    year = "2024"
    people = {
        f"p{i}": {"age": {year: 45}, **{c: {year: row[c]} for c in frame.columns}}
        for i, row in frame.iterrows()
    }
    groups = {
        group: {f"{group}_{i}": {"members": [f"p{i}"]} for i in range(len(frame))}
        for group in ("tax_units", "spm_units", "families", "households", "marital_units")
    }
    for i in range(len(frame)):
        groups["households"][f"households_{i}"]["state_code"] = {year: "TX"}
    simulation = Simulation(situation={"people": people, **groups})
    qbi = simulation.calculate("qualified_business_income", 2024)
    deduction = simulation.calculate("qbid_amount", 2024)
    # Qualified non-SSTB: a deduction; not qualified: no QBI; SSTB above the phase-out: QBI
    # but no deduction; rental not qualified: only the self-employment part counts.
    assert qbi[0] > 0 and deduction[0] > 0
    assert qbi[1] == 0 and deduction[1] == 0
    assert qbi[2] == pytest.approx(qbi[0], rel=1e-6) and deduction[2] == 0
    assert qbi[3] == pytest.approx(qbi[0], rel=1e-6)


def test_stage6_bundle_exports_the_flags_to_the_h5(tmp_path, bundle, pe_system):
    import h5py

    from microplex_assets.publication.h5_export import write_policyengine_h5

    assert set(NEW) <= set(bundle.person.columns)
    assert "qbi" in bundle.notes and "eCPS stated assumption" in bundle.notes["qbi"]
    write_policyengine_h5(bundle, tmp_path / "out.h5", pe_system)
    with h5py.File(tmp_path / "out.h5") as h5:
        for name in NEW:
            values = h5[name]["2024"][:]
            assert values.dtype == bool and len(values) == len(bundle.person)
        assert len(np.unique(h5[flag_name("rental_income")]["2024"][:])) == 2
