"""Two runs of one cell at the same time: each Dagster run gets its own work folder and
its own run bundle, through one shared ArtifactStore (as ``definitions.py`` shares it),
and their promotions are serialized by the cell lock; nothing is clobbered."""

import json
import os
import threading
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, DagsterInstance, asset, materialize

from microplex_assets.release.bundle import (
    list_runs,
    publish_run_bundle,
    run_dir,
    run_key,
    verify_bundle,
)
from microplex_assets.release.pointer import current_key, history, pointer_state, promote
from microplex_resources.artifact_store import ArtifactStore
from tests.faults.cells import publish_earlier, temporaries

BARRIER = threading.Barrier(2, timeout=120)


@asset
def cell_run(context: AssetExecutionContext, artifact_store: ArtifactStore) -> dict[str, Any]:
    """A stand-in for one cell's build: write work files, wait until the other run has
    written its own, write more, then publish a bundle from the work folder and promote."""
    work = artifact_store.work_dir("local", "US")
    (work / "h5.bin").write_bytes(context.run_id.encode() * 1000)
    BARRIER.wait()  # both runs hold a work folder now
    (work / "manifest.json").write_text(json.dumps({"derived_from": ["x"], "run": context.run_id}))
    again = artifact_store.work_dir("local", "US")
    cell = artifact_store.cell_dir("local", "US")
    files = {"h5.bin": again / "h5.bin", "manifest.json": again / "manifest.json"}
    BARRIER.wait()  # publish at the same moment
    key = run_key(context.run_id)
    publish_run_bundle(files, cell, key, {"run_id": context.run_id})
    promote(cell, key, "local", "US", reason=context.run_id)
    return {"work": str(work), "work_again": str(again), "key": key}


def test_two_runs_of_one_cell_share_neither_work_folder_nor_bundle(tmp_path: Path) -> None:
    store = ArtifactStore(root=str(tmp_path))  # one resource object, as in definitions.py
    cell = tmp_path / "local" / "US"
    earlier = publish_earlier(cell).name
    results: dict[int, Any] = {}

    def run(slot: int) -> None:
        with DagsterInstance.ephemeral() as instance:
            outcome = materialize([cell_run], resources={"artifact_store": store},
                                  instance=instance)  # fmt: skip
            results[slot] = (outcome.run_id, outcome.output_for_node("cell_run"))

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert sorted(results) == [0, 1], "a run failed or hung"
    (run_a, out_a), (run_b, out_b) = results[0], results[1]
    assert run_a != run_b
    for run_id, out in ((run_a, out_a), (run_b, out_b)):
        assert Path(out["work"]).name == run_id and out["work_again"] == out["work"]
        bundle = run_dir(cell, out["key"])
        assert verify_bundle(bundle) == []
        assert (bundle / "h5.bin").read_bytes() == run_id.encode() * 1000  # its own bytes
        assert json.loads((bundle / "manifest.json").read_text())["run"] == run_id
        assert json.loads((bundle / "RUN.json").read_text())["run_id"] == run_id
    assert sorted(list_runs(cell)) == sorted([earlier, out_a["key"], out_b["key"]])
    # Both promotions happened, one after the other, each recorded with the one before it.
    promotions = [e for e in history(cell) if e["reason"] in (run_a, run_b)]
    assert len(promotions) == 2 and promotions[1]["from"] == promotions[0]["to"]
    assert current_key(cell) == promotions[1]["to"]
    assert pointer_state(cell).stack == [earlier, promotions[0]["to"], promotions[1]["to"]]
    assert os.readlink(cell / "current") == f"runs/{promotions[1]['to']}"
    assert temporaries(tmp_path) == []
