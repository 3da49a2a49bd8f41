"""The distributed executor: MICROPLEX_EXECUTOR=dask runs a small job's steps on a Dask
cluster the test starts (loopback only, two worker processes), passing outputs between
machines through the instance's storage; the default stays in-process."""

from __future__ import annotations

import os
import pickle
from concurrent.futures import ThreadPoolExecutor

import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    execute_job,
    in_process_executor,
    reconstructable,
)

from microplex_assets.executor import dask_cluster_config, dask_task_key, executor_from_env
from tests.orchestration.dask_job import napping_job, small_job

NO_COMPUTE_LOGS = {
    "compute_logs": {
        "module": "dagster._core.storage.noop_compute_log_manager",
        "class": "NoOpComputeLogManager",
    }
}


def test_executor_is_chosen_by_configuration():
    assert executor_from_env({}) is in_process_executor
    assert executor_from_env({"MICROPLEX_EXECUTOR": "dask"}).name == "dask"
    assert dask_cluster_config({"MICROPLEX_DASK_SCHEDULER": "tcp://10.0.0.5:8786"}) == {
        "existing": {"address": "tcp://10.0.0.5:8786"}
    }
    assert dask_cluster_config({})["local"]["host"] == "127.0.0.1"
    with pytest.raises(ValueError, match="expected one of"):
        executor_from_env({"MICROPLEX_EXECUTOR": "celery"})


def test_small_job_runs_on_a_local_dask_cluster(tmp_path, monkeypatch):
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:  # fmt: skip
        monkeypatch.setenv("MICROPLEX_EXECUTOR", "dask")
        monkeypatch.setenv("MICROPLEX_DASK_SCHEDULER", cluster.scheduler_address)
        workers = set(cluster.scheduler_info["workers"])
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        with (
            # No compute-log capture: its `tail -F` tailers outlive the test on Dask workers.
            DagsterInstance.local_temp(str(tmp_path), overrides=NO_COMPUTE_LOGS) as instance,
            execute_job(reconstructable(small_job), instance=instance) as result,
        ):
            assert result.success
    # The workers wrote it through the instance's storage (the asset IO manager's file).
    total = pickle.loads((tmp_path / "storage" / "total").read_bytes())
    assert total["value"] == 6
    ran_on = {total["worker"], *(step["worker"] for step in total["inputs"])}
    assert ran_on <= workers and None not in ran_on  # every step on a cluster worker
    assert os.getpid() not in {total["pid"], *(step["pid"] for step in total["inputs"])}


def test_two_runs_sharing_a_scheduler_each_run_their_own_steps(tmp_path, monkeypatch):
    """Concurrent runs of one job (a backfill's shards) on one scheduler: upstream
    dagster-dask keys tasks by job and step only, so Dask ran the step once and the
    second run succeeded with no step at all (dagster-io/dagster#21418)."""
    from distributed import LocalCluster

    assert dask_task_key("__ASSET_JOB", "r1", "nap") != dask_task_key("__ASSET_JOB", "r2", "nap")
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        DagsterInstance.local_temp(str(tmp_path), overrides=NO_COMPUTE_LOGS) as instance,
    ):  # fmt: skip
        monkeypatch.setenv("MICROPLEX_EXECUTOR", "dask")
        monkeypatch.setenv("MICROPLEX_DASK_SCHEDULER", cluster.scheduler_address)

        def run_once() -> tuple[str, bool]:
            with execute_job(reconstructable(napping_job), instance=instance) as result:
                return result.run_id, result.success

        with ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(lambda _: run_once(), range(2)))
        assert all(success for _, success in runs)
        for run_id, _ in runs:
            steps = instance.all_logs(run_id, of_type=DagsterEventType.STEP_SUCCESS)
            materialized = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
            assert [event.step_key for event in steps] == ["nap"], run_id
            assert len(materialized) == 1, run_id
