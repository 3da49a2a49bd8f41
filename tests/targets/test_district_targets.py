"""District targets from the carried ACS tables, and their reconciliation with the states."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest

from microplex_assets.geography.districts import UnknownDistrictError
from microplex_assets.targets import district_sources
from microplex_assets.targets.carried import DATA_DIR, CarriedTableError, carried_sources
from microplex_assets.targets.district_reconciliation import (
    benchmarked_to_state,
    reconcile_district_totals,
    residual_summary,
    state_totals,
)
from microplex_assets.targets.district_tables import (
    AGE_SEX_FILE,
    RENT_FILE,
    SNAP_FILE,
    district_rent,
    district_table_targets,
    district_targets,
)
from microplex_assets.targets.registry import check_targets, resolve_targets_with_report

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "geography"
DERIVED = {
    AGE_SEX_FILE: ("acs_S0101_district_2024.json", district_sources.derive_age_sex),
    SNAP_FILE: ("acs_S2201_district_2024.json", district_sources.derive_snap),
    RENT_FILE: ("national_and_district_rents_2023.csv", district_sources.derive_rents),
}


@pytest.fixture(scope="module")
def all_districts(pe_system):
    skipped = []
    return district_table_targets(2024, pe_system, skipped), skipped


@pytest.fixture(scope="module")
def reconciliation(pe_system, all_districts):
    return reconcile_district_totals(all_districts[0], state_totals(2024, pe_system))


@pytest.mark.parametrize("name", sorted(DERIVED))
def test_carried_district_tables_are_the_recorded_extracts(name):
    """Hash as recorded; re-derived from the original (when ../shared is here) byte for
    byte, and the original has the recorded hash too."""
    entry = carried_sources()[name]
    carried = (DATA_DIR / name).read_bytes()
    assert hashlib.sha256(carried).hexdigest() == entry["sha256"]
    assert entry["original_sha256"] != entry["sha256"]
    original_name, derive = DERIVED[name]
    original = SHARED / original_name
    if not original.is_file():
        pytest.skip(f"{original} not present (only the carried copy is needed to build)")
    data = original.read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["original_sha256"]
    assert derive(data) == carried


def test_one_districts_targets(pe_system):
    targets = {t.name: t for t in district_targets("ca-12", 2024, pe_system)}
    assert len(targets) == 38  # 36 age x sex bands, households, SNAP households
    assert {t.geography for t in targets.values()} == {"CA-12"}
    assert {t.geography_level for t in targets.values()} == {"district"}
    check_targets(list(targets.values()), pe_system)
    frame = pd.read_csv(DATA_DIR / AGE_SEX_FILE).set_index("GEO_ID")
    people = [t for t in targets.values() if t.group.startswith("census/population_by_age")]
    assert sum(t.value for t in people) == frame.loc["5001900US0612", "S0101_C01_001E"]
    women_85 = targets["census/population_by_age_sex/age_85_plus/female/district/CA-12"]
    assert women_85.source["column"] == "S0101_C05_019E"
    assert [f.describe() for f in women_85.filters] == ["age in [85, inf)", "is_female in [1, 2)"]
    snap = targets["census/snap_households/count/district/CA-12"]
    assert (snap.variable, snap.entity, snap.scope) == ("snap", "household", "recipient")
    assert snap.source["provider"] == "district_tables" and snap.source["year"] == 2024
    at_large = district_targets("WY-00", 2024, pe_system)
    assert {t.geography for t in at_large} == {"WY-01"}


def test_the_registry_resolves_the_provider_on_request(pe_system):
    target_set, report = resolve_targets_with_report(2024, pe_system, ("district_tables",))
    assert report["by_geography_level"] == {"district": 436 * 38}
    assert report["n_skipped"] == 2  # Puerto Rico in both tables


def test_a_district_outside_the_list_is_refused(pe_system):
    with pytest.raises(UnknownDistrictError, match=r"'CA-53'.*near matches"):
        district_targets("CA-53", 2024, pe_system)


def test_every_district_and_puerto_rico_skipped(all_districts):
    targets, skipped = all_districts
    assert len(targets) == 436 * 38
    assert len({t.geography for t in targets}) == 436
    assert [s.item for s in skipped] == ["row 5001900US7298"] * 2


def test_district_populations_add_up_to_their_states(reconciliation):
    """Measured: the ACS 2024 districts sum within 2.4% of the state's Census Vintage 2023
    estimate brought to 2024 in every state (median 0.41%; worst DC +2.31%, then FL
    +2.25%, TX +1.47%); as published (2024 against 2023) within 3.5% (median 1.10%, DC
    +3.43%)."""
    population = reconciliation[reconciliation["measure"] == "population"]
    assert len(population) == 51
    assert population["relative_residual"].abs().max() < 0.024
    assert population["reported_relative_residual"].abs().max() < 0.035
    summary = residual_summary(reconciliation).set_index("measure")
    assert summary.loc["population", "median_abs"] == pytest.approx(0.0041, abs=5e-4)
    assert summary.loc["population", "worst_state"] == "DC"


def test_district_snap_households_fall_short_of_usda(reconciliation):
    """Measured: ACS S2201 households that received SNAP sum to 54%-104% of the USDA FY2023
    average monthly households (uprated to 2024) in each state: median shortfall 26%,
    worst NV -46%, only WY above (+3.5%). Survey under-reporting, not a data error: a
    district shard cannot match both, so SNAP by district should be used as shares of the
    state's USDA total (see the README)."""
    snap = reconciliation[reconciliation["measure"] == "snap_households"].set_index("state")
    assert len(snap) == 51
    assert snap["relative_residual"].between(-0.47, 0.04).all()
    assert (snap["relative_residual"] < 0).sum() == 50 and snap.loc["WY", "relative_residual"] > 0
    summary = residual_summary(reconciliation).set_index("measure")
    assert summary.loc["snap_households", "median_abs"] == pytest.approx(0.264, abs=0.005)
    assert summary.loc["snap_households", "worst_state"] == "NV"


