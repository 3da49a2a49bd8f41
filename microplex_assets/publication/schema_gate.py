"""The schema-compatibility gate: does the H5 honour the PolicyEngine-US contract?

Static checks read the file with h5py, one variable at a time (fast, precise failure
messages, memory bounded by the largest array); the dynamic check loads it in
``policyengine_us.Microsimulation`` and computes income tax and household net income,
which is what a user will do first. The static checks mirror what policyengine-core
does on load, so a failure names the variable before PolicyEngine fails obscurely:
core builds entities from the raw id arrays, casts every input to the variable's
dtype, refuses NaN, rejects unknown enum names, and reads a contained entity's parent
(a tax unit's household) from its first member.
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
from microplex_assets.publication.h5_export import ID_VARIABLES, is_enum
from microplex_resources.policyengine_runtime import is_input_variable

REQUIRED_IDS: tuple[str, ...] = ID_VARIABLES


@dataclass
class SchemaGateResult:
    """Pass/fail, one message per failure (naming variable and expectation), and numbers."""

    passed: bool
    failures: list[str] = field(default_factory=list)
    metrics: dict[str, float | int] = field(default_factory=dict)


def dtype_matches(variable: Any, array: np.ndarray) -> bool:
    """Whether a stored array's dtype loads as the variable's PolicyEngine value type."""
    kind = array.dtype.kind
    if is_enum(variable) or variable.value_type is str:
        return kind == "S"
    if variable.value_type is bool:
        return kind == "b"
    if variable.value_type is int:
        return kind in "iu"
    if variable.value_type is float:
        return kind in "fiu"
    return True


def survives_cast(array: np.ndarray, dtype: Any) -> bool:
    """Whether PolicyEngine's cast to ``dtype`` keeps every value (ids, int inputs)."""
    cast = array.astype(dtype)
    return bool(np.array_equal(cast.astype(array.dtype), array))


def id_cast_damage(ids: np.ndarray, dtype: np.dtype) -> tuple[int, int]:
    """Ids that PolicyEngine's ``astype(dtype)`` changes (wraps or rounds), and ids lost."""
    cast = ids.astype(dtype)
    wide = np.float64 if dtype.kind == "f" else np.int64
    changed = int((cast.astype(wide) != ids.astype(wide)).sum())
    collisions = len(np.unique(ids)) - len(np.unique(cast)) if changed else 0
    return changed, collisions


def year_datasets(h5: h5py.File, year: str, failures: list[str]) -> dict[str, h5py.Dataset | None]:
    """Each variable's dataset for ``year`` (None when unusable, with the failure named)."""
    datasets: dict[str, h5py.Dataset | None] = {}
    for name, item in h5.items():
        datasets[name] = None
        if not isinstance(item, h5py.Group):
            failures.append(f"{name}: a bare dataset, expected a group with one dataset per year")
            continue
        if year not in item:
            failures.append(f"{name}: no dataset for year {year} (has {sorted(item)[:3]})")
            continue
        others = sorted(set(item) - {year})
        if others:
            failures.append(f"{name}: periods {others[:3]} besides {year}, expected only {year}")
        dataset = item[year]
        if not isinstance(dataset, h5py.Dataset) or dataset.ndim != 1:
            failures.append(f"{name}/{year}: expected a one-dimensional dataset")
            continue
        datasets[name] = dataset
    return datasets


def check_ids(
    arrays: dict[str, np.ndarray], system: Any, failures: list[str], metrics: dict[str, Any]
) -> dict[str, int]:
    """Ids unique, integer and exact in PolicyEngine's dtype; links resolve; no empty units."""
    counts = {"person": len(arrays["person_id"])}
    for entity in ("person", *GROUP_ENTITIES):
        name = f"{entity}_id"
        ids = arrays[name]
        counts[entity] = len(ids)
        if ids.dtype.kind not in "iu":
            failures.append(f"{name}: dtype {ids.dtype}, expected integer ids")
            continue
        duplicates = len(ids) - len(np.unique(ids))
        metrics[f"{entity}_duplicate_ids"] = duplicates
        if duplicates:
            failures.append(f"{name}: {duplicates} duplicate ids (expected unique)")
        # PolicyEngine casts the id variables to its own dtype (int32; float32 for
        # family_id, exact only below 2**24) and formulas compare tax_unit_id/person_id.
        pe_dtype = np.dtype(system.variables[name].dtype if name in system.variables else np.int32)
        changed, collisions = id_cast_damage(ids, pe_dtype)
        metrics[f"{entity}_ids_changed_by_pe_dtype"] = changed
        if changed:
            failures.append(
                f"{name}: {changed} ids change and {collisions} collide when PolicyEngine casts "
                f"them to {pe_dtype} (max id {int(ids.max())}); expected ids exact in {pe_dtype}"
            )
    for entity in GROUP_ENTITIES:
        links = arrays[f"person_{entity}_id"]
        ids = arrays[f"{entity}_id"]
        if len(links) != counts["person"]:
            failures.append(
                f"person_{entity}_id: {len(links)} values, expected {counts['person']} (persons)"
            )
            continue
        dangling = int((~np.isin(links, ids)).sum())
        empty = int((~np.isin(ids, links)).sum())
        metrics[f"person_{entity}_id_dangling"] = dangling
        metrics[f"{entity}_without_persons"] = empty
        if dangling:
            failures.append(f"person_{entity}_id: {dangling} persons point to no {entity}_id")
        if empty:
            failures.append(f"{entity}_id: {empty} {entity} units have no persons")
    return counts


