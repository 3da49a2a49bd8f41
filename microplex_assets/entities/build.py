"""Stage 6: build the six PolicyEngine entity tables from the candidate population.

The CPS scaffold knows households, tax units, persons and each tax unit's family
position. PolicyEngine also needs families, SPM units and marital units:
- family: the household's CPS family (``family_position``);
- SPM unit: the same grouping as the family (the taxcalc file carries no SPM unit
  identifier; the SPM unit of a census family is the family plus unrelated members,
  so this undercounts SPM-unit size for households with cohabiting partners);
- marital unit: head and spouse together, every other person alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.calibration.fixed_records import FIXED_FLAG
from microplex_assets.entities.bundle import ENTITIES, GROUP_ENTITIES, EntityBundle
from microplex_assets.sources.frame import ObservationFrame

PERSON_KEYS = ("person_id", *(f"{e}_id" for e in GROUP_ENTITIES))
# Candidate columns that describe how a record was built, not the person.
PERSON_DIAGNOSTICS = ("family_position", "role", "line_in_tax_unit")
# Household columns carried into the bundle when the candidate has them: a PolicyEngine
# input (net worth, set on the spine) and the fixed-weight flag calibration reads.
HOUSEHOLD_PASSTHROUGH = ("net_worth", FIXED_FLAG)


def build_entity_bundle(candidate: ObservationFrame) -> EntityBundle:
    """Six entity tables with consistent integer ids; persons ordered head, spouse, dependents."""
    person = candidate.tables["person"].sort_values(
        ["household_id", "tax_unit_id", "line_in_tax_unit"]
    )
    person = person.reset_index(drop=True)
    # Group ids are numbered 1..n: PolicyEngine holds family_id as float32, which loses
    # whole numbers above 2**24, so composite ids (household * 100 + position) collide.
    family_position = person["family_position"].fillna(1).astype("int64")
    person["family_id"] = dense_ids(person["household_id"], family_position)
    person["spm_unit_id"] = person["family_id"]
    marital_slot = np.where(person["role"].isin(["head", "spouse"]), 0, person["line_in_tax_unit"])
    person["marital_unit_id"] = dense_ids(person["tax_unit_id"], pd.Series(marital_slot))
    # The scaffold's own head/spouse/dependent roles, so PolicyEngine does not re-derive
    # them by age (a CPS dependent can be older than the head; a minor can head a unit).
    person["tax_unit_role_input"] = person["role"].str.upper()

    source_household = candidate.tables["household"]
    household = pd.DataFrame(
        {
            "household_id": source_household["household_id"].astype("int64"),
            "household_weight": source_household["household_weight"].astype(float),
            "state_fips": source_household["state_fips"].astype("int64"),
        }
    )
    for column in HOUSEHOLD_PASSTHROUGH:
        if column in source_household.columns:
            household[column] = source_household[column].to_numpy()
    tax_unit = candidate.tables["tax_unit"].copy()
    group_tables = {
        "household": household,
        "tax_unit": tax_unit,
        "family": pd.DataFrame({"family_id": np.unique(person["family_id"])}),
        "spm_unit": spm_units(person, tax_unit),
        "marital_unit": pd.DataFrame({"marital_unit_id": np.unique(person["marital_unit_id"])}),
    }
    ordered = [*PERSON_KEYS, *[c for c in person.columns if c not in PERSON_KEYS]]
    return EntityBundle(
        year=candidate.year,
        tables={"person": person[ordered], **group_tables},
        notes={
            "spm_unit": "SPM unit = CPS family (no SPM unit id in the taxcalc file)",
            "marital_unit": "head and spouse share one; every other person alone",
        },
    )


def dense_ids(*keys: pd.Series) -> np.ndarray:
    """Ids 1..n for the distinct key combinations, in sorted key order."""
    frame = pd.DataFrame({f"k{i}": np.asarray(k) for i, k in enumerate(keys)})
    return frame.groupby(list(frame.columns), sort=True).ngroup().to_numpy(dtype="int64") + 1


def spm_units(person: pd.DataFrame, tax_unit: pd.DataFrame) -> pd.DataFrame:
    """SPM units with pre-subsidy child care: the sum of their tax units' reported expenses."""
    units = pd.DataFrame({"spm_unit_id": np.unique(person["spm_unit_id"])})
    if "childcare_expenses_reported" in tax_unit.columns:
        spm_of_unit = person.groupby("tax_unit_id")["spm_unit_id"].first()
        spending = (
            tax_unit.set_index("tax_unit_id")["childcare_expenses_reported"]
            .groupby(spm_of_unit)
            .sum()
        )
        units["spm_unit_pre_subsidy_childcare_expenses"] = (
            units["spm_unit_id"].map(spending).fillna(0.0).to_numpy()
        )
    return units


def bundle_integrity(bundle: EntityBundle) -> tuple[list[str], dict[str, Any]]:
    """Failures (each naming the entity and problem) and metrics of id/link integrity."""
    failures: list[str] = []
    metrics: dict[str, Any] = {}
    person = bundle.person
    for entity in ENTITIES:
        table = bundle.tables[entity]
        key = f"{entity}_id"
        duplicates = int(table[key].duplicated().sum())
        metrics[f"{entity}_records"] = int(len(table))
        if duplicates:
            failures.append(f"{entity}: {duplicates} duplicate {key}")
        if entity == "person":
            continue
        known = table[key]
        dangling = int((~person[key].isin(known)).sum())
        empty = int((~known.isin(person[key])).sum())
        metrics[f"person_{key}_dangling"] = dangling
        metrics[f"{entity}_without_persons"] = empty
        if dangling:
            failures.append(f"person.{key}: {dangling} persons point to no {entity}")
        if empty:
            failures.append(f"{entity}: {empty} units have no persons")
    for entity in ("tax_unit", "family", "spm_unit", "marital_unit"):
        spans = person.groupby(f"{entity}_id")["household_id"].nunique()
        crossing = int((spans > 1).sum())
        metrics[f"{entity}_crossing_households"] = crossing
        if crossing:
            failures.append(f"{entity}: {crossing} units span more than one household")
    if "role" in person.columns:
        heads = person[person["role"] == "head"].groupby("tax_unit_id").size()
        bad_heads = int(
            (heads.reindex(bundle.tables["tax_unit"]["tax_unit_id"]).fillna(0) != 1).sum()
        )
        metrics["tax_units_without_one_head"] = bad_heads
        if bad_heads:
            failures.append(f"tax_unit: {bad_heads} units without exactly one head")
    weights = bundle.household["household_weight"]
    bad_weights = int((~np.isfinite(weights) | (weights < 0)).sum())
    metrics["household_weight_invalid"] = bad_weights
    if bad_weights:
        failures.append(f"household.household_weight: {bad_weights} negative or non-finite")
    return failures, metrics