def test_snap_benchmarked_to_the_state_keeps_the_district_split(pe_system, all_districts):
    states = state_totals(2024, pe_system)
    scaled = benchmarked_to_state(all_districts[0], states, "snap_households")
    assert len(scaled) == 436
    again = reconcile_district_totals(scaled, states)
    assert again["relative_residual"].abs().max() < 1e-12
    before = {t.name: t.value for t in all_districts[0]}
    ca = [t for t in scaled if t.geography.startswith("CA-")]
    factor = ca[0].source["benchmark_factor"]
    assert factor == pytest.approx(1 / (1 - 0.411653), rel=1e-4)
    assert all(t.value == pytest.approx(before[t.name] * factor) for t in ca)
    assert ca[0].source["benchmarked_to"] == "usda/snap/count/state/CA"


def test_rent_is_a_check_with_its_boundary_caveat():
    rent = district_rent("NY-10")
    assert rent["median_2br_rent"] == 2085.0 and rent["national_median_2br_rent"] == 1338.0
    assert rent["boundaries_changed"]  # New York redrew its districts for the 119th
    wyoming = district_rent("WY-00")
    assert wyoming["district"] == "WY-01" and not wyoming["boundaries_changed"]
    assert wyoming["source"]["year"] == 2023
    assert len(pd.read_csv(DATA_DIR / RENT_FILE)) == 436


def test_a_changed_district_table_fails_its_hash(tmp_path, pe_system):
    copy = tmp_path / "data"
    shutil.copytree(DATA_DIR, copy)
    path = copy / SNAP_FILE
    path.write_text(path.read_text().replace("34742", "34743"))
    with pytest.raises(CarriedTableError, match=rf"{SNAP_FILE}: sha256"):
        district_table_targets(2024, pe_system, data_dir=copy)
