"""A whole file's PolicyEngine results, computed in forked slices of whole states.

Why: one simulation of the 40,400-household national file held 5+ GB in one process and
used one of the build machine's two cores (the schema gate's 288 s and the build's 8.8 GB
peak, 2026-12-04). Households are independent in PolicyEngine except through weights, and
the weight-reading formulas that feed household results (Medicaid's per-enrollee cost,
``medicaid_slcsp_state_*``) aggregate over one state's enrollees: a slice holding whole
states computes exactly what the whole file does. Slices run ``workers`` at a time, each
in a forked child whose memory goes back to the OS when it exits.

*Readers* are the code that will read the results (the schema gate, the stage-9
aggregates, the benchmark suite's baseline). Each runs in every child on a
``RecordingSimulation``, which keeps every ``calculate`` result; the parent puts them
together, in the file's record order, as a ``SlicedSimulation``: a read-only stand-in for
the whole file's ``Microsimulation`` whose ``calculate`` returns those values as microdf
MicroSeries carrying PolicyEngine's own weights. The readers then run again on it, in the
parent, and see the whole file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
from microdf import MicroSeries

from microplex_assets.entities.h5_combine import restrict_h5
from microplex_assets.simulation.forks import map_in_forks

Key = tuple[str, str | None]  # (variable, map_to)
Reader = Callable[[Any], object]
# Ranked over the whole file by weight: no slice can compute them.
WHOLE_FILE_ONLY: tuple[str, ...] = ("household_income_decile", "spm_unit_income_decile")
STATE_VARIABLE = "state_fips"


class SlicedCalculationError(RuntimeError):
    """A variable that failed in a slice: the slice's PolicyEngine error, re-raised where a
    whole-file simulation would have raised it."""


class RecordingSimulation:
    """A ``Microsimulation`` whose ``calculate`` results (and failures) are kept by key."""

    def __init__(self, simulation: Any, year: int) -> None:
        self.simulation = simulation
        self.year = int(year)
        self.tax_benefit_system = simulation.tax_benefit_system
        self.values: dict[Key, np.ndarray] = {}
        self.errors: dict[Key, str] = {}

    def calculate(self, variable: str, period: Any = None, map_to: str | None = None) -> Any:
        if period is not None and str(period) != str(self.year):
            raise ValueError(f"sliced simulations hold year {self.year}, asked for {period}")
        key = (variable, map_to)
        try:
            result = self.simulation.calculate(variable, self.year, map_to=map_to)
        except Exception as error:
            self.errors[key] = f"{type(error).__name__}: {error}"
            raise
        self.values[key] = pd.Series(result).to_numpy()
        return result


@dataclass
class SliceOutcome:
    """What one child sends back: its values and failures by key, its readers' failures."""

    households: int
    states: list[int]
    values: dict[Key, np.ndarray]
    errors: dict[Key, str]
    reader_errors: dict[str, str]


def entity_keys(system: Any) -> list[str]:
    return [entity.key for entity in system.entities]


def simulate_slice(
    households: np.ndarray,
    states: list[int],
    source: Path,
    path: Path,
    system: Any,
    microsimulation: Callable[[Path], Any],
    year: int,
    readers: Mapping[str, Reader],
) -> SliceOutcome:
    """One slice (in a child): its households of ``source`` written to ``path``,
    simulated, every reader run on it."""
    restrict_h5(source, path, households, year, lambda name: system.variables[name].entity.key)
    recording = RecordingSimulation(microsimulation(path), year)
    for entity in entity_keys(system):
        recording.calculate(f"{entity}_id")  # places each record in the file's order
        if f"{entity}_weight" in system.variables:
            recording.calculate(f"{entity}_weight")  # PolicyEngine's weights, per entity
    reader_errors = {}
    for name, reader in readers.items():
        try:
            reader(recording)
        except Exception as error:  # reported by name; the parent's re-run raises it again
            reader_errors[name] = f"{type(error).__name__}: {error}"
    Path(path).unlink(missing_ok=True)
    return SliceOutcome(len(households), states, recording.values, recording.errors, reader_errors)


@dataclass
class SlicedSimulation:
    """The whole file's values for what the readers asked, in the file's record order;
    ``calculate`` answers like a ``Microsimulation`` (MicroSeries with PolicyEngine's
    weights) for those keys and raises, naming the key, for any other."""

    tax_benefit_system: Any
    year: int
    values: dict[Key, np.ndarray]
    errors: dict[Key, str] = field(default_factory=dict)
    reader_errors: dict[str, str] = field(default_factory=dict)
    slices: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def entity_of(self, key: Key) -> str:
        return key[1] or self.tax_benefit_system.variables[key[0]].entity.key

    def calculate(self, variable: str, period: Any = None, map_to: str | None = None) -> Any:
        key = (variable, map_to)
        if key in self.errors:
            raise SlicedCalculationError(self.errors[key])
        if key not in self.values:
            raise KeyError(
                f"{variable} (map_to={map_to}) was not computed by the sliced simulation: "
                "only what its readers read is kept; add a reader that reads it"
            )
        entity = self.entity_of(key)
        weights = self.values.get((f"{entity}_weight", None))
        return MicroSeries(self.values[key], weights=weights)


