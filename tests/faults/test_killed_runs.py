"""A run killed (SIGKILL of its process) during calibration or during publication, then
re-executed from failure with Dagster's own re-execution on a persistent instance, gives
weights and an H5 bitwise identical to an uninterrupted run with the same seed; while it
lies dead, the earlier bundle stays current and no partial bundle is listed.

The job (``reexec_job``) runs the build's solver, IO manager, atomic writes, publisher
and promotion on a 120-household synthetic problem, so no PolicyEngine is needed.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    ReexecutionOptions,
    execute_job,
    reconstructable,
)

from microplex_assets.files import dataset_filename, file_sha256, remove_orphaned_temporaries
from microplex_assets.release.bundle import list_runs, verify_bundle
from microplex_assets.release.pointer import current_key
from tests.faults.cells import publish_earlier, snapshot, temporaries
from tests.faults.reexec_job import CELL, YEAR, fault_job, instance_at, run_config

ROOT = Path(__file__).resolve().parents[2]
EARLIER = "20240101T000000Z-earlier0"


def steps(instance: DagsterInstance, run_id: str, event: DagsterEventType) -> set[str]:
    return {e.dagster_event.step_key for e in instance.all_logs(run_id, of_type=event)}


def outcome(instance: DagsterInstance, artifacts: Path) -> dict[str, Any]:
    """The stored weights (the IO manager's pickle) and the current bundle's H5."""
    with open(Path(instance.storage_directory()) / "fault_weights", "rb") as handle:
        weights = pickle.load(handle).weights
    bundle = (artifacts.joinpath(*CELL) / "current").resolve()
    assert verify_bundle(bundle) == []
    h5 = bundle / dataset_filename(YEAR)
    with h5py.File(h5, "r") as f:
        published = f[f"household_weight/{YEAR}"][:]
    return {"weights": weights, "published": published, "h5_sha256": file_sha256(h5)}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("uninterrupted")
    artifacts = folder / "artifacts"
    with instance_at(folder / "dagster") as instance:
        result = execute_job(reconstructable(fault_job), instance, run_config=run_config(artifacts))
        assert result.success
        return outcome(instance, artifacts)


def kill_run(folder: Path, stage: str) -> None:
    """Run the job in a child process that SIGKILLs itself part-way through ``stage``."""
    child = subprocess.run(
        [sys.executable, "-m", "tests.faults.reexec_job", str(folder / "dagster"),
         str(folder / "artifacts"), stage],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]


@pytest.mark.parametrize(
    ("stage", "killed_step", "rerun"),
    [
        ("calibration", "fault_weights", {"fault_weights", "fault_bundle"}),
        ("publication", "fault_bundle", {"fault_bundle"}),
    ],
)
def test_a_killed_run_reexecutes_from_failure_to_the_same_weights_and_h5(
    tmp_path: Path, uninterrupted: dict[str, Any], stage: str, killed_step: str, rerun: set
) -> None:
    artifacts = tmp_path / "artifacts"
    cell = artifacts.joinpath(*CELL)
    publish_earlier(cell, EARLIER)
    before = snapshot(cell / "runs" / EARLIER)
    kill_run(tmp_path, stage)

    with instance_at(tmp_path / "dagster") as instance:
        [run] = instance.get_runs()
        assert run.status == DagsterRunStatus.STARTED  # its process died mid-step
        started = steps(instance, run.run_id, DagsterEventType.STEP_START)
        done = steps(instance, run.run_id, DagsterEventType.STEP_SUCCESS)
        assert killed_step in started and killed_step not in done
        # What the run left: the earlier bundle current and whole, no bundle listed.
        assert current_key(cell) == EARLIER and list_runs(cell) == [EARLIER]
        assert snapshot(cell / "runs" / EARLIER) == before
        if stage == "publication":  # the kill left the staging folder of its bundle
            assert [Path(p).parent.name for p in temporaries(cell)] == ["runs"]

        # Dagster's run monitoring marks a run whose worker died as failed; do the same.
        instance.report_run_failed(run)
        options = ReexecutionOptions.from_failure(run.run_id, instance)
        result = execute_job(
            reconstructable(fault_job), instance, run_config=run_config(artifacts),
            reexecution_options=options,
        )  # fmt: skip
        assert result.success
        assert steps(instance, result.run_id, DagsterEventType.STEP_START) == rerun
        resumed = outcome(instance, artifacts)

    # Bitwise: the same float64 weights, the same published array, the same H5 bytes.
    assert resumed["weights"].index.equals(uninterrupted["weights"].index)
    assert resumed["weights"].to_numpy().tobytes() == uninterrupted["weights"].to_numpy().tobytes()
    assert np.array_equal(resumed["published"], uninterrupted["published"])
    assert resumed["h5_sha256"] == uninterrupted["h5_sha256"]
    assert current_key(cell) != EARLIER and len(list_runs(cell)) == 2
    assert temporaries(cell) == []  # the killed run's staging folder was swept


def test_only_a_dead_writers_temporaries_are_swept(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    orphan = tmp_path / f".r1.{int(dead.stdout)}.0123abcd.tmp"
    live = tmp_path / f".r2.{os.getpid()}.4567cdef.tmp"
    for folder in (orphan, live):
        (folder / "validation").mkdir(parents=True)
        (folder / "validation" / "part.bin").write_bytes(b"half")
        os.chmod(folder, 0o555)  # a staged bundle is read-only before its rename
    (tmp_path / "r3").mkdir()  # a bundle: never touched
    assert remove_orphaned_temporaries(tmp_path) == [orphan]
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "r3"]
