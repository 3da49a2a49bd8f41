"""One PolicyEngine-US runtime per process.

``import policyengine_us`` costs about 25 s, so the system is built once and shared by
every asset (and every test) in the process; Dagster's in-process executor keeps a
whole build inside one process.
"""

from __future__ import annotations

import gc
from functools import cache
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource

from microplex_assets.files import file_sha256
from microplex_resources.simulation_reuse import records_digest, reweight_simulation


@cache
def policyengine_system() -> Any:
    """The process-wide policyengine-us tax-benefit system (imported on first use)."""
    from policyengine_us.system import system

    return system


def is_input_variable(system: Any, name: str, entity: str) -> bool:
    """True when ``name`` is a policyengine-us variable on ``entity`` that no formula computes.

    Variables with ``adds``/``subtracts`` count as computed: a dataset value would
    bypass the behavioural-response terms they sum.
    """
    variable = system.variables.get(name)
    return (
        variable is not None
        and variable.entity.key == entity
        and not variable.formulas
        and not getattr(variable, "adds", None)
        and not getattr(variable, "subtracts", None)
    )


# The one cached simulation: file digest -> simulation, and its records digest.
_LATEST_SIMULATION: dict[str, Any] = {}
_LATEST_RECORDS: dict[str, str] = {}
# How each cached simulation was obtained, for logs and tests ("built", "reweighted").
SIMULATION_EVENTS: list[tuple[str, str]] = []


def policyengine_microsimulation(dataset_path: str | Path) -> Any:
    """A ``policyengine_us.Microsimulation`` over an H5 file, shared across files that hold
    the same records.

    Identical bytes reuse the cached simulation as it is. A file whose records equal the
    cached one's and only its weights differ (the published H5 after the candidate's, in
    a national build) reuses it with the weights swapped, when no weight-reading formula
    has run (``simulation_reuse``): every value it already computed (the target
    matrix's, minutes at national scale) serves the schema gate, the aggregates and the
    benchmark suite. Only one simulation is kept, so memory stays bounded.
    """
    policyengine_system()
    from policyengine_us import Microsimulation

    digest = file_sha256(dataset_path)
    if digest in _LATEST_SIMULATION:
        return _LATEST_SIMULATION[digest]
    records = records_digest(dataset_path)
    for cached_digest, simulation in list(_LATEST_SIMULATION.items()):
        if _LATEST_RECORDS.get(cached_digest) != records:
            continue
        refused = reweight_simulation(simulation, dataset_path)
        if refused is None:
            del _LATEST_SIMULATION[cached_digest], _LATEST_RECORDS[cached_digest]
            _LATEST_SIMULATION[digest], _LATEST_RECORDS[digest] = simulation, records
            SIMULATION_EVENTS.append(("reweighted", str(dataset_path)))
            return simulation
        SIMULATION_EVENTS.append((f"not reweighted: {refused}", str(dataset_path)))
    release_simulations()
    _LATEST_SIMULATION[digest] = Microsimulation(dataset=str(dataset_path))
    _LATEST_RECORDS[digest] = records
    SIMULATION_EVENTS.append(("built", str(dataset_path)))
    return _LATEST_SIMULATION[digest]


def _systems_pointing_at_simulations() -> list[Any]:
    """Every tax-benefit system that may hold a ``simulation`` back-reference: the shared
    one, each cached simulation's own, and policyengine-us's pinned clones (the NY
    EITC/CTC formulas build pre-ARPA / pre-TCJA systems once per process in
    ``policyengine_us.tools.pinned_tbs`` and keep them; a branch simulation run on one
    sets ``pinned.simulation`` and so kept the whole national simulation alive)."""
    systems = [policyengine_system()]
    systems += [simulation.tax_benefit_system for simulation in _LATEST_SIMULATION.values()]
    try:
        from policyengine_us.tools import pinned_tbs
    except ImportError:  # an older policyengine-us without the pinned-system cache
        return systems
    return systems + [entry[-1] for entry in pinned_tbs._PINNED_TBS_CACHE.values()]


def release_simulations() -> None:
    """Drop the cached simulation (3-5 GB at national scale) once nothing needs it.

    policyengine-core points a tax-benefit system at the last simulation built on it
    (``system.simulation``); the shared system and policyengine-us's pinned clones would
    keep the released one alive (12 ``Microsimulation`` objects, branches included, were
    found alive after a release), so every such link is cut (nothing in policyengine-us
    2.68 reads it back between simulations).
    """
    from policyengine_core.simulations import Simulation

    for system in _systems_pointing_at_simulations():
        if isinstance(getattr(system, "simulation", None), Simulation):
            system.simulation = None
    _LATEST_SIMULATION.clear()
    _LATEST_RECORDS.clear()
    gc.collect()


def policyengine_reform_microsimulation(
    dataset_path: str | Path, reform: Any = None, system: Any = None
) -> Any:
    """A fresh, uncached ``Microsimulation`` over an H5, under ``reform`` (a
    policyengine-core Reform) or on ``system`` (one ``policyengine_reform_system`` built).

    Used for the benchmark suite's reform simulations: each is needed once, so none is
    kept (the shared baseline simulation stays cached)."""
    policyengine_system()
    from policyengine_us import Microsimulation

    gc.collect()
    if system is not None:
        if reform is not None:
            raise ValueError("give a reform or a reformed system, not both")
        return Microsimulation(dataset=str(dataset_path), tax_benefit_system=system)
    return Microsimulation(dataset=str(dataset_path), reform=reform)


def policyengine_reform_system(reform: Any) -> Any:
    """The tax-benefit system under ``reform``, built once for many simulations.

    ``Microsimulation(reform=...)`` builds the reformed system anew for every simulation
    (about 20 s), with cold parameter caches and an empty SPM-threshold cache (about 38 s
    per 2,000 households): the suite paid that in every slice. policyengine-us's own path
    for "one system, many simulations" is a supplied ``tax_benefit_system``; this builds it
    as ``Microsimulation(reform=...)`` would (the reform, then the parameter barrier that
    keeps a simulation's writes off the shared tree). SPM thresholds depend on the unit
    and its area, not on tax policy, so it reads the shared system's (warm) provider.
    Results equal ``reform=``'s (``tests/validation/test_microsim_suite.py``); what a
    supplied system lacks is the baseline branch, which only behavioural responses (off by
    default) and the Medicaid state denominators (set from the baseline) read.
    """
    shared = policyengine_system()
    from policyengine_us.spm import with_parameter_barrier
    from policyengine_us.system import CountryTaxBenefitSystem

    reformed = with_parameter_barrier(CountryTaxBenefitSystem(reform=reform))
    reformed.spm_forecast_provider = shared.spm_forecast_provider
    return reformed


class PolicyEngineRuntime(ConfigurableResource):
    """Gives assets the shared policyengine-us system and Microsimulation factory."""

    def system(self) -> Any:
        return policyengine_system()

    def microsimulation(self, dataset_path: str | Path) -> Any:
        return policyengine_microsimulation(dataset_path)

    def reform_microsimulation(
        self, dataset_path: str | Path, reform: Any = None, system: Any = None
    ) -> Any:
        return policyengine_reform_microsimulation(dataset_path, reform, system)

    def reform_system(self, reform: Any) -> Any:
        return policyengine_reform_system(reform)

    def release(self) -> None:
        release_simulations()
