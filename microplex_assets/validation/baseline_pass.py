"""The published H5's baseline, simulated once: what the schema gate, the stage-9
aggregates and the benchmark suite's baseline read of it, computed in forked slices of
whole states (``simulation.sliced``) and kept for the process by the file's SHA256.

The schema gate runs it first (it blocks publication); the suite and the aggregates
find it here and add no baseline simulation. A process that did not run the gate (a
multi-process executor) computes it again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from microplex_assets.calibration.simulation_arrays import SimulationArrays
from microplex_assets.files import file_sha256
from microplex_assets.publication.schema_gate import check_microsimulation
from microplex_assets.simulation.sliced import Reader, SlicedSimulation, sliced_simulation
from microplex_assets.validation.aggregates import national_aggregates
from microplex_assets.validation.microsim.indexation import policyengine_cpi_u
from microplex_assets.validation.microsim.manifest import BenchmarkManifest, load_manifest
from microplex_assets.validation.microsim.suite import (
    SUITE_WORKERS,
    baseline_inputs,
    simulation_results,
)

_BASELINES: dict[str, SlicedSimulation] = {}  # H5 SHA256 -> its sliced baseline (one kept)


def suite_context(lots: Any, system: Any) -> dict[str, Any]:
    """What the suite's structural reforms need: the file's capital-gains lots, CPI-U."""
    return {"lots": lots, "cpi": policyengine_cpi_u(system)}


def baseline_readers(
    manifest: BenchmarkManifest, year: int, context: Mapping[str, Any]
) -> dict[str, Reader]:
    """What reads the baseline: each runs in every slice, then on the assembled whole."""

    def schema_gate(simulation: Any) -> None:
        check_microsimulation(Path(), year, lambda _: simulation)

    def aggregates(simulation: Any) -> None:
        national_aggregates(simulation, year)

    def suite_baseline(simulation: Any) -> None:
        arrays = SimulationArrays(simulation, year)
        simulation_results(arrays)
        baseline_inputs(manifest, arrays, context)

    return {"schema_gate": schema_gate, "aggregates": aggregates, "suite_baseline": suite_baseline}


def published_baseline(
    h5_path: Path,
    year: int,
    policyengine: Any,
    context: Mapping[str, Any],
    work_dir: Path,
    max_households: int,
    progress: Callable[[str], None] | None = None,
    workers: int = SUITE_WORKERS,
) -> SlicedSimulation:
    """The sliced baseline of ``h5_path`` (computed once per file content and process).

    ``policyengine`` gives ``system()`` and ``reform_microsimulation(path)`` (a fresh
    simulation per slice); ``context`` is the suite's (capital-gains lots, CPI-U)."""
    digest = file_sha256(h5_path)
    if digest in _BASELINES:
        if progress:
            progress(f"baseline of {Path(h5_path).name}: the sliced simulation already run")
        return _BASELINES[digest]
    system = policyengine.system()
    sliced = sliced_simulation(
        h5_path,
        year,
        system,
        baseline_readers(load_manifest(), year, context),
        policyengine.reform_microsimulation,
        work_dir,
        max_households,
        workers,
        progress,
    )
    _BASELINES.clear()
    _BASELINES[digest] = sliced
    return sliced


def release_baselines() -> None:
    _BASELINES.clear()
