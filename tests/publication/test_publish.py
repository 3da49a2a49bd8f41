import json
import os
from pathlib import Path

import pytest

from microplex_assets.files import file_sha256
from microplex_assets.publication import manifest as publication_manifest
from microplex_assets.publication import publish
from microplex_assets.publication.h5_export import write_policyengine_h5
from microplex_assets.publication.manifest import (
    ECPS_COLUMNS_PATH,
    build_manifest,
    ecps_columns,
    package_versions,
)
from microplex_assets.publication.publish import publish_bundle, write_json_atomic
from tests.publication.households import tiny_bundle


def _files(tmp_path, tag):
    src = tmp_path / f"src_{tag}"
    src.mkdir()
    (src / "data.h5").write_text(f"h5 {tag}")
    (src / "manifest.json").write_text(json.dumps({"tag": tag}))
    return {"data.h5": src / "data.h5", "manifest.json": src / "manifest.json"}


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_publish_replaces_the_bundle_and_leaves_no_temporaries(tmp_path):
    destination = tmp_path / "artifacts" / "national" / "US"
    publish_bundle(_files(tmp_path, "one"), destination)
    (destination / "stale.txt").write_text("from the old bundle")
    paths = publish_bundle(_files(tmp_path, "two"), destination)
    assert paths == {
        "data.h5": destination / "data.h5",
        "manifest.json": destination / "manifest.json",
    }
    assert paths["data.h5"].read_text() == "h5 two"
    assert sorted(p.name for p in destination.iterdir()) == ["data.h5", "manifest.json"]
    assert sorted(p.name for p in destination.parent.iterdir()) == ["US"]
    assert oct(destination.stat().st_mode & 0o777) == "0o755"


def test_nested_entries_are_published(tmp_path):
    files = _files(tmp_path, "one")
    paths = publish_bundle({"validation/aggregates.json": files["manifest.json"]}, tmp_path / "b")
    assert json.loads(paths["validation/aggregates.json"].read_text()) == {"tag": "one"}


def test_failure_while_copying_keeps_the_old_bundle(tmp_path, monkeypatch):
    destination = tmp_path / "bundle"
    publish_bundle(_files(tmp_path, "old"), destination)
    calls = {"n": 0}
    real_copy = publish.shutil.copyfile

    def flaky_copy(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real_copy(src, dst)

    monkeypatch.setattr(publish.shutil, "copyfile", flaky_copy)
    with pytest.raises(OSError, match="disk full"):
        publish_bundle(_files(tmp_path, "new"), destination)
    assert (destination / "data.h5").read_text() == "h5 old"
    assert _leftovers(tmp_path) == []


def test_failure_at_the_swap_restores_the_old_bundle(tmp_path, monkeypatch):
    destination = tmp_path / "bundle"
    publish_bundle(_files(tmp_path, "old"), destination)
    real_replace = os.replace

    def failing_swap(src, dst):
        if str(src).startswith(str(tmp_path / ".bundle.new.")):
            raise OSError("rename failed")
        return real_replace(src, dst)

    monkeypatch.setattr(publish.os, "replace", failing_swap)
    with pytest.raises(OSError, match="rename failed"):
        publish_bundle(_files(tmp_path, "new"), destination)
    assert (destination / "data.h5").read_text() == "h5 old"
    assert _leftovers(tmp_path) == []


def test_missing_source_and_escaping_names_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="cannot publish 'x.h5'"):
        publish_bundle({"x.h5": tmp_path / "nope.h5"}, tmp_path / "bundle")
    files = _files(tmp_path, "one")
    with pytest.raises(ValueError, match="relative path inside the bundle"):
        publish_bundle({"../escape.h5": files["data.h5"]}, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()


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
