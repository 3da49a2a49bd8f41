"""Reuse one PolicyEngine simulation for H5 files that differ only in their weights.

A national build simulates the same records twice: the target matrix reads the candidate
H5 (design weights) and the schema gate, the aggregates and the benchmark suite read the
published H5 (calibrated weights). A PolicyEngine result per record does not depend on
the weights except through the few formulas that read them, so the first simulation can
serve the second file once its weight inputs are swapped, if none of those formulas has
run yet (then nothing cached was computed from the old weights). That saves a whole
national simulation (about 15 minutes and one 5 GB peak at 40,000 households here).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import h5py
import numpy as np

# policyengine-us 2.68 formulas that read weights (found by reading every variable's
# source for ``*_weight`` / ``weights``): the Medicaid per-enrollee cost shares a state's
# spending over its weighted enrollees, and the income deciles rank by weighted position.
# Everything computed from weights goes through one of these or a weight variable itself.
WEIGHT_DEPENDENT_VARIABLES: tuple[str, ...] = (
    "medicaid_slcsp_state_denominator",
    "medicaid_slcsp_state_average_cost_index",
    "household_income_decile",
    "spm_unit_income_decile",
)


def is_weight_variable(name: str) -> bool:
    return name.endswith("_weight")


def records_digest(path: str | Path) -> str:
    """SHA256 over every dataset of an H5 except the weight variables (name, dtype, shape
    and bytes, in name order): equal for two files holding the same records."""
    digest = hashlib.sha256()
    with h5py.File(path, "r") as h5:
        names: list[str] = []
        h5.visit(names.append)
        for name in sorted(names):
            item = h5[name]
            if not isinstance(item, h5py.Dataset) or is_weight_variable(name.split("/")[0]):
                continue
            values = np.ascontiguousarray(item[()])
            digest.update(f"{name}|{values.dtype.str}|{values.shape}|".encode())
            digest.update(values.tobytes())
    return digest.hexdigest()


def weight_inputs(path: str | Path) -> dict[tuple[str, str], np.ndarray]:
    """(variable, period) -> values of every weight variable stored in an H5."""
    with h5py.File(path, "r") as h5:
        return {
            (name, period): h5[name][period][()]
            for name in h5
            if is_weight_variable(name) and isinstance(h5[name], h5py.Group)
            for period in h5[name]
        }


def _simulations(simulation: Any) -> list[Any]:
    """A simulation and every branch below it."""
    found, stack = [], [simulation]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(getattr(current, "branches", {}).values())
    return found


def weight_dependent_values_computed(simulation: Any) -> list[str]:
    """The weight-reading variables any branch of ``simulation`` already holds values of."""
    return sorted(
        {
            name
            for current in _simulations(simulation)
            for name in WEIGHT_DEPENDENT_VARIABLES
            if name in current.tax_benefit_system.variables
            and current.get_holder(name).get_known_periods()
        }
    )


def reweight_simulation(simulation: Any, path: str | Path) -> str | None:
    """Give ``simulation`` the weights stored in ``path`` (same records); None on success,
    else why it cannot be reused (a weight-reading formula already ran on the old weights).

    Branches are dropped (a formula recreates one from the reweighted simulation when it
    needs it), every weight variable's values are deleted (the formula ones such as
    ``person_weight`` are computed again from the new inputs), then the file's weights
    are set as inputs.
    """
    computed = weight_dependent_values_computed(simulation)
    if computed:
        return f"values computed from the old weights: {computed}"
    simulation.branches.clear()
    for name in simulation.tax_benefit_system.variables:
        if is_weight_variable(name):
            simulation.delete_arrays(name)
    fast_cache = getattr(simulation, "_fast_cache", None)
    if isinstance(fast_cache, dict):
        fast_cache.clear()
    for (name, period), values in weight_inputs(path).items():
        simulation.set_input(name, period, values)
    return None
