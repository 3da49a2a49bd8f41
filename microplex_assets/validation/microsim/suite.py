"""Run the frozen benchmark suite on a dataset's records (stage 9, no Dagster here).

Cost is the design constraint: PolicyEngine simulations are what a build pays for.
- The baseline is the simulation the schema gate already computed on the same H5 (the
  runtime's cache is keyed by content hash), so the suite adds no baseline simulation.
- A PolicyEngine result per record does not depend on the weights, so each reform is
  simulated once on the records and aggregated with every weight vector (candidate,
  eCPS method, ...). One exception in policyengine-us 2.68: Medicaid spending is shared
  over a state's enrollees by weight (``medicaid_slcsp_state_denominator``); reforms read
  the baseline's denominator (PolicyEngine's own rule), so reform *changes* do not depend
  on the weights unless a reform moves enrollment, while baseline levels that include the
  Medicaid value (Gini, top share) are those of the simulated weights.
- Households are independent in PolicyEngine, so a reform is simulated only on the
  households it can touch (the manifest's ``touches``); the rest keep their baseline
  values. The state-aggregate Medicaid inputs are copied from the full baseline into the
  subset, so the subset computes exactly what the full file would
  (``tests/validation/test_microsim_suite.py`` proves the totals equal on a sample).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.calibration.simulation_arrays import SimulationArrays
from microplex_assets.entities.h5_combine import restrict_h5
from microplex_assets.simulation.forks import fork_available, map_in_forks
from microplex_assets.simulation.memory import current_rss_gb, return_freed_memory
from microplex_assets.validation.microsim.manifest import BenchmarkManifest, BenchmarkReform
from microplex_assets.validation.microsim.outputs import (
    NET_INCOME,
    SimulationResults,
    baseline_levels,
    reform_impacts,
)
from microplex_assets.validation.microsim.reforms import (
    STRUCTURAL_REFORMS,
    parametric_reform,
    restore_cash,
)
from microplex_assets.validation.microsim.slices import (
    CHUNK_HOUSEHOLDS,
    ReformedSystems,
    SliceTask,
    household_states,
    slice_tasks,
)
from microplex_assets.validation.microsim.touches import touchable_households

# Federal spending the budget impact nets against income tax (refundable credits such as
# the EITC and CTC are inside income_tax already).
BENEFITS: tuple[str, ...] = ("ssi", "snap", "tanf")
# Person variables computed from every household's weight in a state: copied from the
# full baseline into a subset simulation so the subset sees the whole file's values.
STATE_AGGREGATE_INPUTS: tuple[str, ...] = (
    "medicaid_slcsp_state_denominator",
    "medicaid_slcsp_state_average_cost_index",
)


def simulation_results(arrays: SimulationArrays) -> SimulationResults:
    """Household money (net income, income tax, benefits) and person poverty flags."""
    household_ids = arrays.household_ids.astype(np.int64)
    columns = {
        "household_net_income": arrays.values("household_net_income", "household"),
        "people": np.bincount(
            arrays.household_position("person"), minlength=len(household_ids)
        ).astype(float),
        "income_tax": arrays.values("income_tax", "household"),
        **{name: arrays.values(name, "household") for name in BENEFITS},
    }
    household = pd.DataFrame(
        {name: np.asarray(values, dtype=float) for name, values in columns.items()},
        index=pd.Index(household_ids, name="household_id"),
    )
    person = pd.DataFrame(
        {
            "household_id": arrays.values("household_id", "person").astype(np.int64),
            "age": arrays.values("age", "person").astype(float),
            "in_poverty": arrays.values("person_in_poverty", "person").astype(bool),
        },
        index=pd.Index(arrays.values("person_id", "person").astype(np.int64), name="person_id"),
    )
    order = np.argsort(household_ids, kind="stable")
    return SimulationResults(household=household.iloc[order], person=person)


def merge_subset(baseline: SimulationResults, subset: SimulationResults) -> SimulationResults:
    """Baseline results with the subset's households (and their persons) replaced."""
    household = baseline.household.copy()
    household.loc[subset.household.index, :] = subset.household[household.columns].to_numpy()
    person = baseline.person.copy()
    person.loc[subset.person.index, "in_poverty"] = subset.person["in_poverty"].to_numpy()
    return SimulationResults(household=household, person=person)


@dataclass
class ReformRun:
    """One reform's simulation: households simulated, wall seconds, its merged results.

    ``cash_add_back`` (household id -> dollars) is what a structural reform took out of an
    input that is a tax measure, not cash (indexation lowers the *taxable* gain; the sale
    proceeds are unchanged): PolicyEngine counts the input in household net income, so the
    impacts add it back. ``results`` stay PolicyEngine's own values.
    """

    reform_id: str
    households_simulated: int
    seconds: float
    results: SimulationResults
    cash_add_back: pd.Series | None = None

    def impact_results(self) -> SimulationResults:
        """The results the impacts read: net income with ``cash_add_back`` restored."""
        if self.cash_add_back is None or self.cash_add_back.empty:
            return self.results
        household = self.results.household.copy()
        add = self.cash_add_back.reindex(household.index, fill_value=0.0).to_numpy(float)
        household[NET_INCOME] = household[NET_INCOME].to_numpy(float) + add
        return SimulationResults(household=household, person=self.results.person)


