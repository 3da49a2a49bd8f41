"""Materialize the whole graph for national|US on a few hundred real CPS households."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
from dagster import MultiPartitionKey, materialize

from microplex_assets.publication.capital_gains_lots import load_capital_gains_lots
from microplex_assets.release.bundle import verify_bundle
from microplex_assets.run_profile.assets import run_profile
from microplex_assets.source_plan.assets import source_plan
from microplex_assets.sources.assets import (
    cps_source_frame,
    survey_source_frames,
    tax_donor_frame,
    top_wealth_frame,
)
from microplex_assets.validation.loss_record import validate_loss_record
from microplex_resources.artifact_store import ArtifactStore
from microplex_resources.build_settings import BuildSettings
from microplex_resources.policyengine_runtime import PolicyEngineRuntime

SOURCE_ASSETS = [cps_source_frame, survey_source_frames, tax_donor_frame, top_wealth_frame]

pytestmark = pytest.mark.slow
SPINE = 400  # the embedded top-wealth list: one fixed household per Forbes 400 entry


def test_build_succeeds_and_every_gate_passes(national_build):
    summary, _ = national_build
    assert summary.success, summary.failures
    gates = summary.gates.set_index("check")
    assert {
        "entity_links_intact", "weights_valid", "weights_healthy", "schema_compatible",
        "protected_targets_kept",
        "target_loss_below_baseline", "protected_families_hold",
        "held_out_loss_below_baseline", "high_salience_aggregates", "bundle_complete",
        "microsim_benchmarks_hold", "runtime_within_budget", "artifact_size_within_budget",
    } <= set(gates.index)  # fmt: skip
    blocking = gates[gates["severity"] == "ERROR"]
    assert blocking["passed"].all(), blocking[~blocking["passed"]]["summary"].tolist()


def test_data_flow_lists_nine_completed_stages(national_build):
    summary, _ = national_build
    assert summary.stage_status["stage"].tolist() == list(range(1, 10))
    assert (summary.stage_status["status"] == "completed").all()


def test_bundle_is_published_with_manifest_and_profile(national_build):
    summary, artifacts = national_build
    bundle = Path(summary.bundle_dir)
    assert bundle.parent == artifacts / "national" / "US" / "runs"  # an immutable run bundle
    assert verify_bundle(bundle) == []
    # A passing build promotes itself: the stable path now reads this run's H5.
    stable = artifacts / "national" / "US" / "policyengine_us_2024.h5"
    assert stable.resolve() == (bundle / "policyengine_us_2024.h5").resolve()
    assert {p.name for p in bundle.iterdir()} >= {
        "policyengine_us_2024.h5", "manifest.json", "run_profile.json", "loss_record.json",
        "validation",
    }  # fmt: skip
    assert {p.name for p in (bundle / "validation").iterdir()} >= {
        "aggregates.json", "loss_curves.png", "target_wins_losses.md", "target_ledger.csv",
        "microsim_benchmarks.json", "microsim_benchmarks.md", "microsim_deciles.png",
    }  # fmt: skip
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["record_counts"]["household"] == 300 + SPINE
    assert not list(artifacts.glob("national/.*")), "temporary folders left behind"
    with h5py.File(bundle / "policyengine_us_2024.h5") as h5:
        assert "2024" in h5["household_weight"]
        assert not any(name.endswith("_reported") for name in h5)


def test_loss_record_validates_and_compares_with_the_ecps_method(national_build):
    summary, _ = national_build
    bundle = Path(summary.bundle_dir)
    record = json.loads((bundle / "loss_record.json").read_text())
    validate_loss_record(record)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert record["target_set_hash"] == manifest["targets"]["target_set_hash"]
    assert record["run_id"] == summary.run_id
    counts = record["target_counts"]
    assert counts["loaded"] >= counts["supported"] >= counts["kept"] > counts["held_out"] > 0
    for method in ("candidate", "ecps_method", "design"):
        assert record["losses"][method]["train"] is not None
        assert record["losses"][method]["held_out"] is not None
    # The candidate fits its training targets far better than the design weights.
    assert record["losses"]["candidate"]["train"] < record["losses"]["design"]["train"] / 2
    assert set(summary.losses["method"]) >= {"candidate", "ecps_method"}


def test_every_state_is_in_the_sample(national_build):
    summary, _ = national_build
    bundle = Path(summary.bundle_dir)
    with h5py.File(bundle / "policyengine_us_2024.h5") as h5:
        states = set(h5["state_fips"]["2024"][:].tolist())
    assert len(states) == 51


def test_aggregates_are_reported(national_build):
    summary, _ = national_build
    table = summary.aggregates.set_index("quantity")
    # The population PolicyEngine reports is the calibrated household weights summed over
    # persons, read here straight from the published H5. (300 households cannot fit ~2,500
    # targets, so no bound on the level itself is asserted here; `make build` reports it.)
    with h5py.File(Path(summary.bundle_dir) / "policyengine_us_2024.h5") as h5:
        ids, household_weights = h5["household_id"]["2024"][:], h5["household_weight"]["2024"][:]
        weights = dict(zip(ids, household_weights, strict=True))
        persons = h5["person_household_id"]["2024"][:]
    expected = sum(float(weights[h]) for h in persons)
    assert table.loc["population", "weighted_total"] == pytest.approx(expected, rel=1e-5)
    assert table.loc["households", "weighted_total"] == pytest.approx(
        sum(float(w) for w in weights.values()), rel=1e-5
    )
    assert table.loc["employment_income", "weighted_total"] > 1e12


def test_published_h5_loads_in_a_separate_process(national_build):
    summary, _ = national_build
    h5 = Path(summary.bundle_dir) / "policyengine_us_2024.h5"
    code = (
        "import sys; from policyengine_us import Microsimulation; "
        "sim = Microsimulation(dataset=sys.argv[1]); "
        "print(len(sim.calculate('household_id', 2024)))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(h5)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == str(300 + SPINE)


def test_derived_cell_skips_the_record_chain(tmp_path):
    """national|TX is derived from national|US: the record chain yields nothing for it."""
    result = materialize(
        [run_profile, source_plan, *SOURCE_ASSETS],
        partition_key=MultiPartitionKey({"product": "national", "geography": "TX"}),
        resources={
            "build_settings": BuildSettings(synthetic_donor_records=1_000),
            "artifact_store": ArtifactStore(root=str(tmp_path)),
            "policyengine": PolicyEngineRuntime(),
        },
        raise_on_error=False,
    )
    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "run_profile" in materialized
    assert "source_plan" not in materialized  # so every record-chain asset below it skips
    assert result.output_for_node("run_profile")["derived_from"] == ["national|US"]


def test_donor_and_spine_are_integrated_and_compared(national_build):
    summary, _ = national_build
    bundle = Path(summary.bundle_dir)
    record = json.loads((bundle / "loss_record.json").read_text())
    comparison = record["donor_integration"]
    before = comparison["before_donor_integration"]
    after = comparison["after_donor_integration"]
    for scores in (before, after):
        assert scores["held_out_loss"] is not None
        assert 0 < scores["top_1pct_agi_share"] < 1
    # The CPS file has no short-term gains: after integration the survey households (not
    # just the spine) carry the donor's realized gains.
    with h5py.File(bundle / "policyengine_us_2024.h5") as h5:
        stcg = h5["short_term_capital_gains"]["2024"][:]
        person_household = h5["person_household_id"]["2024"][:]
    survey_households = person_household <= person_household.max() - SPINE
    assert (stcg[survey_households] != 0).sum() > 0
    assert comparison["common_targets"]["targets"] > 0
    assert record["top_tail"]["long_term_capital_gains_bn"] > 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    kinds = {
        source.get("source", source.get("file")): source["kind"] for source in manifest["sources"]
    }
    assert "synthetic" in kinds.values()  # the embedded donor and list say what they are
    spine = json.loads((bundle / "run_profile.json").read_text())["spine"]
    assert spine["enabled"]


def test_capital_gains_lots_load_on_their_own_and_add_up(national_build):
    summary, _ = national_build
    bundle = Path(summary.bundle_dir)
    lots = load_capital_gains_lots(bundle / "capital_gains_lots_2024.parquet")
    assert len(lots) > 0 and set(lots["term"]) <= {"long", "short"}
    with h5py.File(bundle / "policyengine_us_2024.h5") as h5:
        ltcg = h5["long_term_capital_gains_before_response"]["2024"][:].sum()
    long_lots = lots.loc[lots["term"] == "long", "gain"].sum()
    assert long_lots == pytest.approx(ltcg, rel=1e-6)


def test_benchmark_suite_report_is_published_with_its_manifest_hash(national_build):
    from microplex_assets.validation.microsim.manifest import load_manifest

    summary, _ = national_build
    bundle = Path(summary.bundle_dir)
    manifest = load_manifest()
    report = json.loads((bundle / "validation" / "microsim_benchmarks.json").read_text())
    assert report["manifest"]["content_hash"] == manifest.content_hash
    assert set(report["impacts"]) == {r.id for r in manifest.reforms}
    for by_dataset in report["impacts"].values():
        assert set(by_dataset) >= {"candidate", "ecps_method"}
        assert len(by_dataset["candidate"]["deciles"]) == 10
    assert report["same_records_as_baseline"] is True
    levels = report["baseline_levels"]["candidate"]
    assert 0 < levels["spm_poverty_rate"] < 1 and 0 < levels["gini_household_net_income"] < 1
    record = json.loads((bundle / "loss_record.json").read_text())
    summary_record = record["microsim_benchmarks"]
    assert summary_record["manifest_hash"] == manifest.content_hash
    assert {g["gate"] for g in summary_record["gates"]} == {
        "microsim_benchmarks_hold", "runtime_within_budget", "artifact_size_within_budget",
    }  # fmt: skip
    # The aggregates come from the suite's baseline simulation of the same bytes.
    assert summary.aggregates is not None
