"""Which executor runs a run's steps: chosen by configuration, not code.

``MICROPLEX_EXECUTOR`` (read when the code location loads):

- ``in_process`` (default): one process per run; the PolicyEngine system (25 s to
  import) is built once and shared by every stage, and two cores gain nothing from
  parallel steps within a run.
- ``dask``: dagster-dask's executor; every step is a task on a Dask cluster. With
  ``MICROPLEX_DASK_SCHEDULER=tcp://host:8786`` it joins that scheduler (workers on other
  machines, which need this code and venv, and the same DAGSTER_HOME storage and
  artifacts root, e.g. on a shared mount); without, it starts a loopback-only
  ``LocalCluster`` per run (``MICROPLEX_DASK_WORKERS``, default 2).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from dagster import ExecutorDefinition, in_process_executor

EXECUTORS = ("in_process", "dask")


def dask_cluster_config(env: Mapping[str, str]) -> dict[str, Any]:
    """dagster-dask's ``cluster`` config: the given scheduler, or a loopback local one."""
    address = env.get("MICROPLEX_DASK_SCHEDULER")
    if address:
        return {"existing": {"address": address}}
    workers = int(env.get("MICROPLEX_DASK_WORKERS", "2"))
    return {"local": {"n_workers": workers, "threads_per_worker": 1, "host": "127.0.0.1",
                      "dashboard_address": None}}  # fmt: skip


def executor_from_env(env: Mapping[str, str] | None = None) -> ExecutorDefinition:
    """The executor ``MICROPLEX_EXECUTOR`` names; ValueError naming the choices otherwise."""
    env = os.environ if env is None else env
    kind = env.get("MICROPLEX_EXECUTOR", "in_process") or "in_process"
    if kind == "in_process":
        return in_process_executor
    if kind == "dask":
        from dagster_dask import dask_executor

        return dask_executor.configured({"cluster": dask_cluster_config(env)}, name="dask")
    raise ValueError(f"MICROPLEX_EXECUTOR={kind!r}; expected one of {EXECUTORS}")
