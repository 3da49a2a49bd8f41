"""Two runs of one cell never share a work folder; ``latest`` names the newest."""

import os

from dagster import DagsterInstance, asset, materialize

from microplex_resources.artifact_store import ArtifactStore


@asset
def work_folder(artifact_store: ArtifactStore) -> str:
    return str(artifact_store.work_dir("national", "US"))


def test_each_run_gets_its_own_work_folder(tmp_path):
    store = ArtifactStore(root=str(tmp_path))
    with DagsterInstance.ephemeral() as instance:
        runs = [
            materialize([work_folder], resources={"artifact_store": store}, instance=instance)
            for _ in range(2)
        ]
    folders = [run.output_for_node("work_folder") for run in runs]
    assert [os.path.basename(f) for f in folders] == [run.run_id for run in runs]
    latest = tmp_path / "_work" / "national" / "US" / "latest"
    assert os.readlink(latest) == runs[1].run_id
    assert store.bundle_dir("national", "US") == tmp_path / "national" / "US" / "current"
