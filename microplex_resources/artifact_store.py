"""Where stage artifacts and published bundles live on disk."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from microplex_assets.files import replace_symlink


class ArtifactStore(ConfigurableResource):
    """Per cell, ``<root>/<product>/<geography>/`` holds the immutable run bundles
    (``runs/<run_key>/``), the ``current`` pointer and the stable links through it (see
    ``microplex_assets.release``); work files go to ``<root>/_work/<product>/<geography>/
    <run_id>/``, one folder per Dagster run, so two runs of a cell never share one.
    """

    root: str | None = Field(
        default=None, description="Artifacts root; default $DAGSTER_HOME/artifacts."
    )
    _run_id: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._run_id = context.run_id

    def root_path(self) -> Path:
        if self.root:
            return Path(self.root)
        home = os.environ.get("DAGSTER_HOME")
        if not home:
            raise RuntimeError("ArtifactStore needs 'root' configured or DAGSTER_HOME set")
        return Path(home) / "artifacts"

    def cell_dir(self, product: str, geography: str) -> Path:
        """The cell's folder: ``runs/``, ``current``, stable links, ``releases.json``."""
        return self.root_path() / product / geography

    def bundle_dir(self, product: str, geography: str) -> Path:
        """The cell's current bundle (what other cells read as "the published one")."""
        return self.cell_dir(product, geography) / "current"

    def release_dir(self) -> Path:
        """The run index and the readiness dashboard (derived from every bundle)."""
        path = self.root_path() / "_release"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def work_dir(self, product: str, geography: str) -> Path:
        """This run's private work folder; ``latest`` beside it points at the newest one
        (the benchmarks read a build's saved matrices there)."""
        cell = self.root_path() / "_work" / product / geography
        path = cell / (self._run_id or "no-run")
        path.mkdir(parents=True, exist_ok=True)
        latest = cell / "latest"
        if not latest.is_symlink() or os.readlink(latest) != path.name:
            replace_symlink(latest, path.name)
        return path
