"""A small job on the build's own calibration and publication code, for the killed-run
cases: a calibration problem, the real solver (seeded), and an H5 published as a run
bundle and promoted. It has the build's IO manager and in-process executor.

Run as a script it is the run that gets killed:

    python -m tests.faults.reexec_job INSTANCE_DIR ARTIFACTS calibration|publication

installs a trigger that sends the process SIGKILL part-way through the solver's epochs
(calibration) or after the first file of the run bundle is copied (publication), then
runs the job; the process dies with the run still marked STARTED.
"""

import os
import signal
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetSelection,
    DagsterInstance,
    Definitions,
    JobDefinition,
    asset,
    define_asset_job,
    execute_job,
    in_process_executor,
    reconstructable,
)

from microplex_assets.calibration.holdout import split_by_groups
from microplex_assets.calibration.matrix import TargetMatrix
from microplex_assets.calibration.solver import SolverConfig
from microplex_assets.calibration.weights import CalibrationRun, solve_weights
from microplex_assets.files import atomic_target, dataset_filename, write_json_atomic
from microplex_assets.release.bundle import publish_run_bundle, run_key
from microplex_assets.release.pointer import promote
from microplex_resources.artifact_store import ArtifactStore
from microplex_resources.atomic_io_manager import AtomicFilesystemIOManager
from tests.calibration.problems import synthetic_matrix

HOUSEHOLDS, EPOCHS, SEED, YEAR = 120, 60, 1456, 2024
KILL_AFTER_LOSSES = 100  # of the 232 loss evaluations of a whole solve: about half-way
HELD_OUT = ("irs_soi/agi_by_state", "irs_soi/partnership_s_corp_income")
CELL = ("local", "US")  # a derived cell: promotion needs only an intact bundle


@asset
def fault_problem() -> TargetMatrix:
    return split_by_groups(synthetic_matrix(households=HOUSEHOLDS)[0], HELD_OUT)


@asset
def fault_weights(fault_problem: TargetMatrix) -> CalibrationRun:
    ids = fault_problem.household_ids
    initial = pd.Series(np.full(len(ids), 100.0), index=ids)
    config = SolverConfig(epochs=EPOCHS, seed=SEED)
    return solve_weights(fault_problem, initial, config, "microplex", "fault")


@asset
def fault_bundle(
    context: AssetExecutionContext, fault_weights: CalibrationRun, artifact_store: ArtifactStore
) -> dict[str, Any]:
    work = artifact_store.work_dir(*CELL)
    h5 = work / dataset_filename(YEAR)
    weights = fault_weights.weights
    with atomic_target(h5) as tmp, h5py.File(tmp, "w") as out:
        out.create_dataset(f"household_id/{YEAR}", data=weights.index.to_numpy(np.int64))
        out.create_dataset(f"household_weight/{YEAR}", data=weights.to_numpy(np.float64))
    manifest = write_json_atomic(
        work / "manifest.json", {"derived_from": ["fault_weights"], "year": YEAR}
    )
    cell = artifact_store.cell_dir(*CELL)
    key = run_key(context.run_id)
    folder = publish_run_bundle(
        {h5.name: h5, "manifest.json": manifest}, cell, key, {"run_id": context.run_id}
    )
    promote(cell, key, *CELL, reason=context.run_id)
    return {"key": key, "bundle": str(folder)}


defs = Definitions(
    assets=[fault_problem, fault_weights, fault_bundle],
    jobs=[define_asset_job("fault_job", AssetSelection.all())],
    resources={"artifact_store": ArtifactStore(), "io_manager": AtomicFilesystemIOManager()},
    executor=in_process_executor,
)


def fault_job() -> JobDefinition:
    return defs.resolve_job_def("fault_job")


def instance_at(folder: str | Path) -> DagsterInstance:
    """A persistent instance (sqlite run and event storage) in ``folder``."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return DagsterInstance.local_temp(tempdir=str(folder))


def run_config(artifacts: Path) -> dict[str, Any]:
    return {"resources": {"artifact_store": {"config": {"root": str(artifacts)}}}}


def kill_during(stage: str) -> None:
    """SIGKILL this process part-way through ``stage`` (see the module docstring)."""
    if stage == "calibration":
        from microplex_assets.calibration import loss

        real, epochs = loss.target_loss, {"n": 0}

        def target_loss(*args: Any, **kwargs: Any) -> float:
            epochs["n"] += 1
            if epochs["n"] > KILL_AFTER_LOSSES:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        loss.target_loss = target_loss  # split_losses looks it up here on each call
    elif stage == "publication":
        from microplex_assets.release import bundle

        real_copy = bundle.shutil.copyfile

        def copyfile(source: Any, target: Any, **kwargs: Any) -> Any:
            real_copy(source, target, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)  # after the first file of the bundle

        bundle.shutil.copyfile = copyfile
    else:
        raise ValueError(f"unknown stage {stage!r}: calibration or publication")


def main(instance_dir: str, artifacts: str, stage: str) -> int:
    kill_during(stage)
    with instance_at(instance_dir) as instance:
        execute_job(reconstructable(fault_job), instance, run_config=run_config(Path(artifacts)))
    return 1  # not reached: the trigger kills the process first


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
