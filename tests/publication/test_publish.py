import json
from pathlib import Path

from microplex_assets.files import file_sha256, write_json_atomic
from microplex_assets.publication import manifest as publication_manifest
from microplex_assets.publication.h5_export import write_policyengine_h5
from microplex_assets.publication.manifest import (
    ECPS_COLUMNS_PATH,
    build_manifest,
    ecps_columns,
    package_versions,
)
from tests.publication.households import tiny_bundle


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_write_json_atomic(tmp_path):
    path = write_json_atomic(tmp_path / "deep" / "m.json", {"b": 1, "a": [1, 2]})
    assert json.loads(path.read_text()) == {"a": [1, 2], "b": 1}
    assert _leftovers(path.parent) == []


def test_manifest_has_hash_counts_and_ecps_coverage(tmp_path, pe_system):
    bundle = tiny_bundle()
    h5_path = tmp_path / "policyengine_us_2024.h5"
    report = write_policyengine_h5(bundle, h5_path, pe_system)
    manifest = build_manifest(
        run_profile={"year": 2024, "profile": "tiny", "calibration_backend": "none"},
        export=report.as_dict(),
        sources=[{"source": "tiny", "kind": "synthetic"}],
        package_versions=package_versions(),
        h5_path=h5_path,
        weights=bundle.household.set_index("household_id")["household_weight"],
        system=pe_system,
        left_out={"is_pregnant": "no source reports it"},
    )
    assert manifest["h5"] == {"sha256": file_sha256(h5_path), "size_bytes": h5_path.stat().st_size}
    assert manifest["record_counts"]["person"] == 9
    assert manifest["weights"]["household_weight_total"] == 4_500.0
    assert manifest["weights"]["nonzero_household_weights"] == 4
    assert manifest["package_versions"]["policyengine-us"] == "2.68.0"
    assert manifest["excluded_columns"]["tax_unit.snap_reported"].startswith("reported")
    coverage = manifest["ecps_coverage"]
    assert coverage["ecps_inputs"] == 235
    assert coverage["provided"] + len(coverage["missing"]) == 235
    assert coverage["provided"] >= 20  # ids, weight, demographics, incomes
    assert "person_id" not in coverage["missing"] and "age" not in coverage["missing"]
    missing = coverage["missing"]
    assert missing["is_pregnant"] == "deliberately left out: no source reports it"
    assert missing["scf_mortgage_debt"].startswith("not a variable in this policyengine-us")
    assert missing["has_marketplace_health_coverage"].startswith("computed by")
    assert missing["rental_income"] == "no source for it yet"
    assert coverage["extra_not_in_ecps"] == ["tax_unit_role_input"]
    rows = {row["variable"]: row for row in coverage["table"]}
    assert len(rows) == 235 and rows["age"]["status"] == "provided"
    assert rows["age"]["entity"] == "person" and rows["age"]["kind"] == "observed"
    assert report.constant == {} and coverage["constant_fills"] == {}
    json.dumps(manifest)  # serialisable as is


def test_ecps_reference_ships_inside_the_package():
    assert ECPS_COLUMNS_PATH.parent == Path(publication_manifest.__file__).parent
    assert len(ecps_columns()["ecps_exported_inputs"]) == 235