def state_slices(
    household_ids: np.ndarray, states: np.ndarray, max_households: int
) -> list[tuple[np.ndarray, list[int]]]:
    """Households in slices of whole states (first-fit decreasing), at most
    ``max_households`` each unless one state alone is larger; the largest slice first, so
    the longest simulations start first and the workers finish together."""
    if max_households < 1:
        raise ValueError(f"max_households must be at least 1, got {max_households}")
    frame = pd.DataFrame({"id": np.asarray(household_ids), "state": np.asarray(states)})
    sizes = frame.groupby("state").size().sort_values(ascending=False, kind="stable")
    members: list[list[int]] = []
    loads: list[int] = []
    for state, size in sizes.items():
        for index, load in enumerate(loads):
            if load + size <= max_households:
                members[index].append(int(state))
                loads[index] += int(size)
                break
        else:
            members.append([int(state)])
            loads.append(int(size))
    slices = [
        (np.sort(frame.loc[frame["state"].isin(group), "id"].to_numpy()), sorted(group))
        for group in members
    ]
    return sorted(slices, key=lambda item: len(item[0]), reverse=True)


def file_ids(h5_path: Path, year: int, entities: list[str]) -> dict[str, np.ndarray]:
    """Each entity's ids in the file's order (the order a whole-file simulation holds)."""
    with h5py.File(h5_path, "r") as h5:
        return {
            entity: h5[f"{entity}_id"][str(year)][()].astype(np.int64)
            for entity in entities
            if f"{entity}_id" in h5
        }


def household_state_codes(h5_path: Path, year: int) -> tuple[np.ndarray, np.ndarray]:
    """Household ids and their state FIPS (one pseudo-state 0 when the file has none)."""
    with h5py.File(h5_path, "r") as h5:
        ids = h5["household_id"][str(year)][()].astype(np.int64)
        if STATE_VARIABLE in h5:
            return ids, h5[STATE_VARIABLE][str(year)][()].astype(np.int64)
    return ids, np.zeros(len(ids), dtype=np.int64)


def assemble(
    system: Any, year: int, ids: dict[str, np.ndarray], outcomes: list[SliceOutcome]
) -> SlicedSimulation:
    """The slices' values concatenated and put in the file's record order, entity by entity;
    a key missing from some slice (and not failed) is left out."""
    if not outcomes:
        raise ValueError("no slices: the file holds no households")
    order = {}
    for entity, wanted in ids.items():
        got = np.concatenate([o.values[(f"{entity}_id", None)] for o in outcomes])
        positions = pd.Index(got.astype(np.int64)).get_indexer(wanted)
        if len(got) != len(wanted) or (positions < 0).any():
            raise ValueError(
                f"the slices hold {len(got):,} {entity} records, the file {len(wanted):,}: "
                "expected every record exactly once"
            )
        order[entity] = positions
    errors: dict[Key, str] = {}
    reader_errors: dict[str, str] = {}
    for number, outcome in enumerate(outcomes, start=1):
        where = f" (slice {number} of {len(outcomes)}: state FIPS {outcome.states})"
        for key, message in outcome.errors.items():
            errors.setdefault(key, message + where)
        for name, message in outcome.reader_errors.items():
            reader_errors.setdefault(name, message + where)
    complete = set.intersection(*(set(o.values) for o in outcomes)) - set(errors)
    sliced = SlicedSimulation(system, year, {}, errors, reader_errors)
    for key in sorted(complete, key=str):
        whole = np.concatenate([o.values[key] for o in outcomes])
        sliced.values[key] = whole[order[sliced.entity_of(key)]]
    refused = sorted({key[0] for key in complete} & set(WHOLE_FILE_ONLY))
    if refused:
        raise ValueError(
            f"{refused} rank households over the whole file by weight: a sliced simulation "
            "cannot compute them; read them from a whole-file Microsimulation"
        )
    return sliced


def sliced_simulation(
    h5_path: Path,
    year: int,
    system: Any,
    readers: Mapping[str, Reader],
    microsimulation: Callable[[Path], Any],
    work_dir: Path,
    max_households: int,
    workers: int = 2,
    progress: Callable[[str], None] | None = None,
) -> SlicedSimulation:
    """What ``readers`` read of a whole-file simulation of ``h5_path``, computed in forked
    slices of whole states (``microsimulation(path)`` simulates a slice's H5, written
    under ``work_dir``; ``system`` is the policyengine-us system)."""
    h5_path, work_dir = Path(h5_path), Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    households, states = household_state_codes(h5_path, year)
    slices = state_slices(households, states, max_households)
    calls = [
        (members, codes, h5_path, work_dir / f"slice_{number}.h5", system, microsimulation)
        + (year, readers)
        for number, (members, codes) in enumerate(slices)
    ]
    started = time.perf_counter()

    def done(index: int, outcome: SliceOutcome, memory: dict[str, float]) -> None:
        if progress:
            progress(
                f"sliced simulation {index + 1}/{len(slices)}: {outcome.households:,} "
                f"households of {len(outcome.states)} states in {memory['seconds']:.0f}s, its "
                f"process {memory.get('peak_rss_gb', 0.0):.2f} GB at peak "
                f"({time.perf_counter() - started:.0f}s so far)"
            )

    forked = map_in_forks(simulate_slice, calls, workers, done)
    outcomes = [outcome for outcome, _ in forked]
    ids = file_ids(h5_path, year, entity_keys(system))
    sliced = assemble(system, year, ids, outcomes)
    sliced.seconds = round(time.perf_counter() - started, 1)
    sliced.slices = [
        {
            "households": o.households,
            "states": o.states,
            "seconds": round(memory["seconds"], 1),
            "peak_rss_gb": round(memory.get("peak_rss_gb", 0.0), 2),
        }
        for o, memory in forked
    ]
    return sliced
