"""Faults between stages: stored frames of another build, a scaffold the seed cannot read,
nothing stored to reuse, a gate with nothing to judge, a missing fallback that must block
publication. Dagster cases run tiny stand-in assets in an ephemeral instance."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetCheckKey,
    AssetKey,
    DagsterInstance,
    Definitions,
    MultiPartitionKey,
    asset,
    materialize,
)

from microplex_assets.calibration.scorecard import fallback_gate
from microplex_assets.calibration.scorecard_checks import gate_verdict
from microplex_assets.gate_checks import blocking_gate_check
from microplex_assets.partitions import Cell, product_geography_partitions
from microplex_assets.run_profile.profile import resolve_run_profile
from microplex_assets.runner import gate_table, require_stored_unpartitioned
from microplex_assets.source_plan.plan import plan_sources
from microplex_assets.source_plan.reuse import (
    StaleUpstreamError,
    check_source_frames,
    check_targets,
)
from microplex_assets.sources.acs_pums import load_acs_pums
from microplex_assets.sources.forbes import real_top_wealth_list
from microplex_resources.build_settings import BuildSettings
from tests.faults.source_cases import CASES
from tests.faults.test_calibration_faults import shard_card
from tests.frames import tiny_scaffold

SETTINGS = BuildSettings().model_dump()


def profile(**settings: Any) -> dict[str, Any]:
    return resolve_run_profile({**SETTINGS, **settings}, Cell("local", "CA"))


def frames(year: int = 2024, seed: int = 1456) -> dict[str, Any]:
    cps = tiny_scaffold(households=5)
    cps.source, cps.year, cps.provenance = "cps_taxcalc", year, {"seed": seed, "kind": "real"}
    donor = tiny_scaffold(households=5)
    donor.source, donor.year, donor.provenance = "synthetic_puf", year, {"seed": seed}
    spine = real_top_wealth_list(2024, seed=seed)  # its states are drawn from the build seed
    spine.year = year
    return {"cps": cps, "tax_donor": donor, "top_wealth": spine, "surveys": {}}


def test_stored_frames_of_this_build_pass() -> None:
    check_source_frames(profile(), **frames())


@pytest.mark.parametrize(
    ("stored", "settings", "expected"),
    [
        ({"year": 2023}, {}, "cps_source_frame: stored copy was built with year=2023 .* year=2024"),
        ({"seed": 7}, {}, "cps_source_frame: stored copy was built with seed=7 .* seed=1456"),
        ({}, {"seed": 99}, "cps_source_frame: .*seed=1456 but this run expects seed=99"),
        ({}, {"puf_path": "puf_2015.csv"}, "tax_donor_frame: .*'synthetic_puf'.*'irs_puf'"),
        ({}, {"survey_files": {"scf": ["SCFP2022.csv"]}}, "survey_source_frames: .*\\['scf'\\]"),
    ],
)
def test_stored_frames_of_another_build_are_refused_naming_the_asset(
    stored: dict[str, int], settings: dict[str, Any], expected: str
) -> None:
    with pytest.raises(StaleUpstreamError, match=expected):
        check_source_frames(profile(**settings), **frames(**stored))


def test_stored_registry_of_another_year_is_refused() -> None:
    from tests.calibration.problems import synthetic_matrix

    targets = synthetic_matrix(households=10)[0].targets  # resolved to 2024
    check_targets(targets, profile())
    with pytest.raises(StaleUpstreamError, match="calibration_targets: .*year=2024 .* year=2025"):
        check_targets(targets, profile(year=2025))


def test_reuse_with_nothing_stored_is_refused_naming_the_assets() -> None:
    @asset
    def cps_source_frame() -> int:
        return 1

    @asset(partitions_def=product_geography_partitions)
    def seed_frame(cps_source_frame: int) -> int:
        return cps_source_frame

    graph = Definitions(assets=[cps_source_frame, seed_frame]).resolve_asset_graph()
    with DagsterInstance.ephemeral() as instance:
        with pytest.raises(ValueError, match=r"\['cps_source_frame'\] never materialized"):
            require_stored_unpartitioned(instance, graph)
        materialize([cps_source_frame], instance=instance)
        require_stored_unpartitioned(instance, graph)  # stored now: accepted


def test_a_national_acs_file_cannot_outrank_the_cps_as_scaffold(tmp_path: Path) -> None:
    acs_case = next(c for c in CASES if c.name == "acs_pums")
    paths = acs_case.write(tmp_path)
    acs = load_acs_pums(paths["person"], paths["housing"], year=2022)
    acs.provenance["kind"] = "real"
    cps = tiny_scaffold(households=2)  # fewer households than the ACS file
    cps.source, cps.provenance = "cps_taxcalc", {"kind": "real"}
    assert len(acs.tables["household"]) > len(cps.tables["household"])
    plan = plan_sources({"acs_pums": acs, "cps_taxcalc": cps})
    assert plan.scaffold == "cps_taxcalc" and "acs_pums" in plan.donors
    assert plan.rejected["acs_pums"] == ["tax_unit table", "person.tax_unit_id", "person.role"]
    with pytest.raises(ValueError, match=r"acs_pums: lacks tax_unit table, person.tax_unit_id"):
        plan_sources({"acs_pums": acs})


# Dagster: the gate checks as the build declares them, on a stand-in scorecard asset.


def bundle_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def run_cell(card, tmp_path: Path) -> tuple[Any, DagsterInstance, Path, str]:
    """Materialize scorecard -> beats_national_fallback -> publish for local|CA; the publish
    asset rewrites a bundle folder that holds an earlier release."""
    bundle = tmp_path / "bundle"
    bundle.mkdir(exist_ok=True)
    (bundle / "policyengine_us_2024.h5").write_bytes(b"earlier release")
    before = bundle_digest(bundle)

    @asset(name="calibration_scorecard", partitions_def=product_geography_partitions)
    def scorecard() -> dict[str, Any]:
        return {"card": card}

    @asset(partitions_def=product_geography_partitions, deps=[scorecard])
    def published() -> None:
        (bundle / "policyengine_us_2024.h5").write_bytes(b"new release")

    check = blocking_gate_check(
        scorecard,
        "beats_national_fallback",
        "test",
        lambda v: gate_verdict(fallback_gate(v["card"])),
    )
    instance = DagsterInstance.ephemeral()
    result = materialize(
        [scorecard, published, check],
        instance=instance,
        partition_key=MultiPartitionKey({"product": "local", "geography": "CA"}),
        raise_on_error=False,
    )
    return result, instance, bundle, before


def test_a_gate_with_nothing_to_judge_is_skipped_not_passed(tmp_path: Path) -> None:
    result, instance, bundle, _ = run_cell(shard_card(), tmp_path)  # not a shard's card
    assert result.success
    table = gate_table(instance, result.run_id).set_index("check")
    row = table.loc["beats_national_fallback"]
    assert row["passed"] is None and row["severity"] == "not applicable", row.to_dict()
    key = AssetCheckKey(AssetKey("calibration_scorecard"), "beats_national_fallback")
    record = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)[0]
    assert record.status.value == "PLANNED"  # no result: the UI resolves it to "Skipped"
    assert (bundle / "policyengine_us_2024.h5").read_bytes() == b"new release"


def test_a_missing_fallback_blocks_publication_and_leaves_the_bundle(tmp_path: Path) -> None:
    card = shard_card()
    card.fallback_required = True
    card.fallback_error = "FileNotFoundError: national|US has no published bundle for 2024"
    result, instance, bundle, before = run_cell(card, tmp_path)
    assert not result.success
    row = gate_table(instance, result.run_id).set_index("check").loc["beats_national_fallback"]
    assert row["passed"] is not None and not row["passed"] and row["severity"] == "ERROR"
    assert "national|US has no published bundle" in row["summary"]
    assert bundle_digest(bundle) == before  # the earlier release is untouched