@dataclass
class SuiteRun:
    """Every reform's results on one record set, and the baseline they are compared to."""

    manifest_hash: str
    manifest_version: int
    baseline: SimulationResults
    runs: dict[str, ReformRun] = field(default_factory=dict)

    def impacts(self, weights: Mapping[str, pd.Series]) -> dict[str, dict[str, dict]]:
        """reform id -> weight label -> reform_impacts (the same records, each weighting)."""
        return {
            reform_id: {
                label: reform_impacts(self.baseline, run.impact_results(), w, BENEFITS)
                for label, w in weights.items()
            }
            for reform_id, run in self.runs.items()
        }

    def levels(self, weights: Mapping[str, pd.Series]) -> dict[str, dict[str, float]]:
        return {label: baseline_levels(self.baseline, w) for label, w in weights.items()}

    def seconds(self) -> dict[str, float]:
        return {reform_id: run.seconds for reform_id, run in self.runs.items()}


def structural_input(
    reform: BenchmarkReform, arrays: SimulationArrays, context: Mapping[str, Any]
) -> tuple[str, np.ndarray]:
    """The input a structural reform rewrites and its new per-person values (all persons)."""
    spec = STRUCTURAL_REFORMS[reform.structural]
    variable = spec["variable"]
    baseline = arrays.values(variable, "person").astype(float)
    person_ids = arrays.values("person_id", "person").astype(np.int64)
    return variable, spec["apply"](baseline, person_ids, context)


@dataclass
class BaselineInputs:
    """What the reform runs need from the baseline simulation, read before it is released:
    the households each reform can touch, the state-aggregate inputs, structural inputs."""

    person_ids: np.ndarray
    touched: dict[str, np.ndarray]
    state_aggregates: dict[str, np.ndarray]
    structural: dict[str, tuple[str, np.ndarray]]
    household_state: pd.Series | None = None  # household id -> state FIPS, to slice by state


def baseline_inputs(
    manifest: BenchmarkManifest, arrays: SimulationArrays, context: Mapping[str, Any]
) -> BaselineInputs:
    return BaselineInputs(
        person_ids=arrays.values("person_id", "person").astype(np.int64),
        touched={r.id: touchable_households(r.touches, arrays) for r in manifest.reforms},
        state_aggregates={
            name: arrays.values(name, "person").astype(float)
            for name in STATE_AGGREGATE_INPUTS
            if name in arrays.system.variables
        },
        structural={
            r.id: structural_input(r, arrays, context)
            for r in manifest.reforms
            if r.kind == "structural"
        },
        household_state=household_states(arrays),
    )


def simulate_subset(
    reform: BenchmarkReform,
    households: np.ndarray,
    h5_path: Path,
    year: int,
    system: Any,
    inputs: BaselineInputs,
    subset_path: Path,
    microsimulation: Callable[..., Any],
    reformed_system: Any = None,
) -> tuple[SimulationResults, pd.Series | None]:
    """One slice of households under the reform: its results and the cash add-back.
    A parametric reform runs on ``reformed_system`` when given (built once for all its
    slices), else under ``reform=`` (the system rebuilt for this slice)."""
    restrict_h5(
        h5_path,
        subset_path,
        households,
        year,
        entity_of=lambda name: system.variables[name].entity.key,
    )
    if reformed_system is not None:
        simulation = microsimulation(subset_path, system=reformed_system)
    else:
        policy = parametric_reform(reform, system) if reform.kind == "parametric" else None
        simulation = microsimulation(subset_path, policy)
    subset_persons = pd.Series(simulation.calculate("person_id", year)).to_numpy()
    position = pd.Index(inputs.person_ids).get_indexer(subset_persons.astype(np.int64))
    for variable, values in inputs.state_aggregates.items():
        simulation.set_input(variable, year, values[position])
    removed = None
    if reform.id in inputs.structural:
        variable, values = inputs.structural[reform.id]
        before = pd.Series(simulation.calculate(variable, year)).to_numpy(dtype=float)
        simulation.set_input(variable, year, values[position])
        if STRUCTURAL_REFORMS[reform.structural].get("cash_unchanged", False):
            removed = before - values[position]
    arrays = SimulationArrays(simulation, year)
    results = simulation_results(arrays)
    add_back = None if removed is None else restore_cash(arrays, results, removed)
    # A simulation holds reference cycles (3-5 GB at national scale): collect it before
    # the next one is built, so two never sit in memory together.
    del simulation
    gc.collect()
    subset_path.unlink(missing_ok=True)
    return results, add_back


