"""Target registry: the known semantic traps, provenance, hashing and the carried tables."""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import json
import math
import pathlib
import shutil

import pandas as pd
import pytest

from microplex_assets.targets.carried import (
    DATA_DIR,
    CarriedTableError,
    carried_sources,
    read_carried_csv,
)
from microplex_assets.targets.model import TargetFilter, TargetSet
from microplex_assets.targets.reference_tables import reference_table_targets
from microplex_assets.targets.registry import (
    DEFAULT_HELD_OUT_GROUPS,
    DEFAULT_TEST_GROUPS,
    registry_report,
    resolve_targets,
    resolve_targets_with_report,
)
from microplex_assets.targets.soi import TAXABLE
from microplex_assets.targets.state_tables import SNAP_COLUMNS

PROTECTED = {
    "ssi", "snap", "wages", "self_employment", "capital_gains", "interest", "dividends",
    "retirement_income", "disability", "household_net_income",
}  # fmt: skip
IRS_SOI = "IRS Statistics of Income"


@pytest.fixture(scope="module")
def resolved(pe_system):
    return resolve_targets_with_report(2024, pe_system)


@pytest.fixture(scope="module")
def target_set(resolved) -> TargetSet:
    return resolved[0]


@pytest.fixture(scope="module")
def by_name(target_set):
    return {t.name: t for t in target_set}


def _soi(target_set, soi_variable):
    return [t for t in target_set if t.source.get("soi_variable") == soi_variable]


def test_national_scale_set_for_2024(resolved):
    target_set, report = resolved
    assert 2_000 <= report["by_geography_level"]["national"] <= 4_000
    assert report["n_targets"] == len(target_set) == sum(c["targets"] for c in report["coverage"])
    assert set(report["by_provider"]) == {"policyengine_parameters", "reference_tables"}
    assert all(t.period == 2024 for t in target_set)


def test_ssi_recipients_count_people_and_ssi_outlays_sum_dollars(by_name, pe_system):
    recipients, outlays = by_name["ssa/ssi/count/US"], by_name["cbo/ssi/sum/US"]
    assert pe_system.variables["ssi"].entity.key == "person"
    assert (recipients.variable, recipients.aggregation) == ("ssi", "count")
    assert (recipients.entity, recipients.scope) == ("person", "recipient")
    assert (outlays.variable, outlays.aggregation, outlays.entity) == ("ssi", "sum", "person")
    assert outlays.scope != "recipient"
    assert recipients.family == outlays.family == "ssi"
    assert recipients.group != outlays.group
    assert 5e6 < recipients.value < 1e7  # people
    assert 3e10 < outlays.value < 1e11  # dollars
    assert recipients.source["agency"] != outlays.source["agency"]


def test_every_count_is_a_plausible_head_count(target_set):
    for target in target_set:
        if target.aggregation == "count":
            assert 0 <= target.value < 4e8, target.name


def test_schedule_c_and_partnership_income_are_different_families(target_set):
    for name in ("business_net_profits", "business_net_losses"):
        rows = _soi(target_set, name)
        assert rows
        assert {t.variable for t in rows} == {"self_employment_income"}
        assert {t.family for t in rows} == {"self_employment"}
    partnership = [
        t
        for name in (
            "partnership_and_s_corp_income",
            "partnership_and_s_corp_losses",
            "s_corporation_net_income",
            "s_corporation_net_losses",
        )
        for t in _soi(target_set, name)
    ]
    assert partnership
    assert {t.variable for t in partnership} <= {"partnership_s_corp_income", "s_corp_income"}
    assert {t.family for t in partnership} == {"partnership_s_corp"}
    self_employment = [t for t in target_set if t.family == "self_employment"]
    assert not {t.variable for t in self_employment} & {
        "partnership_s_corp_income",
        "s_corp_income",
    }
    assert not {t.group for t in self_employment} & {t.group for t in partnership}