def check_containment(
    arrays: dict[str, np.ndarray], system: Any, failures: list[str], metrics: dict[str, Any]
) -> None:
    """Each unit lies inside one unit of every entity PolicyEngine says contains it."""
    for entity in system.group_entities:
        for parent in getattr(entity, "containing_entities", ()) or ():
            child_links = arrays[f"person_{entity.key}_id"]
            parent_links = arrays[f"person_{parent}_id"]
            if len(child_links) != len(parent_links):
                continue
            pairs = pd.DataFrame({"child": child_links, "parent": parent_links}).drop_duplicates()
            crossing = int(pairs["child"].duplicated().sum())
            metrics[f"{entity.key}_crossing_{parent}"] = crossing
            if crossing:
                failures.append(
                    f"{entity.key}: {crossing} units span more than one {parent} (PolicyEngine "
                    f"reads a {entity.key}'s {parent} from its first member)"
                )


def check_tax_unit_roles(
    roles: np.ndarray, tax_units: np.ndarray, failures: list[str], metrics: dict[str, Any]
) -> None:
    """Supplied roles: all or none per tax unit, one HEAD, at most one SPOUSE (else PE raises)."""
    per_unit = (
        pd.DataFrame(
            {
                "size": 1,
                "supplied": roles != b"UNSPECIFIED",
                "heads": roles == b"HEAD",
                "spouses": roles == b"SPOUSE",
            }
        )
        .groupby(tax_units)
        .sum()
    )
    size, supplied = per_unit["size"], per_unit["supplied"]
    heads, spouses = per_unit["heads"], per_unit["spouses"]
    partial = int(((supplied > 0) & (supplied < size)).sum())
    complete = supplied == size
    malformed = int((complete & ((heads != 1) | (spouses > 1))).sum())
    metrics["tax_units_with_supplied_roles"] = int(complete.sum())
    if partial:
        failures.append(
            f"tax_unit_role_input: {partial} tax units supply roles for some members only "
            "(expected every member or none)"
        )
    if malformed:
        failures.append(
            f"tax_unit_role_input: {malformed} tax units lack exactly one HEAD and at most "
            "one SPOUSE"
        )


def check_variable(
    name: str, array: np.ndarray, system: Any, counts: dict[str, int], failures: list[str]
) -> None:
    """One non-id variable: a PE input on a known entity, right length, dtype and values."""
    if name.endswith("_reported"):
        failures.append(f"{name}: reported source column must not be exported")
        return
    variable = system.variables.get(name)
    if variable is None:
        failures.append(f"{name}: not a policyengine-us variable")
        return
    entity = variable.entity.key
    if not is_input_variable(system, name, entity):
        failures.append(f"{name}: formula variable, expected only input variables")
    if len(array) != counts[entity]:
        failures.append(f"{name}: {len(array)} values, expected {counts[entity]} ({entity})")
    if not dtype_matches(variable, array):
        expected = "enum names as bytes" if is_enum(variable) else variable.value_type.__name__
        failures.append(f"{name}: dtype {array.dtype}, expected {expected}")
    elif is_enum(variable):
        members = {m.encode() for m in variable.possible_values.__members__}
        invalid = sorted(v.decode("utf-8", "replace") for v in np.unique(array) if v not in members)
        if invalid:
            failures.append(
                f"{name}: values {invalid[:5]} are not members of "
                f"{variable.possible_values.__name__}"
            )
    elif array.dtype.kind == "f" and not np.isfinite(array).all():
        failures.append(f"{name}: {int((~np.isfinite(array)).sum())} non-finite values")
    elif variable.value_type is int and not survives_cast(array, variable.dtype):
        failures.append(f"{name}: values do not fit PolicyEngine's {np.dtype(variable.dtype)}")


