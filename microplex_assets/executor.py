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

dagster-dask 0.29 names each Dask task ``<job>.<step>``; every asset run's job is
``__ASSET_JOB``, so two runs sharing a scheduler (a backfill's shards) submit the same
keys, Dask runs each step once, and the second run "succeeds" having run nothing
(dagster-io/dagster#21418; it cost the 2026-12-03 backfill 25 shards). Our executor
puts the run id in the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from dagster import (
    ExecutorDefinition,
    Field,
    Permissive,
    in_process_executor,
    multiple_process_executor_requirements,
)
from dagster._core.definitions.executor_definition import executor

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
        return run_scoped_dask_executor.configured(
            {"cluster": dask_cluster_config(env)}, name="dask"
        )
    raise ValueError(f"MICROPLEX_EXECUTOR={kind!r}; expected one of {EXECUTORS}")


def dask_task_key(job_name: str, run_id: str, step_key: str) -> str:
    """A Dask task key unique to one run's step (upstream's omits the run)."""
    return f"{job_name}.{run_id}.{step_key}"


def _run_scoped_dask_executor_class() -> type:
    """dagster-dask's executor with run-scoped task keys; built lazily so that the
    in-process default never imports Dask."""
    import dask.distributed
    from dagster._core.errors import raise_execution_interrupts
    from dagster._utils import iterate_with_context
    from dagster_dask.executor import (
        DaskExecutor,
        get_dask_resource_requirements,
        query_on_dask_worker,
    )

    class RunScopedDaskExecutor(DaskExecutor):
        def execute(self, plan_context, execution_plan):  # type: ignore[no-untyped-def]
            if not plan_context.instance.is_persistent:
                raise ValueError("Dask execution needs a persistent DagsterInstance")
            if self.cluster_type == "existing":
                cluster: Any = self.cluster_configuration["address"]
            elif self.cluster_type == "local":
                cluster = dask.distributed.LocalCluster(**self.build_dict(plan_context.job_name))
            else:
                raise ValueError(f"dask cluster {self.cluster_type!r}; expected existing or local")
            run = plan_context.dagster_run
            with dask.distributed.Client(cluster) as client:
                futures: dict[str, Any] = {}
                for step_level in execution_plan.get_steps_to_execute_by_level():
                    for step in step_level:
                        upstream = [
                            futures[key] for put in step.step_inputs for key in put.dependency_keys
                        ]
                        futures[step.key] = client.submit(
                            query_on_dask_worker,
                            upstream,
                            plan_context.reconstructable_job,
                            run,
                            plan_context.run_config,
                            [step.key],
                            plan_context.instance.get_ref(),
                            execution_plan.known_state,
                            key=dask_task_key(plan_context.job_name, run.run_id, step.key),
                            resources=get_dask_resource_requirements(step.tags),
                        )
                done = dask.distributed.as_completed(list(futures.values()), with_results=True)
                for _future, step_events in iterate_with_context(raise_execution_interrupts, done):
                    yield from step_events

    return RunScopedDaskExecutor


@executor(
    name="dask",
    requirements=multiple_process_executor_requirements(),
    config_schema={
        "cluster": Field(Permissive(), description="{existing: {address}} or {local: {...}}")
    },
)
def run_scoped_dask_executor(init_context: Any) -> Any:
    """Steps as Dask tasks on an existing scheduler or a loopback LocalCluster."""
    ((cluster_type, cluster_configuration),) = init_context.executor_config["cluster"].items()
    return _run_scoped_dask_executor_class()(cluster_type, cluster_configuration)