def assemble_runs(
    manifest: BenchmarkManifest,
    inputs: BaselineInputs,
    baseline: SimulationResults,
    tasks: list[SliceTask],
    outcomes: list[tuple[tuple[SimulationResults, pd.Series | None], float]],
) -> dict[str, ReformRun]:
    """Each reform's slices merged into the baseline; its seconds are its slices' wall
    seconds summed (what one process would have spent, whatever ran beside it)."""
    runs = {}
    for reform in manifest.reforms:
        merged, add_backs, seconds = baseline, [], 0.0
        for task, ((subset, add_back), slice_seconds) in zip(tasks, outcomes, strict=True):
            if task.reform.id != reform.id:
                continue
            merged = merge_subset(merged, subset)
            seconds += slice_seconds
            if add_back is not None:
                add_backs.append(add_back)
        add_back = pd.concat(add_backs) if add_backs else None
        touched = len(inputs.touched[reform.id])
        runs[reform.id] = ReformRun(reform.id, touched, seconds, merged, add_back)
    return runs


# Slices simulated at once in forked children: a simulation uses one core, and the build
# machine has two; each child holds one slice (about 4 GB at 10,000 households).
SUITE_WORKERS = 2


def run_suite(
    manifest: BenchmarkManifest,
    baseline_simulation: Any,
    h5_path: Path,
    year: int,
    work_dir: Path,
    microsimulation: Callable[..., Any],
    context: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    release: Callable[[], None] | None = None,
    chunk_households: int = CHUNK_HOUSEHOLDS,
    isolate: bool | None = None,
    workers: int = SUITE_WORKERS,
    reform_system: Callable[[Any], Any] | None = None,
) -> SuiteRun:
    """Every manifest reform on the records of ``h5_path`` (``baseline_simulation`` is that
    file's baseline Microsimulation); ``microsimulation(path, reform)`` builds a fresh one.

    ``context`` carries what structural reforms need (the capital-gains lots, CPI);
    ``release`` frees the baseline simulation once its values are read, so a reform's
    simulation never sits in memory beside it. Slices of every reform run ``workers`` at a
    time in forked children (``isolate``, the default where the OS can fork: the process
    is as large after the suite as before it), else one by one in this process.
    ``reform_system(Reform)`` builds a parametric reform's system once, here, before the
    slices fork: every slice shares it and its warm caches instead of building its own.
    """
    arrays = SimulationArrays(baseline_simulation, year)
    system = arrays.system
    baseline = simulation_results(arrays)
    inputs = baseline_inputs(manifest, arrays, context or {})
    del arrays, baseline_simulation
    if release:
        release()
    released = current_rss_gb()
    return_freed_memory()
    if progress:
        progress(
            f"benchmark baseline read and released: RSS {released:.2f} GB, "
            f"{current_rss_gb():.2f} GB after malloc_trim"
        )
    suite = SuiteRun(manifest.content_hash, manifest.version, baseline)
    work_dir.mkdir(parents=True, exist_ok=True)
    tasks = slice_tasks(manifest, inputs, chunk_households)
    systems = ReformedSystems(tasks, system, reform_system, progress)
    calls = [
        (task.reform, task.households, h5_path, year, system, inputs)
        + (work_dir / f"suite_{task.reform.id}_{task.index}.h5", microsimulation, None)
        for task in tasks
    ]
    if isolate is None:
        isolate = fork_available()
    started = time.perf_counter()

    def done(index: int, result: Any, memory: dict[str, float]) -> None:
        if progress:
            task = tasks[index]
            progress(
                f"benchmark {task.reform.id} slice {task.index + 1}/{task.count}: "
                f"{len(task.households):,} households in {memory['seconds']:.1f}s, its "
                f"process {memory.get('peak_rss_gb', 0.0):.2f} GB at peak; suite "
                f"{time.perf_counter() - started:.0f}s, RSS {current_rss_gb():.2f} GB"
            )

    if isolate:
        forked = map_in_forks(simulate_subset, calls, workers, done, systems.prepare)
        outcomes = [(result, memory["seconds"]) for result, memory in forked]
    else:
        outcomes = []
        for index, call in enumerate(calls):
            slice_started = time.perf_counter()
            result = simulate_subset(*systems.prepare(index, call))
            outcomes.append((result, time.perf_counter() - slice_started))
            done(index, result, {"seconds": outcomes[-1][1]})
    suite.runs = assemble_runs(manifest, inputs, baseline, tasks, outcomes)
    for reform_id, run in suite.runs.items():
        if progress:
            progress(
                f"benchmark {reform_id}: {run.households_simulated:,} of "
                f"{len(baseline.household):,} households simulated in {run.seconds:.1f}s"
            )
    return suite
