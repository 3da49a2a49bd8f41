"""A small asset job whose executor comes from ``executor_from_env``, as the code
location's does; reconstructed by the Dask workers in ``test_dask_executor.py``."""

import os

from dagster import AssetSelection, Definitions, JobDefinition, asset, define_asset_job

from microplex_assets.executor import executor_from_env


def where() -> dict:
    """The Dask worker running this step (None outside one) and its process."""
    from distributed import get_worker

    try:
        address = get_worker().address
    except ValueError:
        address = None
    return {"worker": address, "pid": os.getpid()}


@asset
def left() -> dict:
    return {"value": 2, **where()}


@asset
def right() -> dict:
    return {"value": 3, **where()}


@asset
def total(left: dict, right: dict) -> dict:
    return {"value": left["value"] * right["value"], "inputs": [left, right], **where()}


def small_job() -> JobDefinition:
    defs = Definitions(
        assets=[left, right, total],
        jobs=[define_asset_job("small", AssetSelection.all())],
        executor=executor_from_env(),
    )
    return defs.resolve_job_def("small")


@asset
def nap(context) -> dict:
    """Two seconds of work, long enough for two runs' steps to overlap on the cluster."""
    import time

    time.sleep(2)
    return {"run_id": context.run_id, **where()}


def napping_job() -> JobDefinition:
    defs = Definitions(
        assets=[nap],
        jobs=[define_asset_job("napping", AssetSelection.all())],
        executor=executor_from_env(),
    )
    return defs.resolve_job_def("napping")
