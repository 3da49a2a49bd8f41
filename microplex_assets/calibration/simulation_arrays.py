"""PolicyEngine quantities as numpy arrays per entity, and each record's contribution to a
target: what the target matrix, the benchmark suite and the baselines read from a
``Microsimulation``, each variable computed once."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.geography.districts import parse_district
from microplex_assets.geography.states import fips_from_code
from microplex_assets.targets.model import Target, TargetFilter

DISTRICT_VARIABLE = "congressional_district_geoid"


class SimulationArrays:
    """Numpy arrays of a ``Microsimulation``, computed once each and mapped to an entity.

    Wrapping the simulation keeps the matrix code testable and makes every variable cost
    one PolicyEngine computation however many targets use it.
    """

    def __init__(self, simulation: Any, year: int) -> None:
        self.simulation = simulation
        self.year = year
        self.system = simulation.tax_benefit_system
        self._cache: dict[tuple[str, str], np.ndarray] = {}
        self.household_ids = self.values("household_id", "household")

    def has_variable(self, name: str) -> bool:
        return name in self.system.variables

    def values(self, variable: str, entity: str) -> np.ndarray:
        """``variable`` for every record of ``entity``.

        Person <-> group moves use PolicyEngine's ``map_to`` (a group value broadcast to its
        members; person values summed to their group). Group -> group moves do not:
        PolicyEngine's ``map_to`` between two groups divides a household value among the
        household's sub-units (a household id of 189 became 47.25 on a tax unit of a
        four-unit household), which put every tax-unit and SPM-unit target of a
        multi-unit household on the wrong household and in the wrong state. Here a
        household value is broadcast to each sub-unit through its first member, and a
        sub-unit value is summed to its household.
        """
        key = (variable, entity)
        if key not in self._cache:
            native = self.system.variables[variable].entity.key
            if native == entity or "person" in (native, entity):
                mapped = None if native == entity else entity
                result = self.simulation.calculate(variable, self.year, map_to=mapped)
                # pd.Series drops microdf's weights (and its warning): raw per-record values.
                self._cache[key] = pd.Series(result).to_numpy()
            elif entity == "household":
                native_values = self.values(variable, native)
                self._cache[key] = np.bincount(
                    self.household_position(native),
                    weights=native_values.astype(float),
                    minlength=len(self.household_ids),
                )
            else:
                self._cache[key] = self.values(variable, "person")[self.first_member(entity)]
        return self._cache[key]

    def first_member(self, entity: str) -> np.ndarray:
        """For each record of group ``entity``, the person index of its first member."""
        key = ("__first_member__", entity)
        if key not in self._cache:
            person_group = self.values(f"{entity}_id", "person")
            group_ids = self.values(f"{entity}_id", entity)
            first = pd.Series(np.arange(len(person_group))).groupby(person_group).first()
            positions = first.reindex(group_ids).to_numpy()
            if np.isnan(positions.astype(float)).any():
                raise ValueError(f"some {entity} records have no member in the simulation")
            self._cache[key] = positions.astype(np.int64)
        return self._cache[key]

    def household_position(self, entity: str) -> np.ndarray:
        """For each record of ``entity``, the column of its household in the matrix."""
        key = ("__household_position__", entity)
        if key not in self._cache:
            if entity == "household":
                ids = self.household_ids
            else:
                person_household = self.values("household_id", "person")
                ids = (
                    person_household
                    if entity == "person"
                    else person_household[self.first_member(entity)]
                )
            order = np.argsort(self.household_ids)
            self._cache[key] = order[np.searchsorted(self.household_ids, ids, sorter=order)]
        return self._cache[key]


def filter_mask(arrays: SimulationArrays, target_filter: TargetFilter, entity: str) -> np.ndarray:
    """Records of ``entity`` that pass one filter."""
    values = arrays.values(target_filter.variable, entity)
    if target_filter.equals is not None:
        return np.isin(values.astype(str), list(target_filter.equals))
    numeric = values.astype(float)
    mask = (numeric >= target_filter.low) & (numeric < target_filter.high)
    if target_filter.nonzero:
        mask &= numeric != 0
    return mask


def record_contributions(arrays: SimulationArrays, target: Target) -> np.ndarray:
    """Each record's contribution to the target (0 for records outside it)."""
    entity = target.entity
    mask = np.ones(len(arrays.household_position(entity)), dtype=bool)
    if target.scope == "filer":
        mask &= arrays.values("tax_unit_is_filer", entity).astype(bool)
    if target.scope == "recipient":
        mask &= arrays.values(target.variable, entity).astype(float) > 0
    if target.geography_level == "district":
        # the household's recorded district (``district_assignment.district_geoids``)
        geoid = parse_district(target.geography).geoid
        mask &= arrays.values(DISTRICT_VARIABLE, entity).astype(int) == geoid
    elif target.geography != "US":
        mask &= arrays.values("state_fips", entity).astype(int) == fips_from_code(target.geography)
    for target_filter in target.filters:
        mask &= filter_mask(arrays, target_filter, entity)
    if target.aggregation == "count":
        return mask.astype(float)
    return np.where(mask, arrays.values(target.variable, entity).astype(float), 0.0)
