"""The schema-compatibility gate: does the H5 honour the PolicyEngine-US contract?

Static checks read the file with h5py (fast, precise failure messages); the dynamic
check loads it in ``policyengine_us.Microsimulation`` and computes income tax and
household net income, which is what a user will do first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from microplex_assets.entities.bundle import GROUP_ENTITIES
from microplex_resources.policyengine_runtime import is_input_variable

REQUIRED_IDS: tuple[str, ...] = (
    "person_id",
    *(f"{e}_id" for e in GROUP_ENTITIES),
    *(f"person_{e}_id" for e in GROUP_ENTITIES),
)
ID_VARIABLES = frozenset(REQUIRED_IDS)


@dataclass
class SchemaGateResult:
    """Pass/fail, one message per failure (naming variable and expectation), and numbers."""

    passed: bool
    failures: list[str] = field(default_factory=list)
    metrics: dict[str, float | int] = field(default_factory=dict)


def dtype_matches(variable: Any, array: np.ndarray) -> bool:
    """Whether a stored array's dtype can hold the variable's PolicyEngine value type."""
    kind = variable.value_type
    if kind is bool:
        return array.dtype == np.bool_
    if kind is int:
        return np.issubdtype(array.dtype, np.integer)
    if kind is float:
        return np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    if kind is str or getattr(variable, "possible_values", None) is not None:
        return array.dtype.kind == "S"
    return True


def check_h5_schema(path: Path, system: Any, year: int) -> SchemaGateResult:
    """Ids, links, weights, dtypes, enum values and variable set of a PolicyEngine H5."""
    failures: list[str] = []
    year_key = str(year)
    with h5py.File(path, "r") as h5:
        names = list(h5.keys())
        missing_year = [n for n in names if year_key not in h5[n]]
        failures += [f"{n}: no dataset for year {year_key}" for n in missing_year]
        arrays = {n: h5[n][year_key][:] for n in names if n not in missing_year}
    failures += [f"{n}: required id variable missing" for n in REQUIRED_IDS if n not in arrays]
    metrics: dict[str, float | int] = {"variables": len(names)}
    if any(n not in arrays for n in REQUIRED_IDS):
        return SchemaGateResult(False, failures, metrics)

    counts = {"person": len(arrays["person_id"])}
    for entity in ("person", *GROUP_ENTITIES):
        ids = arrays[f"{entity}_id"]
        counts[entity] = len(ids)
        duplicates = len(ids) - len(np.unique(ids))
        if duplicates:
            failures.append(f"{entity}_id: {duplicates} duplicate ids (expected unique)")
    for entity in GROUP_ENTITIES:
        links = arrays[f"person_{entity}_id"]
        ids = arrays[f"{entity}_id"]
        if len(links) != counts["person"]:
            failures.append(f"person_{entity}_id: {len(links)} values, expected {counts['person']}")
            continue
        dangling = int((~np.isin(links, ids)).sum())
        empty = int((~np.isin(ids, links)).sum())
        metrics[f"person_{entity}_id_dangling"] = dangling
        if dangling:
            failures.append(f"person_{entity}_id: {dangling} persons point to no {entity}_id")
        if empty:
            failures.append(f"{entity}_id: {empty} {entity} units have no persons")
    metrics.update({f"{entity}_records": n for entity, n in counts.items()})

    for name, array in arrays.items():
        if name in ID_VARIABLES:
            continue
        if name.endswith("_reported"):
            failures.append(f"{name}: reported source column must not be exported")
            continue
        variable = system.variables.get(name)
        if variable is None:
            failures.append(f"{name}: not a policyengine-us variable")
            continue
        entity = variable.entity.key
        if not is_input_variable(system, name, entity):
            failures.append(f"{name}: formula variable, expected only input variables")
        if len(array) != counts[entity]:
            failures.append(f"{name}: {len(array)} values, expected {counts[entity]} ({entity})")
        if not dtype_matches(variable, array):
            failures.append(
                f"{name}: dtype {array.dtype} does not hold {variable.value_type.__name__}"
            )
        elif getattr(variable, "possible_values", None) is not None:
            members = {m.encode() for m in variable.possible_values.__members__}
            invalid = sorted({v for v in np.unique(array) if v not in members})
            if invalid:
                failures.append(f"{name}: values {invalid[:5]} are not enum members")
        elif array.dtype.kind == "f" and not np.isfinite(array).all():
            failures.append(f"{name}: {int((~np.isfinite(array)).sum())} non-finite values")

    weights = arrays.get("household_weight")
    if weights is None:
        failures.append("household_weight: missing (expected household weights)")
    else:
        bad = int((~np.isfinite(weights) | (weights < 0)).sum())
        metrics["household_weight_total"] = float(np.nansum(weights))
        if bad:
            failures.append(f"household_weight: {bad} negative or non-finite weights")
        if not np.nansum(weights) > 0:
            failures.append("household_weight: total is not positive")
    metrics["failures"] = len(failures)
    return SchemaGateResult(not failures, failures, metrics)


def check_microsimulation(
    path: Path, year: int, microsimulation_factory: Callable[[Path], Any]
) -> dict[str, Any]:
    """Load the H5 in a Microsimulation; weighted income tax and household net income."""
    simulation = microsimulation_factory(path)
    results: dict[str, Any] = {}
    finite = True
    for variable in ("income_tax", "household_net_income"):
        values = simulation.calculate(variable, year)
        raw = np.asarray(pd.Series(values).to_numpy(), dtype=float)
        finite &= bool(np.isfinite(raw).all())
        results[f"{variable}_total_bn"] = round(float(values.sum()) / 1e9, 3)
    results["finite"] = finite
    return results
