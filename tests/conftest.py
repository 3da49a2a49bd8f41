"""Shared fixtures: one PolicyEngine system per test session (its import costs ~25 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from microplex_assets.candidate.backends import run_backend
from microplex_assets.entities.build import build_entity_bundle
from microplex_assets.publication.h5_export import write_policyengine_h5
from microplex_resources.policyengine_runtime import policyengine_system
from tests.frames import tiny_scaffold


@pytest.fixture(scope="session")
def pe_system():
    return policyengine_system()


@pytest.fixture()
def bundle():
    """An entity bundle of 40 small households built by the real stage-6 code."""
    return build_entity_bundle(run_backend("seed_passthrough", tiny_scaffold(households=40)))


@pytest.fixture()
def good_h5(tmp_path: Path, bundle, pe_system) -> Path:
    """That bundle written as a PolicyEngine H5."""
    path = tmp_path / "policyengine_us_2024.h5"
    write_policyengine_h5(bundle, path, pe_system)
    return path


@pytest.fixture(scope="session")
def national_build(tmp_path_factory, pe_system):
    """national|US on 300 real CPS households (+ the spine), built once per session: the
    end-to-end tests read it, and the local tests score their shards against it."""
    from dagster import DagsterInstance

    from microplex_assets.constants import ECPS_L0_LAMBDA
    from microplex_assets.runner import build_cell

    artifacts = tmp_path_factory.mktemp("artifacts")
    with DagsterInstance.ephemeral() as instance:
        summary = build_cell(
            "national",
            "US",
            households=300,
            instance=instance,
            artifacts_root=str(artifacts),
            # The donor ablation is opt-in (one more simulation): on here, so its comparison
            # is tested; the benchmark suite runs by default on national|US. On 300
            # households two calibrations' reform estimates differ by sampling noise far
            # beyond 5%/$5bn, so the benchmark gate's allowance is opened here; its rule is
            # tested in tests/validation (gates, and a distorted weight vector failing it).
            #
            # The same holds for the calibration gates: 300 households support too few
            # targets for healthy weights to match the eCPS method's family losses (every
            # calibration gate failed there with the national defaults), and EITC and
            # Medicaid cells drop for lack of support. So the fixture runs the pre-issue-13
            # solver (gates, unbounded), judges held-out loss on validation (no test split)
            # and opens weight health and the drop share; each rule is tested on its own
            # (tests/calibration/test_split.py) and the 40k defaults are measured (README).
            settings={
                "synthetic_donor_records": 5_000,
                "donor_ablation": True,
                "microsim_absolute_tolerance_bn": 1e6,
                # the torch solver (the national default is chi-square calibration since
                # the sixteenth session, which has no gates)
                "calibration_method": "adam",
                "l0_lambda": ECPS_L0_LAMBDA,
                "max_weight_ratio": None,
                "kl_penalty": 0.0,
                "balance_families": False,
                "protected_boost": 1.0,
                "scale_to_household_count": False,
                "ess_penalty": 0.0,
                "family_limit_rounds": 0,
                # The CPS's own self-employment, as the fixture's thresholds were set on
                # (the national default draws it from the donor since the ninth session).
                "donor_imputes_self_employment": False,
                # The sixth session's raked start and population boost are national
                # defaults measured at 40k (README); pre-issue-13 here like the rest.
                "rake_design_to_age": False,
                "population_boost": 1.0,
                "test_groups": [],
                "weights_healthy_min_ess_share": 0.0,
                "weights_healthy_max_ratio": 1e12,
                "protected_family_max_dropped_share": 1.0,
                # With unemployment compensation uprated by the SOI totals, the candidate
                # and the eCPS method reach the same all-target loss here within 0.2%
                # (0.3905 vs 0.3898): a coin flip, not a verdict. 10% allowance.
                "target_loss_tolerance": 0.1,
            },
        )
    return summary, artifacts
