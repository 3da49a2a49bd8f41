"""Stage 6: build the six PolicyEngine entity tables from the candidate population.

The CPS scaffold knows households, tax units, persons and each tax unit's family
position. PolicyEngine also needs families, SPM units and marital units:
- family: the household's CPS family (``family_position``);
- SPM unit: the scaffold's own SPM unit where it carries one (the CPS ASEC's ``SPM_ID``),
  else the CPS family (the taxcalc file carries no SPM unit identifier and no relationship
  to the householder; the census SPM unit adds cohabiting partners, their relatives and
  foster children to the family, so cohabiting partners here are units of their own: see
  SPM_FINDINGS.md for what that costs), made measurable by PolicyEngine;
- marital unit: head and spouse together, every other person alone.

Measurable SPM units. policyengine-us 2.68 prices an SPM threshold only for units
with at least one "classified adult" and otherwise raises ``SPMInputError: SPM unit
has no classified adult`` for the whole file (``spm_calculator/policyengine_adapter.py``
``spm_measurement_adults``: ``age >= 18 or (age >= 15 and
is_spm_independent_minor_role)``, that role defaulting to ``is_household_head |
is_household_spouse``). The taxcalc CPS has families of minors only (tax-unit heads
under 18 in a CPS family of their own, such as foster or unrelated children) and no
source for an independence or emancipation flag (its ``DSI`` is 0 even for infants),
so none is invented. Instead:
- an adult-less family joins the household's lowest-position family holding an
  adult (position 1 is the CPS primary family, the householder's), as the census
  SPM unit puts unrelated and foster children with the householder's unit;
- a household of minors only (19 in the CPS file) has a householder among them (see
  below), aged 15+, who counts as an SPM adult, and the household becomes one SPM unit.
  A household with nobody 15+ cannot be measured; ``bundle_integrity`` fails it.

Household head. Every household gets exactly one ``is_household_head``: the CPS
householder, the first person of the household's first family, i.e. the head (line 0)
of the lowest tax unit (taxcalc numbers a household's tax units in CPS line order) of
the lowest ``family_position`` (1, the CPS primary family). The CPS householder is 15 or
older, so members under 15 are passed over (in a household of minors only the head is
the first member aged 15+). Any incoming ``is_household_head`` is replaced.

County. policyengine-us measures SPM poverty by county by default and raises
``SPM_GEOGRAPHY_REQUIRED`` without ``county_fips``; the scaffold knows only the state.
Each household gets a ``county_fips`` drawn within its state by population share (ACS
2024 district populations x P(county | district), ``microplex_assets.geography``), from
``numpy.random.default_rng(seed)``: an assignment, not an observation.

Sex, receipt and take-up. ``is_female`` is imputed from the SSA population by age, sex and
marital status (``demographics.py``: the CPS file has no sex); SPM-unit receipt flags,
``receives_wic``, ``is_self_employed`` and the take-up inputs (reported recipients first,
then draws to published take-up rates) are set by ``takeup.py``; take-up of programs the
file reports no receipt of (EITC, ACA, DC property tax credit, Head Start, Early Head Start)
is drawn at published rates by ``tax_takeup.py``; ``is_separated`` and
``own_children_in_household`` come from the tax units (``family.py``). The congressional
district is drawn within the drawn county (``geography/districts.py``). Section 199A
qualification flags and ``business_is_sstb`` are drawn at the eCPS's stated assumptions
(``qbi.py``).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.constants import FIXED_FLAG
from microplex_assets.entities.bundle import ENTITIES, GROUP_ENTITIES, EntityBundle
from microplex_assets.entities.demographics import assign_is_female
from microplex_assets.entities.family import add_family_inputs
from microplex_assets.entities.filing import add_voluntary_filing
from microplex_assets.entities.qbi import add_qbi_inputs
from microplex_assets.entities.rent import add_rent
from microplex_assets.entities.takeup import add_program_inputs
from microplex_assets.entities.tax_takeup import add_drawn_take_up
from microplex_assets.entities.tenure import add_tenure, ownership_known
from microplex_assets.geography import assign_counties
from microplex_assets.geography.district_assignment import district_geoids
from microplex_assets.sources.frame import ObservationFrame

PERSON_KEYS = ("person_id", *(f"{e}_id" for e in GROUP_ENTITIES))
# Candidate columns that describe how a record was built, not the person.
PERSON_DIAGNOSTICS = ("family_position", "role", "line_in_tax_unit")
# Household columns carried into the bundle when the candidate has them: a PolicyEngine
# input (net worth, set on the spine) and the fixed-weight flag calibration reads.
HOUSEHOLD_PASSTHROUGH = ("net_worth", FIXED_FLAG)
# PolicyEngine's SPM adult classification (spm_calculator ``spm_measurement_adults``).
ADULT_AGE = 18
HEAD_MIN_AGE = 15
# A scaffold's own SPM unit id on persons (cps_asec: SPM_ID), used when every person has one.
SCAFFOLD_SPM = "spm_unit_id"


def build_entity_bundle(candidate: ObservationFrame, *, seed: int = 0) -> EntityBundle:
    """Six entity tables with consistent integer ids; persons ordered head, spouse, dependents.

    ``seed`` drives the county draw (the run profile's sampling seed in the asset).
    """
    person = candidate.tables["person"].sort_values(
        ["household_id", "tax_unit_id", "line_in_tax_unit"]
    )
    person = person.reset_index(drop=True)
    # Group ids are numbered 1..n: PolicyEngine holds family_id as float32, which loses
    # whole numbers above 2**24, so composite ids (household * 100 + position) collide.
    family_position = person["family_position"].fillna(1).astype("int64")
    person["family_id"] = dense_ids(person["household_id"], family_position)
    person["is_household_head"] = householders(person, family_position)
    minor_heads = int((person["is_household_head"] & (person["age"] < ADULT_AGE)).sum())
    minors_only = int((person.groupby("household_id")["age"].max() < ADULT_AGE).sum())
    spm_source = (
        "the scaffold's SPM units (SPM_ID)"
        if SCAFFOLD_SPM in person.columns and person[SCAFFOLD_SPM].notna().all()
        else "CPS family (no SPM unit id in the scaffold)"
    )
    person["spm_unit_id"] = measurable_spm_unit_ids(person)
    folded = folded_families(person)
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
    household["county_fips"] = assign_counties(household, seed).to_numpy()
    household["congressional_district_geoid"] = district_geoids(household, seed).to_numpy()
    tax_unit = candidate.tables["tax_unit"].copy()
    filing_status = (
        tax_unit.set_index("tax_unit_id")["filing_status"]
        if "filing_status" in tax_unit.columns
        else pd.Series(dtype="int64")
    )
    person["is_female"], sexes = assign_is_female(person, filing_status, candidate.year, seed)
    family = add_family_inputs(person, filing_status)
    spm_unit = spm_units(person, tax_unit)
    programs = add_program_inputs(
        person, tax_unit, spm_unit, household, seed, scaffold_source(candidate.source)
    )
    drawn = add_drawn_take_up(person, tax_unit, household, seed)
    filing = add_voluntary_filing(person, tax_unit, household)
    tenure = add_tenure(person, tax_unit, spm_unit, household, seed)
    rent = add_rent(person, household, ownership_known(tax_unit, household))
    qbi = add_qbi_inputs(person, seed)
    group_tables = {
        "household": household,
        "tax_unit": tax_unit,
        "family": pd.DataFrame({"family_id": np.unique(person["family_id"])}),
        "spm_unit": spm_unit,
        "marital_unit": pd.DataFrame({"marital_unit_id": np.unique(person["marital_unit_id"])}),
    }
    ordered = [*PERSON_KEYS, *[c for c in person.columns if c not in PERSON_KEYS]]
    return EntityBundle(
        year=candidate.year,
        tables={"person": person[ordered], **group_tables},
        notes={
            "spm_unit": (
                f"SPM unit = {spm_source}; "
                f"{folded} families without an adult joined the household's primary "
                f"adult family; {minor_heads} households are headed by a member aged "
                f"15-17, who counts as an SPM adult ({minors_only} households of minors "
                "only)"
            ),
            "household_head": (
                "is_household_head = the CPS householder: the head of the lowest tax unit "
                "of the household's first family (family_position 1), passing over members "
                "under 15; exactly one per household"
            ),
            "county_fips": (
                "assigned, not observed: drawn within the household's state by population "
                "share, ACS 2024 S0101 district populations x P(county | congressional "
                f"district) (policyengine-us-data), numpy default_rng(seed={seed})"
            ),
            "congressional_district_geoid": (
                "assigned, not observed: drawn within the household's county by the "
                "district's share of the county's population (same tables), numpy "
                f"default_rng([seed={seed}, crc32('congressional_district_geoid')])"
            ),
            "marital_unit": "head and spouse share one; every other person alone",
            "is_female": (
                "imputed, not observed (the taxcalc CPS has no sex): SSA 2024 Trustees "
                "Report population by age, sex and marital status; joint filers' head and "
                "spouse of opposite sex, P(head female) from both ages; numpy "
                f"default_rng([seed={seed}, crc32('is_female')]): {sexes}"
            ),
            "take_up": (
                "reported recipients take up; others drawn to the program's take-up rate "
                "(weighted; eCPS rates with sources in entities/data/take_up_rates.csv); "
                f"housing take-up = reported receipt: {programs}"
            ),
            "family": (
                "is_separated = head of a married-filing-separately unit; "
                "own_children_in_household = the unit's dependents under 18, on head and "
                f"spouse (entities/family.py): {family}"
            ),
            "drawn_take_up": (
                "EITC (by EITC children), ACA, DC property tax credit, Head Start and Early "
                "Head Start: no receipt in the file, every unit drawn at the published rate "
                f"(entities/tax_takeup.py): {drawn}"
            ),
            "would_file_taxes_voluntarily": (
                "assigned by rule, not observed: a tax unit files without having to when a "
                "member has wages or taxable pension income, which are withheld at source "
                f"(entities/filing.py; SOI low-AGI return counts): {filing}"
            ),
            "qbi": (
                "eCPS stated assumption, not data: Section 199A qualification of "
                "self-employment, rental and partnership/S-corp income and SSTB status drawn "
                "at policyengine-us-data's qbi_assumptions.yaml probabilities "
                f"(entities/qbi.py): {qbi}"
            ),
            "tenure_type": (
                "household and SPM-unit tenure: owner where a tax unit reports ownership "
                "(taxcalc e18500 > 0: CPS h_tenure), else renter; owners' mortgage status drawn by "
                "householder age at Census ACS free-and-clear shares "
                f"(entities/tenure.py): {tenure}"
            ),
            "pre_subsidy_rent": (
                "assigned, not observed (the taxcalc CPS has no rent): renter householders pay "
                "12 x their district's ACS 2023 median gross rent of 2-bedroom units "
                f"(entities/rent.py): {rent}"
            ),
            "receives_wic": "members under 5 of WIC-reporting tax units, else the woman "
            "head/spouse, else the head",
        },
    )


def dense_ids(*keys: pd.Series) -> np.ndarray:
    """Ids 1..n for the distinct key combinations, in sorted key order."""
    frame = pd.DataFrame({f"k{i}": np.asarray(k) for i, k in enumerate(keys)})
    return frame.groupby(list(frame.columns), sort=True).ngroup().to_numpy(dtype="int64") + 1


def classified_adults(person: pd.DataFrame, heads: np.ndarray | None = None) -> np.ndarray:
    """Persons PolicyEngine counts as SPM adults: 18+, or 15+ and household head."""
    age = person["age"].to_numpy(dtype=float)
    if heads is None:
        heads = household_heads(person)
    return (age >= ADULT_AGE) | ((age >= HEAD_MIN_AGE) & heads)


def household_heads(person: pd.DataFrame) -> np.ndarray:
    """The ``is_household_head`` flags (False where the column is absent)."""
    if "is_household_head" not in person.columns:
        return np.zeros(len(person), dtype=bool)
    return person["is_household_head"].fillna(False).to_numpy(dtype=bool)


def householders(person: pd.DataFrame, family_position: pd.Series) -> np.ndarray:
    """One ``is_household_head`` per household: the CPS householder.

    The first person aged 15+ (the CPS householder minimum) in CPS order: family position,
    then tax unit, then line in the tax unit, so the head of the first family's first tax
    unit. A household with nobody 15+ gets its first person (it stays unmeasurable:
    PolicyEngine counts a head as an SPM adult only from 15).
    """
    order = pd.DataFrame(
        {
            "household": person["household_id"].to_numpy(),
            "under_min_age": person["age"].to_numpy(dtype=float) < HEAD_MIN_AGE,
            "position": np.asarray(family_position),
            "tax_unit": person["tax_unit_id"].to_numpy(),
            "line": person["line_in_tax_unit"].to_numpy(),
        }
    )
    first = order.sort_values(list(order.columns), kind="stable").groupby("household").head(1)
    heads = np.zeros(len(person), dtype=bool)
    heads[first.index.to_numpy()] = True
    return heads


def scaffold_source(source: str) -> str:
    """The scaffold's source name inside a derived frame's name
    (``candidate<seed<cps_taxcalc>>`` -> ``cps_taxcalc``)."""
    names = re.findall(r"[A-Za-z0-9_]+", source)
    return names[-1] if names else ""


def measurable_spm_unit_ids(person: pd.DataFrame) -> np.ndarray:
    """SPM unit ids 1..n: the scaffold's own SPM units where it has them (the CPS ASEC's
    ``SPM_ID``: the Census unit, cohabiting partners and foster children included), else each
    family; units without an adult folded into the household's lowest unit holding one."""
    base = pd.Series(person["family_id"].to_numpy())
    if SCAFFOLD_SPM in person.columns and person[SCAFFOLD_SPM].notna().all():
        own = dense_ids(person["household_id"], person[SCAFFOLD_SPM].astype("int64"))
        # Order units by their lowest family, so the primary family's unit comes first.
        first_family = pd.Series(base.to_numpy()).groupby(own).transform("min")
        base = pd.Series(dense_ids(first_family, own))
    has_adult = pd.Series(classified_adults(person)).groupby(base).transform("any")
    primary = base.where(has_adult).groupby(person["household_id"].to_numpy()).transform("min")
    target = base.where(has_adult, primary).fillna(base).astype("int64")
    return dense_ids(target)


