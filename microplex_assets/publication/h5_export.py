"""Write an EntityBundle as an H5 in policyengine-core's time-period layout (stage 8).

One HDF5 group per variable, one dataset per year (``employment_income_before_lsr/2024``),
which ``policyengine_us.Microsimulation(dataset=path)`` reads as ``TIME_PERIOD_ARRAYS``
(the first group's first key becomes the dataset year). Only PolicyEngine *input*
variables on the table's own entity are exported, each cast to the dtype PolicyEngine
itself holds it in (``variable.dtype``), so loading changes no value; every other column
is listed with the reason it was left out, so the manifest can say why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from microplex_assets.entities.bundle import ENTITIES, GROUP_ENTITIES, ID_VARIABLES, EntityBundle
from microplex_assets.files import atomic_target
from microplex_assets.publication.coverage import constant_arrays
from microplex_resources.policyengine_runtime import is_input_variable

# Columns that describe how a record was built; never PolicyEngine inputs. ``role`` is
# also dangerous: core would read an H5 ``role`` array as every group entity's role.
SOURCE_DIAGNOSTICS = frozenset(
    {
        "role",
        "line_in_tax_unit",
        "family_position",
        "source_year",
        "source_record_id",
        "h_seq",
        "donor_source",
        "imputation_source",
    }
)


@dataclass
class ExportReport:
    """What went into the H5 and what was left out, with reasons (for the manifest)."""

    path: str
    year: int
    record_counts: dict[str, int]
    exported: dict[str, list[str]]
    excluded: dict[str, str] = field(default_factory=dict)
    household_weight_total: float = 0.0
    id_variables: list[str] = field(default_factory=lambda: list(ID_VARIABLES))
    # Exported variables with one value on every record, and the value: constant fills.
    constant: dict[str, Any] = field(default_factory=dict)

    @property
    def exported_variables(self) -> list[str]:
        """Exported input variables (ids not included), sorted."""
        return sorted(v for names in self.exported.values() for v in names)

    @property
    def h5_variables(self) -> list[str]:
        """Every group in the H5: ids plus exported variables."""
        return sorted({*self.id_variables, *self.exported_variables})

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "exported_variables": self.exported_variables,
            "h5_variables": self.h5_variables,
        }


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
    if not is_input_variable(system, name, entity):
        return "formula variable (computed by policyengine-us)"
    return None


def is_enum(variable: Any) -> bool:
    return getattr(variable, "possible_values", None) is not None


def enum_names(values: pd.Series, variable: Any) -> np.ndarray:
    """Enum members (names, bytes or Enum items) as their names in ``S`` bytes."""

    def name(value: Any) -> str:
        if isinstance(value, bytes):
            return value.decode("utf-8")
        return str(getattr(value, "name", value))

    names = values.map(name)
    valid = set(variable.possible_values.__members__)
    invalid = sorted(set(names) - valid)
    if invalid:
        raise ValueError(
            f"{variable.name}: values {invalid[:5]} are not members of "
            f"{variable.possible_values.__name__} {sorted(valid)}"
        )
    return names.str.encode("utf-8").to_numpy(dtype="S")


def encode(values: pd.Series, variable: Any) -> np.ndarray:
    """Cast a column to the dtype PolicyEngine holds the variable in.

    Raises on missing values (PolicyEngine refuses NaN inputs) and on values the cast
    would change (an int32 overflow, a fractional int), naming the variable.
    """
    if values.isna().any():
        raise ValueError(f"{variable.name}: {int(values.isna().sum())} missing values")
    if is_enum(variable):
        return enum_names(values, variable)
    if variable.value_type is str:
        encoded = values.map(lambda v: v if isinstance(v, bytes) else str(v).encode("utf-8"))
        return encoded.to_numpy(dtype="S")
    if variable.value_type is bool:
        if not values.isin([True, False, 0, 1]).all():
            raise ValueError(f"{variable.name}: non-boolean values in a bool variable")
        return values.to_numpy(dtype=bool)
    target = np.dtype(variable.dtype)
    raw = pd.to_numeric(values).to_numpy(dtype=np.float64)
    if target.kind in "iu":
        info = np.iinfo(target)
        if ((raw < info.min) | (raw > info.max) | (raw != np.round(raw))).any():
            raise ValueError(f"{variable.name}: values do not fit {target} exactly")
    cast = raw.astype(target)
    if not np.isfinite(cast[np.isfinite(raw)].astype(np.float64)).all():
        raise ValueError(f"{variable.name}: values overflow {target}")
    return cast


def h5_arrays(bundle: EntityBundle, system: Any) -> tuple[dict[str, np.ndarray], ExportReport]:
    """Arrays keyed by H5 variable name, and the export report."""
    person = bundle.person
    missing = [
        f"{entity}.{entity}_id"
        for entity in ENTITIES
        if f"{entity}_id" not in bundle.tables[entity]
    ] + [f"person.{e}_id" for e in GROUP_ENTITIES if f"{e}_id" not in person]
    if missing:
        raise KeyError(f"entity bundle lacks id columns {missing}")
    # Ids stay int64 as the bundle holds them: core builds entities from these raw
    # arrays (the schema gate checks they also survive PolicyEngine's own id dtypes).
    arrays: dict[str, np.ndarray] = {"person_id": person["person_id"].to_numpy(dtype=np.int64)}
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
            if reason is None and column in arrays:
                reason = f"duplicate of {column} already exported from another table"
            if reason:
                excluded[f"{entity}.{column}"] = reason
                continue
            arrays[column] = encode(table[column], system.variables[column])
            exported[entity].append(column)
    weights = bundle.household.get("household_weight")
    report = ExportReport(
        path="",
        year=int(bundle.year),
        record_counts=bundle.counts(),
        exported=exported,
        excluded=excluded,
        household_weight_total=float(weights.sum()) if weights is not None else 0.0,
        constant=constant_arrays({n: arrays[n] for n in exported_names(exported)}),
    )
    return arrays, report


def exported_names(exported: dict[str, list[str]]) -> list[str]:
    return [name for names in exported.values() for name in names]


def write_policyengine_h5(bundle: EntityBundle, path: Path, system: Any) -> ExportReport:
    """Write the bundle's H5 to a temporary sibling, verify it re-opens, then rename.

    A reader of ``path`` sees the previous file or the complete new one, never a
    half-written H5; on any failure the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays, report = h5_arrays(bundle, system)
    year = str(bundle.year)
    with atomic_target(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            for name, values in arrays.items():
                h5.create_group(name).create_dataset(year, data=values)
        with h5py.File(tmp, "r") as h5:
            wrong = [
                name
                for name, values in arrays.items()
                if year not in h5[name] or h5[name][year].shape != values.shape
            ]
            if wrong:
                raise OSError(f"{tmp}: variables {wrong[:5]} did not read back")
    report.path = str(path)
    return report
