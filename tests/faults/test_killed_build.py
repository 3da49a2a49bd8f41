"""The killed-run case on the real build (slow: PolicyEngine simulates the candidate).

national|US on 300 households, its assets materialized up to ``dataset_h5`` (the H5 in
the run's work folder; checks left out) three times on one persistent instance: once
uninterrupted; once failing in ``calibrated_weights`` and once failing in ``dataset_h5``
(a step that raises once, in process: a SIGKILL is in ``test_killed_runs``, on the same
code at a size without PolicyEngine), each re-executed from failure with Dagster's
re-execution. Weights and H5 must be bitwise identical to the uninterrupted run's."""

import hashlib
import pickle
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from dagster import (
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    JobDefinition,
    MultiPartitionKey,
    ReexecutionOptions,
    define_asset_job,
    execute_job,
    reconstructable,
)

from microplex_assets.calibration import assets as calibration_assets
from microplex_assets.constants import ECPS_L0_LAMBDA
from microplex_assets.partitions import product_geography_partitions
from microplex_assets.publication import assets as publication_assets
from microplex_assets.runner import run_config
from tests.faults.reexec_job import instance_at

pytestmark = pytest.mark.slow
PARTITION = MultiPartitionKey({"product": "national", "geography": "US"})
# The end-to-end fixture's settings (tests/conftest.py), so these runs build what it builds.
SETTINGS = {
    "synthetic_donor_records": 5_000,
    "l0_lambda": ECPS_L0_LAMBDA,
    "max_weight_ratio": None,
    "kl_penalty": 0.0,
    "test_groups": [],
    "weights_healthy_min_ess_share": 0.0,
    "weights_healthy_max_ratio": 1e12,
    "protected_family_max_dropped_share": 1.0,
}


def build_job() -> JobDefinition:
    """The build's assets, resources and executor; its checks left out: the blocking
    ``schema_compatible`` simulates the H5 (minutes), and identity is what is tested."""
    from definitions import defs

    job = define_asset_job(
        "faults_build_to_h5",
        selection=AssetSelection.assets("dataset_h5").upstream().without_checks(),
        partitions_def=product_geography_partitions,
    )
    return Definitions(
        assets=list(defs.assets), resources=defs.resources, executor=defs.executor, jobs=[job]
    ).resolve_job_def("faults_build_to_h5")


def execute(instance: DagsterInstance, artifacts: Path, **kwargs: Any) -> Any:
    tags = {"dagster/partition": str(PARTITION), "dagster/partition/product": "national",
            "dagster/partition/geography": "US"}  # fmt: skip
    config = run_config(300, artifacts_root=str(artifacts), settings=SETTINGS)
    if "reexecution_options" not in kwargs:
        kwargs.update(tags=tags)
    return execute_job(reconstructable(build_job), instance, run_config=config, **kwargs)


def stored(instance: DagsterInstance, asset: str) -> Any:
    """The IO manager's pickle of ``asset`` for the partition (one file under its folder)."""
    [path] = [p for p in (Path(instance.storage_directory()) / asset).rglob("*") if p.is_file()]
    with open(path, "rb") as handle:
        return pickle.load(handle)


def outcome(instance: DagsterInstance) -> dict[str, Any]:
    weights = stored(instance, "calibrated_weights").weights
    h5 = Path(stored(instance, "dataset_h5")["path"])
    with h5py.File(h5, "r") as f:
        arrays = {name: f[name]["2024"][:] for name in f}
    return {"weights": weights, "h5": h5, "sha": hashlib.sha256(h5.read_bytes()).hexdigest(),
            "arrays": arrays}  # fmt: skip


def fail_once(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
    real, calls = getattr(module, name), {"n": 0}

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError(f"fault suite: {name} killed once")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)


def test_a_killed_build_reexecutes_to_the_same_weights_and_h5(
    tmp_path: Path, pe_system, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifacts = tmp_path / "artifacts"
    with instance_at(tmp_path / "dagster") as instance:
        assert execute(instance, artifacts).success
        whole = outcome(instance)
        for module, name, step in (
            (calibration_assets, "calibrate_weights", "calibrated_weights"),
            (publication_assets, "write_policyengine_h5", "dataset_h5"),
        ):
            with monkeypatch.context() as patch:
                fail_once(patch, module, name)
                killed = execute(instance, artifacts)
                assert not killed.success
                failed = instance.all_logs(killed.run_id, of_type=DagsterEventType.STEP_FAILURE)
                assert [e.dagster_event.step_key for e in failed] == [step]
                options = ReexecutionOptions.from_failure(killed.run_id, instance)
                resumed = execute(instance, artifacts, reexecution_options=options)
            assert resumed.success
            again = outcome(instance)
            assert again["h5"] != whole["h5"]  # another run's own work folder
            assert again["weights"].index.equals(whole["weights"].index)
            assert again["weights"].to_numpy().tobytes() == whole["weights"].to_numpy().tobytes()
            assert again["arrays"].keys() == whole["arrays"].keys()
            for name, values in whole["arrays"].items():
                assert np.array_equal(again["arrays"][name], values), name
            assert again["sha"] == whole["sha"], f"{step}: same arrays, other H5 bytes"