def test_soi_targets_are_filer_only_with_band_status_and_taxable_filters(
    target_set, by_name, pe_system
):
    soi = [t for t in target_set if t.source["agency"] == IRS_SOI]
    assert len(soi) > 2_000
    assert {(t.scope, t.entity) for t in soi} == {("filer", "tax_unit")}

    joint = by_name["irs_soi/returns/count/agi_50k_75k/joint_or_surviving_spouse"]
    assert (joint.aggregation, joint.variable) == ("count", "tax_unit_is_filer")
    assert TargetFilter("adjusted_gross_income", 50_000.0, 75_000.0) in joint.filters
    assert TargetFilter("filing_status", equals=("JOINT", "SURVIVING_SPOUSE")) in joint.filters
    assert not any(f.nonzero for f in joint.filters)  # all returns in the band

    wages = by_name["irs_soi/employment_income/count/agi_50k_75k/all_statuses/taxable"]
    assert TargetFilter("irs_employment_income", nonzero=True) in wages.filters  # returns with X
    assert TAXABLE in wages.filters
    assert TargetFilter("income_tax_before_refundable_credits", low=0.0, nonzero=True) == TAXABLE
    assert not any(f.variable == "filing_status" for f in wages.filters)

    statuses = set(pe_system.variables["filing_status"].possible_values._member_names_)
    for target in soi:
        for f in target.filters:
            if f.variable == "filing_status":
                assert set(f.equals) <= statuses, target.name

    population = [t for t in target_set if t.family == "population"]
    assert population and {t.scope for t in population} == {"population"}


def test_losses_are_negative_sums_over_negative_values(by_name):
    factor_checked = 0
    for soi_name, variable in (
        ("business_net_losses", "self_employment_income"),
        ("capital_gains_losses", "loss_limited_net_capital_gains"),
        ("rent_and_royalty_net_losses", "rental_income"),
    ):
        loss = by_name[f"irs_soi/{soi_name}/sum/agi_all/all_statuses"]
        assert loss.variable == variable
        assert TargetFilter(variable, high=0.0) in loss.filters
        assert loss.value < 0 < loss.source["reported_value"]
        assert loss.source["sign"] == -1
        expected = -loss.source["reported_value"] * loss.source["uprating_factor"]
        assert loss.value == pytest.approx(expected)
        factor_checked += 1
        returns = by_name[f"irs_soi/{soi_name}/count/agi_all/all_statuses"]
        assert returns.value > 0 and TargetFilter(variable, high=0.0) in returns.filters
    assert factor_checked == 3
    profits = by_name["irs_soi/business_net_profits/sum/agi_all/all_statuses"]
    assert TargetFilter("self_employment_income", low=0.0, nonzero=True) in profits.filters
    assert profits.value > 0


def test_every_target_validates_and_names_its_source(target_set, pe_system):
    package = pathlib.Path(DATA_DIR).resolve()
    for t in target_set:
        assert isinstance(t.source["year"], int) and 2015 <= t.source["year"] <= 2024, t.name
        assert t.source["agency"] and t.source["table"], t.name
        assert t.source["provider"] in {"policyengine_parameters", "reference_tables"}
        assert math.isfinite(t.source["uprating_factor"]) and t.source["uprating_factor"] > 0
        assert t.source["uprating_index"], t.name
        assert ("file" in t.source) != ("parameter" in t.source), t.name
        if "file" in t.source:
            path = pathlib.Path(t.source["file"]).resolve()
            assert path.parent == package and path.is_file(), t.name
        for name in (t.variable, *(f.variable for f in t.filters)):
            assert name in pe_system.variables, (t.name, name)


def test_content_hash_is_stable_and_follows_values(pe_system, target_set):
    again = resolve_targets(2024, pe_system)
    assert again.content_hash == target_set.content_hash
    first, *rest = again.targets
    changed = TargetSet((dataclasses.replace(first, value=first.value * 1.01), *rest))
    assert changed.content_hash != target_set.content_hash
    other_year = resolve_targets(2025, pe_system)
    assert other_year.content_hash != target_set.content_hash
    assert {t.period for t in other_year} == {2025}