def folded_families(person: pd.DataFrame) -> int:
    """Families that share an SPM unit with an earlier family (folded into it)."""
    return int((person.groupby("spm_unit_id")["family_id"].nunique() - 1).sum())


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
    if {"age", "family_id"} <= set(person.columns):
        metrics["spm_units_folded"] = folded_families(person)
        adults = pd.Series(classified_adults(person)).groupby(person["spm_unit_id"].to_numpy())
        unmeasurable = int((~adults.any()).sum())
        metrics["spm_units_without_classified_adult"] = unmeasurable
        if unmeasurable:
            failures.append(
                f"spm_unit: {unmeasurable} units have no member PolicyEngine counts as an "
                "adult (18+, or 15+ household head); SPM poverty cannot compute"
            )
    if "is_household_head" in person.columns:
        heads = person["is_household_head"].astype(bool).groupby(person["household_id"]).sum()
        heads = heads.reindex(bundle.household["household_id"]).fillna(0)
        bad_heads = int((heads != 1).sum())
        metrics["households_without_one_head"] = bad_heads
        if bad_heads:
            failures.append(f"household: {bad_heads} households without exactly one head")
    if "county_fips" in bundle.household.columns:
        county = bundle.household["county_fips"].astype(str)
        state = bundle.household["state_fips"].astype("int64").map("{:02d}".format)
        outside = int((~county.str.fullmatch(r"\d{5}") | (county.str[:2] != state)).sum())
        metrics["county_fips_outside_state"] = outside
        if outside:
            failures.append(
                f"household.county_fips: {outside} not a 5-digit FIPS in the household's state"
            )
    weights = bundle.household["household_weight"]
    bad_weights = int((~np.isfinite(weights) | (weights < 0)).sum())
    metrics["household_weight_invalid"] = bad_weights
    if bad_weights:
        failures.append(f"household.household_weight: {bad_weights} negative or non-finite")
    return failures, metrics
