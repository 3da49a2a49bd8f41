"""The suite's reform slices: which households each slice holds (state-ordered cuts of a
reform's touched households) and the reformed systems the slices share."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from microplex_assets.calibration.simulation_arrays import SimulationArrays
from microplex_assets.constants import SUITE_SLICE_HOUSEHOLDS
from microplex_assets.simulation.memory import current_rss_gb
from microplex_assets.validation.microsim.manifest import BenchmarkManifest, BenchmarkReform
from microplex_assets.validation.microsim.reforms import parametric_reform

if TYPE_CHECKING:
    from microplex_assets.validation.microsim.suite import BaselineInputs


def household_states(arrays: SimulationArrays) -> pd.Series | None:
    """Household id -> state FIPS (None where the file has no ``state_fips``)."""
    if "state_fips" not in arrays.system.variables:
        return None
    ids = arrays.household_ids.astype(np.int64)
    return pd.Series(arrays.values("state_fips", "household").astype(np.int64), index=ids)


def state_order(households: np.ndarray, household_state: pd.Series | None) -> np.ndarray:
    """Households ordered by state, then id, so near-equal cuts hold few whole states.

    A policyengine-us formula runs only on the entities its ``defined_for`` selects, so a
    simulation pays each state's programs once per state present: measured on the 40,400-
    household national file, 400 households from 2 states computed in 30 s and 500 from all
    51 in 58 s (the reform simulation alone, 2026-12-02, ``/work/notes/slice_profile.py``).
    """
    if household_state is None:
        return households
    states = household_state.reindex(households).fillna(-1).to_numpy()
    return households[np.lexsort((households, states))]


# Households per reform simulation: a reform touching every household of a 40k file ran
# out of 23 GB beside the build (17.2 GB peak RSS, 2026-12-02), and households are
# independent in PolicyEngine, so a reform is simulated in slices of at most this many.
CHUNK_HOUSEHOLDS = SUITE_SLICE_HOUSEHOLDS


@dataclass
class SliceTask:
    """One slice of one reform's touched households."""

    reform: BenchmarkReform
    index: int
    count: int
    households: np.ndarray


def slice_tasks(
    manifest: BenchmarkManifest, inputs: BaselineInputs, chunk_households: int
) -> list[SliceTask]:
    """Every reform's touched households, in state order, cut into near-equal slices of
    at most ``chunk_households`` (a reform touching no household gets none)."""
    if chunk_households < 1:
        raise ValueError(f"chunk_households must be at least 1, got {chunk_households}")
    tasks = []
    for reform in manifest.reforms:
        touched = inputs.touched[reform.id]
        if len(touched) == 0:
            continue
        ordered = state_order(touched, inputs.household_state)
        parts = np.array_split(ordered, -(-len(touched) // chunk_households))
        tasks += [SliceTask(reform, k, len(parts), part) for k, part in enumerate(parts)]
    return tasks


class ReformedSystems:
    """Each parametric reform's tax-benefit system, built in the parent when its first
    slice is about to fork and dropped once its last slice has forked (each about 0.56 GB:
    the 2026-12-04 build held four at once, 3.65 -> 5.79 GB before the first fork). The
    children inherit it, warm caches and all, so a reform pays for its system once."""

    def __init__(
        self,
        tasks: list[SliceTask],
        system: Any,
        reform_system: Callable[[Any], Any] | None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.tasks, self.system, self.build, self.progress = tasks, system, reform_system, progress
        self.last = {task.reform.id: index for index, task in enumerate(tasks)}
        self.held: dict[str, Any] = {}

    def get(self, index: int) -> Any:
        """The system for ``tasks[index]``'s reform (None: structural, or none to build)."""
        reform = self.tasks[index].reform
        if self.build is None or reform.kind != "parametric":
            return None
        if reform.id not in self.held:
            started = time.perf_counter()
            self.held[reform.id] = self.build(parametric_reform(reform, self.system))
            if self.progress:
                self.progress(
                    f"benchmark {reform.id}: reformed system built once for its slices in "
                    f"{time.perf_counter() - started:.1f}s, RSS {current_rss_gb():.2f} GB"
                )
        if index == self.last[reform.id]:
            return self.held.pop(reform.id)
        return self.held[reform.id]

    def prepare(self, index: int, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """``args`` with the slice's reformed system as its last element."""
        return args[:-1] + (self.get(index),)