def check_household_weight(
    weights: np.ndarray | None, failures: list[str], metrics: dict[str, Any]
) -> None:
    if weights is None:
        failures.append("household_weight: missing (expected household weights)")
        return
    weights = weights.astype(np.float64)
    bad = int((~np.isfinite(weights) | (weights < 0)).sum())
    total = float(np.nansum(np.where(np.isfinite(weights), weights, 0.0)))
    metrics["household_weight_total"] = total
    metrics["household_weight_nonzero"] = int((weights > 0).sum())
    metrics["household_weight_invalid"] = bad
    if bad:
        failures.append(f"household_weight: {bad} negative or non-finite weights")
    if not total > 0:
        failures.append(f"household_weight: total {total}, expected positive")


def check_h5_schema(path: Path, system: Any, year: int) -> SchemaGateResult:
    """Ids, links, containment, weights, periods, dtypes, enum values and variable set."""
    try:
        h5 = h5py.File(path, "r")
    except OSError as error:
        failure = f"{Path(path).name}: does not open as HDF5 ({error})"
        return SchemaGateResult(False, [failure], {"failures": 1})
    with h5:
        failures: list[str] = []
        metrics = check_open_file(h5, system, str(int(year)), failures)
    metrics["failures"] = len(failures)
    return SchemaGateResult(not failures, failures, metrics)


def check_open_file(h5: h5py.File, system: Any, year: str, failures: list[str]) -> dict[str, Any]:
    """The checks of ``check_h5_schema`` on an open file; appends failures, returns metrics."""
    metrics: dict[str, Any] = {}
    datasets = year_datasets(h5, year, failures)
    metrics["variables"] = len(datasets)
    missing = [n for n in REQUIRED_IDS if datasets.get(n) is None]
    failures += [f"{n}: required id variable missing" for n in missing if n not in datasets]
    if missing:
        return metrics
    ids = {n: datasets[n][:] for n in REQUIRED_IDS}
    counts = check_ids(ids, system, failures, metrics)
    metrics.update({f"{entity}_records": n for entity, n in counts.items()})
    check_containment(ids, system, failures, metrics)
    weights = None
    for name, dataset in datasets.items():
        if name in REQUIRED_IDS or dataset is None:
            continue
        array = dataset[:]
        check_variable(name, array, system, counts, failures)
        if name == "household_weight" and len(array) == counts["household"]:
            weights = array
        roles_readable = array.dtype.kind == "S" and len(array) == counts["person"]
        if name == "tax_unit_role_input" and roles_readable:
            check_tax_unit_roles(array, ids["person_tax_unit_id"], failures, metrics)
    if weights is not None or "household_weight" not in datasets:
        check_household_weight(weights, failures, metrics)
    return metrics


def check_microsimulation(
    path: Path, year: int, microsimulation_factory: Callable[[Path], Any]
) -> dict[str, Any]:
    """Load the H5 in a Microsimulation; weighted income tax, household net income and
    the SPM poverty rate.

    Totals are weighted MicroSeries sums (weights projected from household_weight);
    ``finite`` is False when any record's value is NaN or infinite, or when SPM poverty
    does not compute (PolicyEngine raises for the whole file, e.g. ``SPMInputError`` for
    an SPM unit without a classified adult or a county geography without
    ``county_fips``): the error is reported as ``spm_poverty_error``. The rate is the
    person-weighted mean of ``person_in_poverty``, PolicyEngine's person-level SPM
    poverty flag (``in_poverty`` of the person's SPM unit).
    """
    simulation = microsimulation_factory(path)
    results: dict[str, Any] = {}
    finite = True
    for variable in ("income_tax", "household_net_income"):
        values = simulation.calculate(variable, year)
        raw = pd.Series(values).to_numpy(dtype=float)
        finite &= bool(np.isfinite(raw).all())
        total = float(values.sum())
        results[f"{variable}_total"] = total
        results[f"{variable}_total_bn"] = round(total / 1e9, 3)
        results[f"{variable}_records"] = int(len(raw))
    spm_config = getattr(simulation, "spm_config", None)
    if isinstance(spm_config, dict):
        results["spm_geography"] = str(spm_config.get("geography_kind"))
    try:
        in_poverty = simulation.calculate("spm_unit_is_in_spm_poverty", year)
        rate = float(simulation.calculate("person_in_poverty", year).mean())
    except Exception as error:  # any failure fails the gate, named in the result
        code = getattr(error, "code", None)
        label = type(error).__name__ + (f" {code}" if code else "")
        results["spm_poverty_error"] = f"{label}: {error}"
        finite = False
    else:
        results["spm_unit_records"] = int(len(in_poverty))
        results["spm_poverty_rate"] = rate
        finite &= bool(np.isfinite(rate))
    results["finite"] = finite
    return results