def test_resolver_reads_only_the_carried_copies(pe_system, monkeypatch):
    read: list[str] = []
    for method in ("read_bytes", "read_text"):
        original = getattr(pathlib.Path, method)

        def spy(self, *args, _original=original, **kwargs):
            read.append(str(self.resolve()))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(pathlib.Path, method, spy)
    original_open = builtins.open

    def spy_open(file, *args, **kwargs):
        read.append(
            str(pathlib.Path(file).resolve()) if isinstance(file, str | pathlib.Path) else ""
        )
        return original_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    original_read_csv = pd.read_csv

    def spy_read_csv(source, *args, **kwargs):
        if isinstance(source, str | pathlib.Path):
            read.append(str(pathlib.Path(source).resolve()))
        return original_read_csv(source, *args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", spy_read_csv)
    resolve_targets(2023, pe_system)
    data_reads = [p for p in read if p.endswith((".csv", ".json"))]
    assert data_reads, "the carried tables should have been read"
    assert not [p for p in read if "/work/shared" in p or "/shared/reference" in p]
    package = str(pathlib.Path(DATA_DIR).resolve())
    assert all(p.startswith(package) for p in data_reads), data_reads


def test_groups_never_span_families(target_set):
    families: dict[str, set[str]] = {}
    for target in target_set:
        families.setdefault(target.group, set()).add(target.family)
    assert {g: f for g, f in families.items() if len(f) > 1} == {}


def test_default_held_out_groups(target_set, resolved):
    groups: dict[str, list] = {}
    for target in target_set:
        groups.setdefault(target.group, []).append(target)
    for group in DEFAULT_HELD_OUT_GROUPS:
        assert groups.get(group), f"held-out group {group} not in the 2024 set"
        assert not {t.family for t in groups[group]} & PROTECTED, group
    state_level = [g for g in DEFAULT_HELD_OUT_GROUPS if all(not t.is_national for t in groups[g])]
    national = [g for g in DEFAULT_HELD_OUT_GROUPS if all(t.is_national for t in groups[g])]
    assert state_level and national
    assert resolved[1]["held_out_groups"] == {g: len(groups[g]) for g in DEFAULT_HELD_OUT_GROUPS}


def test_malformed_carried_table_names_file_and_column(tmp_path, pe_system):
    broken = tmp_path / "snap_state.csv"
    broken.write_text("GEO_ID,Households\n0400000US01,376038.6667\n")
    with pytest.raises(CarriedTableError, match=r"snap_state\.csv.*'Cost'"):
        read_carried_csv(broken, SNAP_COLUMNS)

    copy = tmp_path / "data"
    shutil.copytree(DATA_DIR, copy)
    (copy / "snap_state.csv").write_text("GEO_ID,Households\n0400000US01,376038.6667\n")
    with pytest.raises(CarriedTableError, match=r"snap_state\.csv.*'Cost'"):
        reference_table_targets(2024, pe_system, data_dir=copy)


def test_changed_carried_table_fails_its_hash(tmp_path, pe_system):
    copy = tmp_path / "data"
    shutil.copytree(DATA_DIR, copy)
    path = copy / "medicaid_enrollment_2024.csv"
    path.write_text(path.read_text().replace("231577", "231578"))
    with pytest.raises(CarriedTableError, match=r"medicaid_enrollment_2024\.csv: sha256"):
        reference_table_targets(2024, pe_system, data_dir=copy)


def test_sources_file_describes_every_carried_table():
    sources = carried_sources()
    on_disk = {p.name for p in pathlib.Path(DATA_DIR).glob("*.csv")}
    assert set(sources) == on_disk
    for name, entry in sources.items():
        assert {"agency", "table", "year", "original_path", "sha256"} <= set(entry), name
        assert entry["sha256"] == hashlib.sha256((DATA_DIR / name).read_bytes()).hexdigest()
    assert json.loads((DATA_DIR / "SOURCES.json").read_text()) == sources


def test_report_lists_what_was_left_out_and_why(resolved):
    target_set, report = resolved
    reasons = " ".join(s["reason"] for s in report["skipped"])
    assert "income tax after credits" in reasons
    assert "superseded by reference_tables" in reasons
    assert all(s["reason"] for s in report["skipped"])
    assert report["n_skipped"] == sum(r["rows"] for r in report["skipped_summary"])
    assert report["content_hash"] == target_set.content_hash
    assert registry_report(target_set, [])["n_skipped"] == 0
    json.dumps(report)  # the UI gets it as JSON


def test_one_fact_one_target_across_providers(pe_system, by_name):
    alone = {t.name: t for t in resolve_targets(2024, pe_system, ("policyengine_parameters",))}
    name = "irs_soi/employment_income/sum/agi_all/all_statuses"
    assert alone[name].source["provider"] == "policyengine_parameters"
    assert by_name[name].source["provider"] == "reference_tables"
    assert by_name[name].source["year"] == 2023
    with pytest.raises(ValueError, match="unknown target providers"):
        resolve_targets(2024, pe_system, ("nope",))


def test_national_household_count_comes_from_acs_s2201_without_puerto_rico(by_name, resolved):
    target = by_name["census/households/count/US"]
    assert target.source["reported_value"] == 132_737_146  # ACS 2024 S2201, 50 states + DC
    assert target.variable == "household_count" and target.entity == "household"
    assert target.family == "population" and target.aggregation == "count"
    skipped = [s for s in resolved[1]["skipped"] if "S2201" in str(s.get("table", ""))]
    assert [s["item"] for s in skipped] == ["row 0400000US72"]


def test_default_test_groups_are_whole_families_of_both_levels(target_set, resolved):
    test = [t for t in target_set if t.group in DEFAULT_TEST_GROUPS]
    assert {t.family for t in test} == {"eitc", "medicaid"}
    assert {t.is_national for t in test} == {True, False}
    others = {t.family for t in target_set if t.group not in DEFAULT_TEST_GROUPS}
    assert not others & {"eitc", "medicaid"}
    assert set(resolved[1]["test_groups"]) == set(DEFAULT_TEST_GROUPS)


def test_national_children_come_from_census_projections_of_the_build_year(by_name):
    """Under 6 and 6-17 from the carried projection row of 2024, unuprated, own family."""
    frame, _ = read_carried_csv(DATA_DIR / "census_children_by_age_2022_2040.csv", ("year",))
    row = frame.set_index("year").loc[2024]
    under_6 = by_name["census/children/age_0_5/US"]
    school_age = by_name["census/children/age_6_17/US"]
    assert under_6.value == sum(row[f"age_{a}"] for a in range(6)) == 22_092_871
    assert school_age.value == sum(row[f"age_{a}"] for a in range(6, 18))
    for target, (low, high) in ((under_6, (0.0, 6.0)), (school_age, (6.0, 18.0))):
        assert target.family == "children" and target.geography == "US"
        assert target.filters == (TargetFilter("age", low, high),)
        assert target.source["uprating_factor"] == 1.0 and target.source["year"] == 2024


def test_children_targets_refuse_a_year_the_projection_lacks(pe_system, tmp_path):
    from microplex_assets.targets.aggregate_uprating import Uprater
    from microplex_assets.targets.children import CHILDREN_FILE, national_children_targets
    from microplex_assets.targets.state_tables import Table

    frame, _ = read_carried_csv(DATA_DIR / CHILDREN_FILE, ("year",))
    entry = {**carried_sources()[CHILDREN_FILE], "file": CHILDREN_FILE, "year": 2050}
    table = Table(entry, Uprater(pe_system, 2050), [])
    with pytest.raises(ValueError, match=r"census_children.*year 2050.*2022-2040"):
        national_children_targets(frame, table)
