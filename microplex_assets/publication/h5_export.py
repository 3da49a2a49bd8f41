"""Write an EntityBundle as an H5 in policyengine-core's time-period layout (stage 8).

One HDF5 group per variable, one dataset per year (``employment_income/2024``). Only
PolicyEngine *input* variables on the table's own entity are exported; every other
column is listed with the reason it was left out, so the manifest can say why.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from microplex_assets.entities.bundle import ENTITIES, GROUP_ENTITIES, EntityBundle

# Columns that describe how a record was built; never PolicyEngine inputs.
SOURCE_DIAGNOSTICS = frozenset(
    {"role", "line_in_tax_unit", "family_position", "source_year", "h_seq", "source_record_id"}
)


@dataclass
class ExportReport:
    """What went into the H5 and what was left out, with reasons."""

    path: str
    year: int
    record_counts: dict[str, int]
    exported: dict[str, list[str]]
    excluded: dict[str, str] = field(default_factory=dict)
    household_weight_total: float = 0.0

    @property
    def exported_variables(self) -> list[str]:
        return sorted(v for names in self.exported.values() for v in names)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "exported_variables": self.exported_variables}


def is_pe_input(system: Any, name: str, entity: str) -> bool:
    """True when ``name`` is a policyengine-us input variable (no formula) on ``entity``."""
    variable = system.variables.get(name)
    if variable is None or variable.entity.key != entity:
        return False
    return not (
        variable.formulas or getattr(variable, "adds", None) or getattr(variable, "subtracts", None)
    )


def exclusion_reason(system: Any, name: str, entity: str) -> str | None:
    """Why a bundle column is not exported, or None when it is."""
    if name.endswith("_reported"):
        return "reported source value (diagnostic; PolicyEngine computes the program)"
    if name in SOURCE_DIAGNOSTICS:
        return "source diagnostic"
    variable = system.variables.get(name)
    if variable is None:
        return "not a policyengine-us variable"
    if variable.entity.key != entity:
        return f"policyengine-us variable on entity {variable.entity.key}, not {entity}"
    if not is_pe_input(system, name, entity):
        return "formula variable (computed by policyengine-us)"
    return None


def encode(values: pd.Series, variable: Any) -> np.ndarray:
    """Cast a column to the storage type of its PolicyEngine value type."""
    kind = variable.value_type
    if kind is bool:
        return values.fillna(False).to_numpy(dtype=bool)
    if kind is int:
        return values.to_numpy(dtype=np.int64)
    if kind is float:
        return values.to_numpy(dtype=np.float32)
    if kind is str:
        return values.astype(str).str.encode("utf-8").to_numpy(dtype="S")
    if getattr(variable, "possible_values", None) is not None:
        names = values.astype(str)
        valid = set(variable.possible_values.__members__)
        invalid = sorted(set(names) - valid)
        if invalid:
            raise ValueError(
                f"{variable.name}: values {invalid[:5]} are not members of {sorted(valid)}"
            )
        return names.str.encode("utf-8").to_numpy(dtype="S")
    return values.to_numpy()


def h5_arrays(bundle: EntityBundle, system: Any) -> tuple[dict[str, np.ndarray], ExportReport]:
    """Arrays keyed by variable name, and the export report."""
    arrays: dict[str, np.ndarray] = {}
    person = bundle.person
    arrays["person_id"] = person["person_id"].to_numpy(dtype=np.int64)
    for entity in GROUP_ENTITIES:
        arrays[f"{entity}_id"] = bundle.tables[entity][f"{entity}_id"].to_numpy(dtype=np.int64)
        arrays[f"person_{entity}_id"] = person[f"{entity}_id"].to_numpy(dtype=np.int64)
    id_columns = {"person_id", *(f"{e}_id" for e in GROUP_ENTITIES)}
    exported: dict[str, list[str]] = {entity: [] for entity in ENTITIES}
    excluded: dict[str, str] = {}
    for entity in ENTITIES:
        table = bundle.tables[entity]
        for column in table.columns:
            if column in id_columns:
                continue
            reason = exclusion_reason(system, column, entity)
            if reason:
                excluded[f"{entity}.{column}"] = reason
                continue
            arrays[column] = encode(table[column], system.variables[column])
            exported[entity].append(column)
    report = ExportReport(
        path="",
        year=bundle.year,
        record_counts=bundle.counts(),
        exported=exported,
        excluded=excluded,
        household_weight_total=float(bundle.household["household_weight"].sum()),
    )
    return arrays, report


def write_policyengine_h5(bundle: EntityBundle, path: Path, system: Any) -> ExportReport:
    """Write the bundle's H5 to a temporary sibling, verify it re-opens, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays, report = h5_arrays(bundle, system)
    year = str(bundle.year)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp_name, "w") as h5:
            for name, values in arrays.items():
                h5.create_group(name).create_dataset(year, data=values)
        with h5py.File(tmp_name, "r") as h5:
            missing = [name for name in arrays if year not in h5[name]]
            if missing:
                raise OSError(f"{tmp_name}: variables {missing[:5]} lack the {year} dataset")
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    report.path = str(path)
    return report
