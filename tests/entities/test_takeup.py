"""Receipt and take-up inputs of stage 6: reported recipients take up, the weighted share
reaches the published rate, housing take-up is receipt, WIC goes to young children first."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex_assets.entities.takeup import (
    add_program_inputs,
    anchored_take_up,
    take_up_rates,
    wic_recipients,
)


def test_reporters_take_up_and_the_weighted_share_reaches_the_rate():
    rng = np.random.default_rng(1)
    n = 200_000
    weights = rng.uniform(100, 3_000, n)
    reported = rng.random(n) < 0.3
    flags, used = anchored_take_up(reported, np.full(n, 0.82), rng.random(n), weights)
    assert flags[reported].all()
    assert abs(weights @ flags / weights.sum() - 0.82) < 0.005
    p = (0.82 * weights.sum() - weights[reported].sum()) / weights[~reported].sum()
    assert used["0"] == pytest.approx(p, abs=1e-6)


def test_no_one_else_takes_up_where_reporters_exceed_the_rate_and_groups_are_separate():
    reported = np.array([True, True, False, False, True, False, False, False])
    groups = np.array(["AK"] * 4 + ["WY"] * 4)
    rate = np.where(groups == "AK", 0.2, 0.5)
    flags, used = anchored_take_up(reported, rate, np.zeros(8), np.ones(8), groups)
    assert flags[:4].tolist() == [True, True, False, False] and used["AK"] == 0.0
    assert used["WY"] == pytest.approx(1 / 3, abs=1e-6) and flags[4:].all()
    with pytest.raises(ValueError, match="several rates"):
        anchored_take_up(reported, np.linspace(0, 1, 8), np.zeros(8), np.ones(8))


def test_carried_rates_are_the_ecps_ones_with_sources():
    rates, entry = take_up_rates()
    assert rates["snap"] == {"US": 0.82} and rates["ssi"] == {"US": 0.5}
    assert rates["tanf"] == {"US": 0.22} and len(rates["medicaid"]) == 51
    assert "policyengine-us-data" in entry["url"] and len(entry["sha256"]) == 64


def test_wic_goes_to_children_under_5_else_the_woman_adult():
    person = pd.DataFrame(
        {
            "tax_unit_id": [1, 1, 1, 2, 2, 3, 4],
            "role": ["head", "spouse", "dependent", "head", "spouse", "head", "head"],
            "age": [30, 29, 3, 25, 24, 40, 33],
            "is_female": [False, True, False, False, True, False, True],
        }
    )
    tax_unit = pd.DataFrame({"tax_unit_id": [1, 2, 3, 4], "wic_reported": [600, 500, 400, 0]})
    # unit 1: the child; unit 2: the woman spouse; unit 3: the head; unit 4 reports none.
    expected = [False, False, True, False, True, True, False]
    assert wic_recipients(person, tax_unit).tolist() == expected


def test_stage6_bundle_flags(bundle):
    spm, person = bundle.tables["spm_unit"], bundle.person
    tax_unit = bundle.tables["tax_unit"]
    snap_units = tax_unit.loc[tax_unit["snap_reported"] > 0, "tax_unit_id"]
    spm_of = person.groupby("tax_unit_id")["spm_unit_id"].first()
    expected = spm["spm_unit_id"].isin(spm_of.reindex(snap_units))
    assert (spm["receives_snap"] == expected).all() and expected.any()
    assert spm.loc[spm["receives_snap"], "takes_up_snap_if_eligible"].all()
    assert (
        not spm["receives_tanf"].any() and not spm["takes_up_housing_assistance_if_eligible"].any()
    )
    for column in ("takes_up_ssi_if_eligible", "takes_up_medicaid_if_eligible", "is_female"):
        assert person[column].dtype == bool and 0 < person[column].mean() < 1


def test_draws_are_fixed_by_the_seed(bundle):
    def run(seed):
        person, tax_unit = bundle.person.copy(), bundle.tables["tax_unit"]
        spm = bundle.tables["spm_unit"][["spm_unit_id"]].copy()
        add_program_inputs(person, tax_unit, spm, bundle.household, seed)
        return person["takes_up_medicaid_if_eligible"], spm["takes_up_snap_if_eligible"]

    (a1, b1), (a2, b2), (a3, _) = run(4), run(4), run(5)
    assert (a1 == a2).all() and (b1 == b2).all() and (a1 != a3).any()


def test_snap_and_tanf_take_up_is_receipt_on_the_c_tam_scaffold_only(bundle):
    """taxcalc's CPS carries C-TAM receipt (already at administrative caseloads): its SNAP
    and TANF take-up is receipt; another scaffold's non-recipients still draw."""
    spm_before = bundle.tables["spm_unit"][["spm_unit_id"]]

    def run(scaffold):
        person, spm = bundle.person.copy(), spm_before.copy()
        summary = add_program_inputs(
            person, bundle.tables["tax_unit"], spm, bundle.household, 3, scaffold
        )
        return spm, summary

    spm, summary = run("cps_taxcalc")
    assert summary["take_up_is_receipt"] == ["snap", "tanf"]
    assert (spm["takes_up_snap_if_eligible"] == spm["receives_snap"]).all()
    assert (spm["takes_up_tanf_if_eligible"] == spm["receives_tanf"]).all()
    spm, summary = run("cps_asec")
    assert summary["take_up_is_receipt"] == []
    drawn = spm["takes_up_snap_if_eligible"] & ~spm["receives_snap"]
    assert drawn.any()


def test_scaffold_source_is_read_from_a_derived_frame_name():
    from microplex_assets.entities.build import scaffold_source

    assert scaffold_source("candidate<seed<cps_taxcalc>>") == "cps_taxcalc"
    assert scaffold_source("tiny") == "tiny" and scaffold_source("") == ""
