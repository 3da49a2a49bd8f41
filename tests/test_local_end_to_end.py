"""Two local shards on small real CPS data, their national fallbacks, and the fan-in.

The shards are built beside the session's small national|US build, so each is scored
against its fallback (national|US weights on the state's records) exactly as in a backfill.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from dagster import DagsterInstance

from microplex_assets.calibration.published_scores import load_published_bundle
from microplex_assets.geography.states import STATE_FIPS
from microplex_assets.publication.derived import (
    MissingShardsError,
    fan_in_estimates,
    load_shards,
)
from microplex_assets.runner import build_cell

pytestmark = pytest.mark.slow
STATES = ("DE", "VT")
# The CPS's own self-employment, as the national fixture (conftest) builds it.
SETTINGS = {"synthetic_donor_records": 5_000, "donor_imputes_self_employment": False}


@pytest.fixture(scope="module")
def local_builds(national_build):
    _, artifacts = national_build
    summaries = {}
    with DagsterInstance.ephemeral() as instance:
        for product, geography in [*(("local", s) for s in STATES), ("national", "DE"),
                                   ("local", "US")]:  # fmt: skip
            summaries[f"{product}|{geography}"] = build_cell(
                product, geography, households=150, instance=instance,
                artifacts_root=str(artifacts), settings=SETTINGS,
            )  # fmt: skip
    return summaries, artifacts


@pytest.mark.parametrize("state", STATES)
def test_shard_publishes_a_state_calibrated_bundle(local_builds, state):
    summaries, artifacts = local_builds
    summary = summaries[f"local|{state}"]
    assert summary.success, summary.failures
    bundle = artifacts / "local" / state  # its stable links into the current run bundle
    assert Path(summary.bundle_dir).parent == bundle / "runs"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["config"]["state_calibrated"] is True
    with h5py.File(bundle / "policyengine_us_2024.h5") as h5:
        assert set(h5["state_fips"]["2024"][:].tolist()) == {STATE_FIPS[state]}
    # Every record is the state's own or borrowed into it; the seed reports the borrowing.
    assert (bundle / "validation" / "national_contributions.npz").exists()
    gates = summary.gates.set_index("check")
    assert gates.loc["beats_national_fallback", "severity"] == "ERROR"
    assert gates.loc["beats_national_fallback", "passed"]


@pytest.mark.parametrize("state", STATES)
def test_shard_beats_its_fallback_on_held_in_state_targets(local_builds, state):
    summaries, artifacts = local_builds
    record = json.loads((artifacts / "local" / state / "loss_record.json").read_text())
    losses = record["losses"]
    assert losses["candidate"]["train"] < losses["national_fallback"]["train"]
    assert record["held_out_groups"] == ["irs_soi/returns_by_state"]
    kept = record["target_counts"]["kept"]
    assert kept >= 40  # population, age bands, AGI and returns bands, SNAP, EITC, Medicaid


def test_fallback_cell_is_national_restricted_and_labelled(local_builds, national_build):
    summaries, artifacts = local_builds
    summary = summaries["national|DE"]
    assert summary.success, summary.failures
    bundle = artifacts / "national" / "DE"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert "not state-calibrated" in manifest["label"]
    assert manifest["derived_from"] == ["national|US"]
    national = load_published_bundle(artifacts / "national" / "US", 2024, "national|US")
    with h5py.File(bundle / "policyengine_us_2024.h5") as h5:
        ids = h5["household_id"]["2024"][:]
        weights = h5["household_weight"]["2024"][:]
        assert set(h5["state_fips"]["2024"][:].tolist()) == {STATE_FIPS["DE"]}
    # The very national weights, on the state's national households.
    np.testing.assert_allclose(weights, national.weights.loc[ids].to_numpy(), rtol=1e-6)
    scores = json.loads((bundle / "scores.json").read_text())["scores"]
    assert {row["method"] for row in scores} == {"national_fallback"}


def test_fan_in_with_missing_shards_names_them(local_builds):
    summaries, _ = local_builds
    summary = summaries["local|US"]
    assert not summary.success
    message = " ".join(summary.failures)
    assert "MissingShardsError" in message
    missing = set(STATE_FIPS) - set(STATES)
    assert f"{len(missing)} missing" in message
    assert "WY" in message and ", DE," not in message


def test_fan_in_sums_the_shards(local_builds):
    _, artifacts = local_builds
    shards = load_shards(lambda s: artifacts / "local" / s, 2024, STATES)
    with pytest.raises(MissingShardsError, match="1 missing: WY"):
        load_shards(lambda s: artifacts / "local" / s, 2024, (*STATES, "WY"))
    names = pd.Index(
        [
            "census/population/count/state/DE",
            "census/population/count/state/VT",
            *shards["DE"].matrix("national_contributions").targets["name"][:5],
        ]
    )
    total = fan_in_estimates(shards, names)
    by_shard = {s: b.matrix().estimates_by_name(b.weights, names) for s, b in shards.items()}
    contributions = sum(
        b.matrix("national_contributions").estimates_by_name(b.weights, names)
        for b in shards.values()
    )
    np.testing.assert_allclose(total, by_shard["DE"] + by_shard["VT"] + contributions)
    assert total[names[0]] == pytest.approx(by_shard["DE"][names[0]])
    assert total[names[0]] > 0
