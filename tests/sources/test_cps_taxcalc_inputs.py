"""The CPS columns added by ``cps_taxcalc_inputs``, on hand-made rows in cps.csv.gz format,
followed through stage 6 into the H5: each lands in its policyengine-us variable, on the
variable's entity."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from microplex_assets.candidate.backends import run_backend
from microplex_assets.entities.build import build_entity_bundle
from microplex_assets.publication.h5_export import write_policyengine_h5
from microplex_assets.sources.cps_taxcalc import REQUIRED_COLUMNS, load_taxcalc_cps
from microplex_assets.sources.cps_taxcalc_inputs import (
    PERSON_INPUTS,
    SSI_FEDERAL_BENEFIT_RATE,
    TAX_UNIT_INPUTS,
    enrollee_counts,
    ssi_recipient_counts,
)

YEAR = 2024
MEDICAID_EACH = 7204
BASE = {"FLPDYR": 2014, "fips": 6, "a_lineno": 1, "ffpos": 1, "s006": 10_000, "agi_bin": 5}
# One tax unit per household; ages in the bands they count (dependents are drawn).
ROWS = [
    # A: couple, two children under 6, the spouse self-employed, two Medicaid enrollees.
    {"MARS": 2, "age_head": 40, "age_spouse": 38, "XTOT": 4, "nu06": 2, "nu13": 2,
     "n24": 2, "nu18": 2, "n21": 2, "e00900s": 15_000, "e00900": 15_000, "e03300": 2_000,
     "e03270": 3_000, "vet_ben": 1_000, "e03150": 500, "e20400": 300, "e03240": 700,
     "e18400": 900, "mcaid_ben": 2 * MEDICAID_EACH, "wic_ben": 500, "snap_ben": 1_200},
    # B: single dependent filer, 30, SSI for two (one member), Medicaid, SE health without
    # self-employment (dropped).
    {"MARS": 1, "age_head": 30, "XTOT": 1, "n21": 1, "DSI": 1, "e03270": 4_000,
     "ssi_ben": 2 * 12 * 721, "mcaid_ben": MEDICAID_EACH, "housing_ben": 6_000},
    # C: single, 55, Social Security and nobody 62+: an SSDI head.
    {"MARS": 1, "age_head": 55, "XTOT": 1, "n21": 1, "e02400": 12_000, "tanf_ben": 3_000},
    # D: couple 70 / 60 with Social Security (retirement in the unit) and SSI for one.
    {"MARS": 2, "age_head": 70, "age_spouse": 60, "XTOT": 2, "n21": 2, "e02400": 20_000,
     "ssi_ben": 8_000, "mcare_ben": 11_733},
    # E: a 16-year-old head with Social Security (a survivor child, not disabled).
    {"MARS": 1, "age_head": 16, "XTOT": 1, "nu18": 1, "e02400": 5_000},
]  # fmt: skip


@pytest.fixture(scope="module")
def frame(tmp_path_factory, pe_system):
    folder = tmp_path_factory.mktemp("cps_inputs")
    cps = pd.DataFrame(0, index=range(len(ROWS)), columns=list(REQUIRED_COLUMNS))
    for i, row in enumerate(ROWS):
        for key, value in {**BASE, **row, "h_seq": i + 1, "RECID": i + 1}.items():
            cps.loc[i, key] = value
    cps_path, weights_path = folder / "cps.csv.gz", folder / "cps_weights.csv.gz"
    cps.to_csv(cps_path, index=False, compression="gzip")
    pd.DataFrame({"WT2024": [10_000] * len(ROWS)}).to_csv(
        weights_path, index=False, compression="gzip"
    )
    return load_taxcalc_cps(YEAR, 3, pe_system, cps_path, weights_path)


def _factor(frame, variable):
    return frame.provenance["uprating"][variable]["factors"]["2014"]


def _by_unit(frame, role="head"):
    person = frame.tables["person"]
    return person[person["role"] == role].set_index("tax_unit_id")


def test_amounts_land_on_head_or_self_employed_member(frame):
    head, spouse = _by_unit(frame), _by_unit(frame, "spouse")
    for variable, amount in {
        "veterans_benefits": 1_000,
        "traditional_ira_contributions_desired": 500,
        "unreimbursed_business_employee_expenses": 300,
    }.items():
        assert head.loc[1, variable] == pytest.approx(amount * _factor(frame, variable))
        assert frame.tables["person"][variable].astype(bool).sum() == 1
    for variable, amount in {
        "self_employed_pension_contributions_desired": 2_000,
        "health_insurance_premiums": 3_000,
    }.items():
        assert spouse.loc[1, variable] == pytest.approx(amount * _factor(frame, variable))
        assert head.loc[1, variable] == 0
    # B's SE health insurance has no self-employed member to go to: dropped, and counted.
    assert head.loc[2, "health_insurance_premiums"] == 0
    dropped = frame.provenance["inputs"]["self_employed_inputs_dropped_without_self_employment"]
    assert dropped["health_insurance_premiums"]["units"] == 1
    tax_unit = frame.tables["tax_unit"].set_index("tax_unit_id")
    assert tax_unit.loc[1, "domestic_production_ald"] == pytest.approx(
        700 * _factor(frame, "domestic_production_ald")
    )
    assert tax_unit.loc[1, "state_income_tax_reported"] > 900  # CPI-uprated diagnostic


def test_receipt_counts_flags_and_disability(frame):
    person = frame.tables["person"]
    head, spouse = _by_unit(frame), _by_unit(frame, "spouse")
    tax_unit = frame.tables["tax_unit"].set_index("tax_unit_id")
    assert tax_unit["medicaid_enrollees_reported"].tolist() == [2, 1, 0, 0, 0]
    assert tax_unit["medicare_enrollees_reported"].tolist() == [0, 0, 0, 1, 0]
    assert tax_unit["ssi_recipients_reported"].tolist() == [0, 2, 0, 1, 0]
    # A: the two children (under 19) hold Medicaid, not the parents.
    a = person[person["tax_unit_id"] == 1]
    assert a.loc[a["role"] == "dependent", "receives_medicaid"].all()
    assert not a.loc[a["role"] != "dependent", "receives_medicaid"].any()
    assert (
        person["has_medicaid_health_coverage_at_interview"] == person["receives_medicaid"]
    ).all()
    assert head.loc[2, "receives_medicaid"]
    # SSI: B's two recipients are one person; D's goes to the aged head, not disabled.
    assert head.loc[2, "receives_ssi"] and head.loc[4, "receives_ssi"]
    assert not spouse.loc[4, "receives_ssi"]
    assert head.loc[2, "claimed_as_dependent_on_another_return"]
    assert person["claimed_as_dependent_on_another_return"].sum() == 1
    disabled = person.loc[person["is_disabled"], "tax_unit_id"].tolist()
    assert disabled == [2, 3]  # SSI recipient under 65 (B), SSDI head (C); not D, not E
    assert (person["meets_ssi_disability_criteria"] == person["is_disabled"]).all()


def test_counting_rules():
    counts, each = enrollee_counts(np.array([0.0, 7204, 14408, 79249]))
    assert each == 7204 and counts.tolist() == [0, 1, 2, 11]
    rate = 12 * SSI_FEDERAL_BENEFIT_RATE[2013]
    amounts = np.array([0.0, 100, rate, 1.4 * rate, 2 * rate])
    assert ssi_recipient_counts(amounts, np.full(5, 2013)).tolist() == [0, 1, 1, 1, 2]
    with pytest.raises(ValueError, match="2011"):
        ssi_recipient_counts(np.array([100.0]), np.array([2011]))


def _read(path, name):
    with h5py.File(path) as h5:
        return h5[name][str(YEAR)][:]


def test_every_new_input_reaches_the_h5_on_its_entity(frame, tmp_path, pe_system):
    bundle = build_entity_bundle(run_backend("seed_passthrough", frame), seed=1)
    path = tmp_path / "inputs.h5"
    report = write_policyengine_h5(bundle, path, pe_system)
    counts = report.record_counts
    expected = {
        **dict.fromkeys(PERSON_INPUTS, "person"),
        **dict.fromkeys(TAX_UNIT_INPUTS, "tax_unit"),
        "is_female": "person",
        "receives_wic": "person",
        "is_self_employed": "person",
        "takes_up_ssi_if_eligible": "person",
        "takes_up_medicaid_if_eligible": "person",
        "receives_snap": "spm_unit",
        "receives_tanf": "spm_unit",
        "receives_housing_assistance": "spm_unit",
        "takes_up_snap_if_eligible": "spm_unit",
        "takes_up_tanf_if_eligible": "spm_unit",
        "takes_up_housing_assistance_if_eligible": "spm_unit",
    }
    for variable, entity in expected.items():
        assert pe_system.variables[variable].entity.key == entity, variable
        assert variable in report.exported[entity], variable
        assert len(_read(path, variable)) == counts[entity], variable
    for diagnostic in (
        "state_income_tax_reported",
        "medicaid_enrollees_reported",
        "ssi_recipients_reported",
    ):
        assert report.excluded[f"tax_unit.{diagnostic}"].startswith("reported source value")
    person = bundle.person
    assert _read(path, "veterans_benefits").tolist() == pytest.approx(
        person["veterans_benefits"].tolist()
    )
    assert _read(path, "receives_ssi").tolist() == person["receives_ssi"].tolist()
    spm = bundle.tables["spm_unit"]
    assert _read(path, "receives_snap").tolist() == spm["receives_snap"].tolist()
    # Reported receipt takes up (SNAP in A, TANF in C, housing in B).
    assert spm.loc[spm["receives_snap"], "takes_up_snap_if_eligible"].all()
    assert spm["receives_snap"].sum() == 1 and spm["receives_tanf"].sum() == 1
    assert (
        spm["takes_up_housing_assistance_if_eligible"] == spm["receives_housing_assistance"]
    ).all()
    assert person.loc[person["receives_ssi"], "takes_up_ssi_if_eligible"].all()
    # The self-employed spouse of A; WIC to A's members under 5 (else a woman adult).
    assert person.loc[person["is_self_employed"], "role"].tolist() == ["spouse"]
    a = person[person["tax_unit_id"] == 1]
    wic = a["receives_wic"].to_numpy()
    under5 = a["age"].to_numpy() < 5
    assert (wic == under5).all() if under5.any() else wic.sum() == 1
    assert not person.loc[person["tax_unit_id"] != 1, "receives_wic"].any()
