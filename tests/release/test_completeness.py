"""bundle_complete judges a run bundle: its checksum list and run info are required."""

from microplex_assets.validation.bundle import bundle_completeness
from tests.release.bundles import make_bundle


def test_a_run_bundle_lists_its_checksums_and_run_info(tmp_path):
    bundle = make_bundle(tmp_path / "national" / "US", "r1")
    missing, found = bundle_completeness(bundle, "policyengine_us_2024.h5")
    assert {"SHA256SUMS", "RUN.json"} <= set(found["files"])
    assert "SHA256SUMS" not in missing and "RUN.json" not in missing
    assert "validation/loss_curves.png" in missing  # the tiny bundle lacks the evidence
