"""The candidate's PolicyEngine simulation as the target matrix reads it, computed in
forked slices of whole states (``simulation.sliced``): the build's two cores at once and
a child's memory back to the OS after each slice, instead of one 5+ GB whole-file
simulation on one core (335 s of the 2026-12-04 build)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from microplex_assets.calibration.matrix import materialize_targets
from microplex_assets.calibration.simulation_arrays import SimulationArrays
from microplex_assets.simulation.sliced import (
    SlicedSimulation,
    household_state_codes,
    sliced_simulation,
)
from microplex_assets.targets.model import TargetSet


def _materialize(simulation: Any, target_set: TargetSet, year: int, states: set[int]) -> None:
    """A slice's reader: every target the parent will compute, so the slice computes
    each variable they read (``states``: the whole file's, not the slice's)."""
    arrays = SimulationArrays(simulation, year)
    arrays.values("state_fips", "household")  # the parent reads the file's states from it
    materialize_targets(arrays, target_set, states=states)


def candidate_simulation(
    candidate_h5: Path,
    year: int,
    system: Any,
    target_sets: Mapping[str, TargetSet],
    microsimulation: Callable[[Path], Any],
    work_dir: Path,
    max_households: int,
    progress: Callable[[str], None] | None = None,
) -> SlicedSimulation:
    """What materializing ``target_sets`` reads of the candidate's simulation; pass the
    result to ``candidate_target_matrix`` / ``materialize_targets`` as the simulation."""
    _, states = household_state_codes(Path(candidate_h5), year)
    whole_file_states = set(np.unique(states).astype(int).tolist())
    readers = {
        name: partial(_materialize, target_set=targets, year=year, states=whole_file_states)
        for name, targets in target_sets.items()
    }
    return sliced_simulation(
        candidate_h5, year, system, readers, microsimulation, work_dir, max_households,
        progress=progress,
    )  # fmt: skip
