"""The Microplex-US code location: nine stage groups, their checks and resources."""

from __future__ import annotations

from dagster import (
    Definitions,
    load_asset_checks_from_modules,
    load_assets_from_modules,
    with_source_code_references,
)

from microplex_assets.calibration import ablation_assets, scorecard_checks, weight_checks
from microplex_assets.calibration import assets as calibration_assets
from microplex_assets.candidate import assets as candidate_assets
from microplex_assets.entities import assets as entities_assets
from microplex_assets.executor import executor_from_env
from microplex_assets.lineage import national_us_release
from microplex_assets.publication import assets as publication_assets
from microplex_assets.publication import derived_assets
from microplex_assets.release import assets as release_assets
from microplex_assets.release.jobs import RELEASE_JOBS
from microplex_assets.run_profile import assets as run_profile_assets
from microplex_assets.schedules import JOBS, SCHEDULES, SENSORS
from microplex_assets.seed import assets as seed_assets
from microplex_assets.source_plan import assets as source_plan_assets
from microplex_assets.sources import assets as sources_assets
from microplex_assets.validation import assets as validation_assets
from microplex_assets.validation import benchmark_assets, schema_check
from microplex_resources.artifact_store import ArtifactStore
from microplex_resources.atomic_io_manager import AtomicFilesystemIOManager
from microplex_resources.build_settings import BuildSettings
from microplex_resources.policyengine_runtime import PolicyEngineRuntime

STAGE_MODULES = (
    run_profile_assets,
    sources_assets,
    source_plan_assets,
    seed_assets,
    candidate_assets,
    entities_assets,
    calibration_assets,
    ablation_assets,
    scorecard_checks,
    weight_checks,
    publication_assets,
    derived_assets,
    validation_assets,
    schema_check,
    benchmark_assets,
    release_assets,
)

defs = Definitions(
    assets=[
        *with_source_code_references(load_assets_from_modules(STAGE_MODULES)),
        national_us_release,
    ],
    asset_checks=load_asset_checks_from_modules(STAGE_MODULES),
    jobs=[*JOBS, *RELEASE_JOBS],
    schedules=list(SCHEDULES),
    sensors=list(SENSORS),
    resources={
        "build_settings": BuildSettings(),
        "policyengine": PolicyEngineRuntime(),
        "artifact_store": ArtifactStore(),
        # Concurrent runs share the unpartitioned assets' pickles: write them atomically.
        "io_manager": AtomicFilesystemIOManager(),
    },
    # In-process unless MICROPLEX_EXECUTOR=dask (microplex_assets.executor): one process
    # per run builds the PolicyEngine system (25 s to import) once for every stage.
    executor=executor_from_env(),
)
