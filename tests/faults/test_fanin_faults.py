"""The local|US fan-in refuses a shard of another target set or year, and a shard H5 that
is not the one its manifest recorded; each case runs the real ``local_rich_fanin`` asset
on 51 tiny published shards and shows the earlier local|US bundle and its ``current``
pointer unchanged."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from dagster import MultiPartitionKey, build_asset_context

from microplex_assets.files import dataset_filename, file_sha256
from microplex_assets.geography.states import STATE_FIPS
from microplex_assets.publication.derived import load_shards
from microplex_assets.publication.derived_assets import local_rich_fanin
from microplex_assets.publication.shard_checks import ShardMismatchError
from microplex_assets.source_plan.reuse import StaleUpstreamError
from microplex_resources.artifact_store import ArtifactStore
from microplex_resources.build_settings import BuildSettings
from microplex_resources.policyengine_runtime import PolicyEngineRuntime
from tests.calibration.problems import synthetic_matrix
from tests.faults.cells import YEAR, publish_earlier, publish_shard, snapshot, temporaries

TARGETS = synthetic_matrix(households=10)[0].targets
HASH = TARGETS.content_hash
OTHER_HASH = "0" * 64


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """51 shards of this build published, and an earlier local|US bundle current."""
    for state in STATE_FIPS:
        publish_shard(tmp_path, state, HASH)
    publish_earlier(tmp_path / "local" / "US")
    return tmp_path


def shard_h5(root: Path, state: str) -> Path:
    return (root / "local" / state / "current").resolve() / dataset_filename(YEAR)


def fan_in(root: Path) -> None:
    """``local_rich_fanin`` for local|US, invoked as Dagster would with this store."""
    with build_asset_context(
        partition_key=MultiPartitionKey({"product": "local", "geography": "US"}),
    ) as context:
        list(
            local_rich_fanin(
                context,
                build_settings=BuildSettings(),
                calibration_targets=TARGETS,
                artifact_store=ArtifactStore(root=str(root)),
                policyengine=PolicyEngineRuntime(),
            )
        )


def refused(root: Path, match: str, record_property: Any) -> str:
    """Run the fan-in, expect ShardMismatchError matching ``match``, and check local|US."""
    cell = root / "local" / "US"
    before = snapshot(cell)
    with pytest.raises(ShardMismatchError, match=match) as caught:
        fan_in(root)
    assert snapshot(cell) == before  # no new bundle, same current, same bytes
    assert os.readlink(cell / "current") == "runs/20240101T000000Z-earlier0"
    assert temporaries(root) == []
    record_property("message", str(caught.value))
    return str(caught.value)


def test_shards_of_this_build_pass_the_checks(root: Path) -> None:
    shards = load_shards(lambda s: root / "local" / s / "current", YEAR, target_set_hash=HASH)
    assert len(shards) == 51


def test_a_shard_of_another_target_set_is_refused(root: Path, record_property: Any) -> None:
    publish_shard(root, "TX", OTHER_HASH, key="r2")
    message = refused(root, "refuses 1 of 51 shards \\(TX\\)", record_property)
    assert f"local|TX ({root / 'local' / 'TX' / 'runs' / 'r2'})" in message
    assert f"target-set hash {OTHER_HASH}, this fan-in's calibration_targets hash is {HASH}" in (
        message
    )


def test_a_shard_of_another_year_is_refused(root: Path, record_property: Any) -> None:
    publish_shard(root, "WY", HASH, year=2023, key="r2")
    message = refused(
        root, "local\\|WY .*built for year 2023, this fan-in is for year 2024", record_property
    )
    assert "(WY)" in message


@pytest.mark.parametrize("damage", ["corrupted", "truncated"])
def test_a_damaged_shard_h5_is_refused_with_both_hashes(
    root: Path, damage: str, record_property: Any
) -> None:
    path = shard_h5(root, "CA")
    data = bytearray(path.read_bytes())
    if damage == "corrupted":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[: len(data) // 3]
    expected, actual = file_sha256(path), hashlib.sha256(bytes(data)).hexdigest()
    os.chmod(path, 0o644)  # the bundle is read-only: the damage comes from outside
    path.write_bytes(bytes(data))
    message = refused(root, "refuses 1 of 51 shards \\(CA\\)", record_property)
    assert f"local|CA: {path} has SHA256 {actual} ({len(data)} bytes)" in message
    assert f"manifest.json records {expected}" in message
    assert "corrupted or truncated since publication" in message


def test_every_refused_shard_is_named_at_once(root: Path, record_property: Any) -> None:
    publish_shard(root, "TX", OTHER_HASH, key="r2")
    publish_shard(root, "NY", HASH, year=2023, key="r2")
    message = refused(root, "refuses 2 of 51 shards \\(NY, TX\\)", record_property)
    assert message.count("\n  - ") == 2


def test_a_stored_registry_of_another_year_is_blamed_not_the_shards(
    root: Path, record_property: Any
) -> None:
    cell = root / "local" / "US"
    before = snapshot(cell)
    with (
        build_asset_context(
            partition_key=MultiPartitionKey({"product": "local", "geography": "US"}),
        ) as context,
        pytest.raises(StaleUpstreamError) as caught,
    ):
        list(
            local_rich_fanin(
                context,
                build_settings=BuildSettings(year=2025),
                calibration_targets=TARGETS,
                artifact_store=ArtifactStore(root=str(root)),
                policyengine=PolicyEngineRuntime(),
            )
        )
    record_property("message", str(caught.value))
    assert "calibration_targets: stored copy was built with year=2024" in str(caught.value)
    assert "year=2025" in str(caught.value)
    assert snapshot(cell) == before and temporaries(root) == []
