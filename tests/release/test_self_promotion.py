"""A passing build promotes itself; a failing or opted-out one stays a candidate."""

import pandas as pd
from dagster import MultiPartitionKey, build_asset_context

from microplex_assets.release.assets import ReleaseConfig, current_release
from microplex_assets.release.pointer import current_key
from microplex_resources.artifact_store import ArtifactStore
from tests.release.bundles import gate, loss_record, make_bundle

PARTITION = MultiPartitionKey({"product": "national", "geography": "US"})


def release(root, bundle, auto_promote=True):
    context = build_asset_context(partition_key=PARTITION)
    return current_release(
        context,
        ReleaseConfig(auto_promote=auto_promote),
        {"bundle_dir": str(bundle), "run_key": bundle.name},
        pd.DataFrame(),
        ArtifactStore(root=str(root)),
    )


def test_passing_build_promotes_itself_failing_one_does_not(tmp_path):
    cell = tmp_path / "national" / "US"
    good = release(tmp_path, make_bundle(cell, "r1"))
    assert good["promoted"] and current_key(cell) == "r1"
    failing = loss_record(gates=[gate("protected_families_hold", passed=False)])
    bad = release(tmp_path, make_bundle(cell, "r2", record=failing))
    assert not bad["promoted"] and current_key(cell) == "r1"
    assert bad["blockers"][0].startswith("blocking gate 'protected_families_hold'")
    held = release(tmp_path, make_bundle(cell, "r3"), auto_promote=False)
    assert not held["promoted"] and held["blockers"] == [] and current_key(cell) == "r1"
