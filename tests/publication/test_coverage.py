"""The manifest's eCPS coverage table: every eCPS input listed once, constant fills not
counted as provided, sources and kinds on the provided ones, reasons on the missing ones."""

from __future__ import annotations

import h5py
import numpy as np

from microplex_assets.publication.coverage import (
    LEFT_OUT,
    VARIABLE_SOURCES,
    constant_arrays,
    h5_coverage,
)
from microplex_assets.publication.manifest import ecps_columns, ecps_coverage
from microplex_assets.publication.missing_reasons import NO_SOURCE

REFERENCE = ecps_columns()["ecps_exported_inputs"]


def test_constant_arrays_finds_one_value_fills_of_any_dtype():
    arrays = {
        "a": np.zeros(5),
        "b": np.array([True] * 3),
        "c": np.array([b"RENTED"] * 2, dtype="S"),
        "d": np.array([1.0, 2.0]),
        "e": np.array([], dtype=float),
    }
    assert constant_arrays(arrays) == {"a": 0.0, "b": True, "c": "RENTED", "e": None}


def test_counts_exclude_constant_fills_and_table_lists_all_235():
    ours = ["person_id", "age", "is_female", "takes_up_snap_if_eligible", "is_blind"]
    ours += ["veterans_benefits", "made_up_extra"]
    coverage = ecps_coverage(ours, constant={"is_blind": False, "made_up_extra": 0})
    assert coverage["ecps_inputs"] == 235
    assert coverage["provided"] == 5  # is_blind is one value everywhere: not provided
    assert coverage["constant_fills"] == {"is_blind": False}
    assert coverage["missing"]["is_blind"].startswith("constant fill")
    table = coverage["table"]
    assert [row["variable"] for row in table] == REFERENCE
    assert sum(row["status"] == "provided" for row in table) == coverage["provided"]
    rows = {row["variable"]: row for row in table}
    assert rows["is_female"]["kind"] == "imputed" and "SSA" in rows["is_female"]["source"]
    assert rows["takes_up_snap_if_eligible"]["kind"] == "imputed"
    assert rows["veterans_benefits"]["source"] == "taxcalc CPS vet_ben (head)"
    assert rows["veterans_benefits"]["kind"] == "observed"
    assert rows["rental_income"] == {
        "variable": "rental_income", "entity": None, "status": "missing",
        "reason": "no source for it yet",
    }  # fmt: skip
    left = rows["traditional_401k_contributions_desired"]["reason"]
    assert left.startswith("deliberately left out: taxcalc CPS pencon_p")
    assert coverage["provided_by_kind"] == {"structural": 1, "observed": 2, "imputed": 2}
    assert coverage["extra_not_in_ecps"] == ["made_up_extra"]


def test_every_source_is_labelled_with_a_known_kind():
    kinds = {kind for _, kind in VARIABLE_SOURCES.values()}
    assert kinds <= {"observed", "taxdata imputation", "derived", "imputed", "donor", "structural"}
    assert VARIABLE_SOURCES["domestic_production_ald"][1] == "taxdata imputation"
    assert VARIABLE_SOURCES["taxable_interest_income"][1] == "donor"
    source, kind = VARIABLE_SOURCES["non_sch_d_capital_gains"]  # the donor's distributions
    assert kind == "donor" and source.startswith("not in the CPS scaffold; replaced")
    assert set(LEFT_OUT) <= set(REFERENCE)
    new = {
        "is_separated": "derived",
        "own_children_in_household": "derived",
        "congressional_district_geoid": "imputed",
        "takes_up_eitc": "imputed",
        "takes_up_aca_if_eligible": "imputed",
        "takes_up_dc_ptc": "imputed",
        "takes_up_head_start_if_eligible": "imputed",
        "takes_up_early_head_start_if_eligible": "imputed",
    }
    assert {name: VARIABLE_SOURCES[name][1] for name in new} == new
    assert set(new) <= set(REFERENCE)
    qbi = ["business_is_sstb", "self_employment_income_would_be_qualified"]
    qbi += ["rental_income_would_be_qualified", "partnership_s_corp_income_would_be_qualified"]
    for name in qbi:
        source, kind = VARIABLE_SOURCES[name]
        assert kind == "imputed" and source.startswith("eCPS stated assumption")
        assert name in REFERENCE and name not in NO_SOURCE
    assert NO_SOURCE["farm_rent_income_would_be_qualified"].startswith("QBI detail not drawn")
    added = {
        "tenure_type": "imputed",
        "spm_unit_tenure_type": "imputed",
        "estate_income": "donor",
        "estate_income_would_be_qualified": "imputed",
        "pre_subsidy_rent": "imputed",
    }
    assert {name: VARIABLE_SOURCES[name][1] for name in added} == added
    assert set(added) <= set(REFERENCE) and not set(added) & set(NO_SOURCE)
    assert NO_SOURCE["taxable_401k_distributions"].startswith("retirement detail")


def test_coverage_of_an_h5_on_disk(tmp_path):
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as h5:
        h5.create_group("age").create_dataset("2024", data=np.array([30.0, 4.0]))
        h5.create_group("is_disabled").create_dataset("2024", data=np.array([False, False]))
        h5.create_group("person_id").create_dataset("2024", data=np.array([1, 2]))
    result = h5_coverage(str(path))
    assert result["provided"] == 2 and result["constant_fills"] == {"is_disabled": False}


def test_missing_reasons_name_what_could_supply_each_variable():
    assert set(NO_SOURCE) <= set(REFERENCE)
    assert not set(NO_SOURCE) & set(LEFT_OUT)
    assert not set(NO_SOURCE) & set(VARIABLE_SOURCES)  # a provided one is never "no source"
    coverage = ecps_coverage(["person_id"])
    assert coverage["missing"]["immigration_status_str"].startswith("no source yet: immigration")
    assert coverage["missing"]["cps_race"].startswith("no source yet: the CPS ASEC asks it")
    assert coverage["missing_by_reason"]["no source yet"] == len(NO_SOURCE)
