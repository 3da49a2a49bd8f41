"""The one cross-cell edge the asset graph cannot draw: local shards read national|US.

Every record cell (``national|US`` and each ``local|<state>``) runs the same assets, so an
edge from ``published_dataset[national|US]`` into a shard's ``calibration_scorecard``
would close a cycle at the asset-key level (Dagster refuses those, whatever the
partition mapping). The shards score their fallback against the *current* national|US
bundle, so that bundle is modelled as its own external asset, ``national_us_release``:
``current_release`` (and ``make promote`` / ``make rollback``) report a materialization
of it whenever national|US's current bundle changes, and ``calibration_scorecard``
depends on it. The UI shows the edge; ``make backfill`` refuses to start shards while it
has never been materialized.
"""

from __future__ import annotations

from dagster import AssetKey, AssetMaterialization, AssetSpec, MetadataValue

NATIONAL_US_RELEASE = AssetKey("national_us_release")

national_us_release = AssetSpec(
    NATIONAL_US_RELEASE,
    group_name="publication",
    description="The current (promoted) national|US bundle that every local|<state> shard "
    "scores its national fallback against. Reported by current_release, make promote and "
    "make rollback for national|US; not computed by a step of its own.",
    metadata={"stage": 8, "stage_group": "publication"},
)


def national_release_event(
    current: str | None, bundle_dir: str, reason: str
) -> AssetMaterialization:
    """The event that says national|US's current bundle is now ``current``."""
    return AssetMaterialization(
        asset_key=NATIONAL_US_RELEASE,
        description=reason,
        metadata={"run_key": str(current), "bundle_dir": MetadataValue.path(bundle_dir)},
    )
