"""The pinned external baseline: an H5 someone trusts (the real eCPS where a user has it),
scored by policyengine-us on exactly our kept targets.

The file is pinned by path and SHA256 in the run profile; a file whose bytes differ
from the pin is refused, so every comparison names the exact baseline it used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from microplex_assets.calibration.matrix import TargetMatrix, materialize_targets
from microplex_assets.calibration.simulation_arrays import SimulationArrays
from microplex_assets.files import file_sha256


class BaselinePinError(ValueError):
    """The pinned baseline H5 is missing or its bytes differ from the pinned SHA256."""


def verify_pin(pin: dict[str, Any]) -> str:
    """The file's SHA256 after checking it exists and matches the pin (which it must have)."""
    path = Path(pin["path"])
    if not path.is_file():
        raise BaselinePinError(f"pinned baseline H5 {path} does not exist")
    actual = file_sha256(path)
    expected = pin.get("sha256")
    if not expected:  # a path alone pins nothing: the bytes could change under it
        raise BaselinePinError(
            f"pinned baseline H5 {path} has no SHA256 pin; expected baseline_h5_sha256 set "
            f"to the SHA256 of the file you trust (this file's is {actual})"
        )
    if expected.lower() != actual:
        raise BaselinePinError(
            f"pinned baseline H5 {path}: SHA256 {actual} differs from the pinned {expected}"
        )
    return actual


def pinned_baseline_estimates(
    pin: dict[str, Any],
    matrix: TargetMatrix,
    year: int,
    microsimulation: Callable[[Path], Any],
) -> dict[str, Any]:
    """Estimates of the pinned H5 (its own household weights) for each of our kept targets.

    Targets the pinned file cannot score (a variable it lacks, a state it has no records
    in) are NaN and excluded from its losses.
    """
    sha256 = verify_pin(pin)
    arrays = SimulationArrays(microsimulation(Path(pin["path"])), year)
    theirs = materialize_targets(arrays, matrix.targets)
    weights = arrays.values("household_weight", "household").astype(float)
    by_name = dict(zip(theirs.targets.names, theirs.estimates(weights), strict=True))
    estimates = np.array([by_name.get(name, np.nan) for name in matrix.targets.names])
    return {
        "configured": True,
        "path": str(pin["path"]),
        "sha256": sha256,
        "versions": dict(pin.get("versions") or {}),
        "targets_scored": int(np.isfinite(estimates).sum()),
        "estimates": estimates.tolist(),
    }
