"""Where stage artifacts and published bundles live on disk."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field


class ArtifactStore(ConfigurableResource):
    """Bundles go to ``<root>/<product>/<geography>/``; work files to ``<root>/_work/...``.

    Published folders only ever change by an atomic swap (see publication.publish), so a
    reader never sees a half-written bundle; work files are private to the build.
    """

    root: str | None = Field(
        default=None, description="Artifacts root; default $DAGSTER_HOME/artifacts."
    )

    def root_path(self) -> Path:
        if self.root:
            return Path(self.root)
        home = os.environ.get("DAGSTER_HOME")
        if not home:
            raise RuntimeError("ArtifactStore needs 'root' configured or DAGSTER_HOME set")
        return Path(home) / "artifacts"

    def bundle_dir(self, product: str, geography: str) -> Path:
        return self.root_path() / product / geography

    def work_dir(self, product: str, geography: str) -> Path:
        path = self.root_path() / "_work" / product / geography
        path.mkdir(parents=True, exist_ok=True)
        return path
