"""Which households a benchmark reform can change (the manifest's ``touches``).

Households are independent in PolicyEngine, so a reform is simulated only on the
households its rule names; the rest keep their baseline values. Every rule must be a
*necessary* condition for a household's results to change: a household left out must
compute exactly what a whole-file simulation under the reform gives it
(``tests/validation/test_microsim_suite.py`` checks this reform by reform).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from microplex_assets.calibration.simulation_arrays import SimulationArrays

SSI_RESOURCE_LIMITS = "gov.ssa.ssi.eligibility.resources.limit"
# policyengine-us 2.68 files that read the SSI resource limits. Each compares a sum of
# co-resident household members' ``ssi_countable_resources`` (or the smaller
# ``ssi_resources_for_deeming``) with a limit, as ``sum <= limit`` or
# ``max(0, sum - limit)``: the basis of the ``ssi_resources_above_limit`` rule.
# ``tests/validation/test_microsim_touches.py`` fails when this list goes stale.
SSI_LIMIT_READERS: tuple[str, ...] = (
    "variables/gov/ssa/ssi/eligibility/resources/meets_ssi_resource_test.py",
    "variables/gov/ssa/ssi/eligibility/resources/deemed/"
    "ssi_resources_deemed_from_ineligible_parent.py",
    "variables/gov/states/nh/dhhs/ssp/nh_ssp_resources_deemed_from_parents.py",
    "variables/gov/states/oh/dbh/rss/oh_rss.py",
    "variables/gov/states/md/dhs/fia/paa/md_paa_eligible.py",
    "variables/gov/states/nc/ncdhhs/sa/nc_sa_eligible.py",
    "variables/gov/states/va/dars/ag/va_ag_eligible.py",
)


def ssi_resource_floor(system: Any, year: int) -> float:
    """The lowest current-law SSI resource limit (individual or couple) in any month of
    ``year``: a household whose members' countable resources total no more than this
    meets every SSI resource comparison under current law and under any higher limit."""
    limits = system.parameters.get_child(SSI_RESOURCE_LIMITS)
    return float(
        min(
            limits(f"{year}-{month:02d}-01")[kind]
            for month in range(1, 13)
            for kind in ("individual", "couple")
        )
    )


def _ssi_resources_above_limit(arrays: SimulationArrays) -> np.ndarray:
    """Per-person mask: the member's household holds more countable SSI resources (the
    positive parts, summed) than the current-law floor.

    Why this is safe for a reform that only raises the SSI resource limits: every reader
    of the limits (``SSI_LIMIT_READERS``) compares a sum over members of one household
    (the person, a spouse, a marital unit, co-resident parents and their spouses) of
    ``ssi_countable_resources`` or ``ssi_resources_for_deeming`` (at most the former,
    never negative) with a limit. That sum is at most the household's sum of positive
    parts; when this is at or under the current-law floor, ``sum <= limit`` holds and
    ``max(0, sum - limit)`` is zero under both the old and the raised limits, so no value
    in the household changes.
    """
    resources = np.clip(arrays.values("ssi_countable_resources", "person"), 0, None)
    person_household = arrays.household_position("person")
    totals = np.bincount(person_household, weights=resources, minlength=len(arrays.household_ids))
    floor = ssi_resource_floor(arrays.system, arrays.year)
    return (totals > floor)[person_household]


# Person inputs and formulas that admit someone to a program reading the SSI resource test:
# SSI itself and the CA / MA supplements, OH RSS and VA AG (``is_ssi_aged_blind_disabled``),
# NH's SSP (aged, blind, or ``meets_ssi_disability_criteria`` before the SGA screen), NC SA
# (SSI receipt or aged/blind/disabled) and MD PAA (SSI or SSDI receipt, or aged/blind/
# disabled). Parent deeming changes only a disabled or blind child's own SSI test.
SSI_CATEGORICAL_VARIABLES: tuple[str, ...] = (
    "is_ssi_aged_blind_disabled",
    "meets_ssi_disability_criteria",
    "social_security_disability",
    "receives_ssi",
)


def _ssi_categorical(arrays: SimulationArrays) -> np.ndarray:
    """Per-person mask: the member's household holds someone a program that reads the SSI
    resource test could admit (``SSI_CATEGORICAL_VARIABLES``, any nonzero value).

    Why this is safe: every reader of the resource limits (``SSI_LIMIT_READERS``) feeds an
    eligibility that also requires one of these statuses of the person it pays; a
    household without such a member computes the same zero under any limit.
    """
    person_household = arrays.household_position("person")
    categorical = np.zeros(len(person_household), dtype=bool)
    for name in SSI_CATEGORICAL_VARIABLES:
        categorical |= arrays.values(name, "person").astype(float) > 0
    reached = np.bincount(person_household, weights=categorical.astype(float))
    return (reached > 0)[person_household]


def _tax_units_mask(arrays: SimulationArrays, unit_mask: np.ndarray) -> np.ndarray:
    """Per-person mask: the person's tax unit is one of ``unit_mask``."""
    person_units = arrays.values("tax_unit_id", "person").astype(np.int64)
    unit_ids = arrays.values("tax_unit_id", "tax_unit").astype(np.int64)
    return np.isin(person_units, unit_ids[unit_mask])


def touchable_households(touches: str, arrays: SimulationArrays) -> np.ndarray:
    """Household ids a reform of this kind can change; the others keep baseline values.

    Conservative by design: a household is kept when any member could be reached.
    """
    ids = arrays.household_ids.astype(np.int64)
    if touches == "all":
        return ids
    if touches == "ssi_eligible":
        person_mask = arrays.values("is_ssi_aged_blind_disabled", "person").astype(bool)
    elif touches == "ssi_resources_above_limit":
        person_mask = _ssi_resources_above_limit(arrays)
    elif touches == "ssi_categorical_resources_above_limit":
        person_mask = _ssi_resources_above_limit(arrays) & _ssi_categorical(arrays)
    elif touches == "has_children":
        person_mask = arrays.values("age", "person") < 18
    elif touches == "childless_adults":
        person_mask = _tax_units_mask(
            arrays,
            (arrays.values("eitc_child_count", "tax_unit") == 0)
            & (arrays.values("tax_unit_earned_income", "tax_unit") > 0),
        )
    elif touches == "long_term_gains":
        person_mask = arrays.values("long_term_capital_gains_before_response", "person") > 0
    else:
        raise ValueError(f"unknown 'touches' value {touches!r} in the benchmark manifest")
    person_household = arrays.household_position("person")
    reached = np.bincount(person_household, weights=person_mask.astype(float), minlength=len(ids))
    return ids[reached > 0]
