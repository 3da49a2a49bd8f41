"""The distributed executor: MICROPLEX_EXECUTOR=dask runs a small job's steps on a Dask
cluster the test starts (loopback only, two worker processes), passing outputs between
machines through the instance's storage; the default stays in-process."""

from __future__ import annotations

import os
import pickle

import pytest
from dagster import DagsterInstance, execute_job, in_process_executor, reconstructable

from microplex_assets.executor import dask_cluster_config, executor_from_env
from tests.orchestration.dask_job import small_job

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
