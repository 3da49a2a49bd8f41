"""Scores read from published bundles, without PolicyEngine (stage 7 helpers).

Every bundle publishes its per-household target contributions beside its H5
(``validation/target_matrix*``; a local shard also ``validation/national_contributions*``,
its records' share of every national target). With the H5's weights that is enough to
score a bundle on any target it computed, so derived cells — the ``national|<state>``
fallback and the ``local|US`` fan-in — and a local shard's comparison with its fallback
need no new simulation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from microplex_assets.calibration.matrix import SavedMatrix, load_saved_matrix
from microplex_assets.files import dataset_filename

NATIONAL_CONTRIBUTIONS = "national_contributions"


@dataclass
class PublishedBundle:
    """A published bundle's folder, H5, manifest and household weights."""

    folder: Path
    h5_path: Path
    manifest: dict[str, Any]
    weights: pd.Series  # household_weight by household_id
    # saved matrices read so far, by prefix: a fan-in scores each shard several times
    # (and ``dataclasses.replace`` of a reweighted bundle shares this cache)
    loaded: dict[str, SavedMatrix] = field(default_factory=dict, repr=False, compare=False)

    @property
    def label(self) -> str:
        config = self.manifest.get("config", {})
        return f"{config.get('product', '?')}|{config.get('geography', '?')}"

    def matrix(self, prefix: str = "target_matrix") -> SavedMatrix:
        if prefix not in self.loaded:
            self.loaded[prefix] = load_saved_matrix(self.folder / "validation", prefix)
        return self.loaded[prefix]

    def provenance(self) -> dict[str, Any]:
        return {
            "bundle": str(self.folder),
            "cell": self.label,
            "h5_sha256": self.manifest.get("h5", {}).get("sha256"),
        }


def read_h5_weights(h5_path: Path, year: int) -> pd.Series:
    """``household_weight`` by ``household_id`` from a PolicyEngine H5."""
    with h5py.File(h5_path, "r") as h5:
        for name in ("household_id", "household_weight"):
            if name not in h5 or str(year) not in h5[name]:
                raise KeyError(f"{h5_path}: no {name}/{year} array")
        ids = h5["household_id"][str(year)][...]
        weights = h5["household_weight"][str(year)][...]
    return pd.Series(weights.astype(float), index=pd.Index(ids.astype(np.int64)))


def load_published_bundle(folder: Path, year: int, cell: str) -> PublishedBundle:
    """A published bundle, or FileNotFoundError saying which cell to build first. A cell's
    ``current`` link is resolved, so the bundle read (and its provenance) is one run's."""
    folder = Path(folder).resolve() if Path(folder).exists() else Path(folder)
    h5_path = folder / dataset_filename(year)
    manifest_path = folder / "manifest.json"
    if not h5_path.exists() or not manifest_path.exists():
        raise FileNotFoundError(
            f"{cell} has no published bundle for {year} at {folder}: materialize {cell} first"
        )
    manifest = json.loads(manifest_path.read_text())
    return PublishedBundle(folder, h5_path, manifest, read_h5_weights(h5_path, year))


def fallback_estimates(national: PublishedBundle, names: pd.Index) -> pd.Series:
    """National|US weights scored on the named targets (the fallback's estimates)."""
    return national.matrix().estimates_by_name(national.weights, names)
