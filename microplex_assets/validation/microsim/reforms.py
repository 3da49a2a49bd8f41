"""Manifest reforms as objects PolicyEngine runs.

A parametric reform becomes a policyengine-core ``Reform`` (``Reform.from_dict``), the
same object a policyengine-us user passes as ``reform=``. A structural reform rewrites one
input variable; ``STRUCTURAL_REFORMS`` names that variable and the function computing its
new per-person values, so the runner needs no knowledge of any particular reform.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import pandas as pd

from microplex_assets.validation.microsim.indexation import (
    INDEXED_VARIABLE,
    apply_indexation,
    policyengine_cpi_u,
)

if TYPE_CHECKING:
    from microplex_assets.calibration.simulation_arrays import SimulationArrays
    from microplex_assets.validation.microsim.manifest import BenchmarkManifest, BenchmarkReform
    from microplex_assets.validation.microsim.outputs import SimulationResults


class StructuralReform(TypedDict):
    """``apply(baseline, person_ids, context)`` returns the new values of ``variable``.

    ``baseline`` is the variable's dataset values for every person (aligned with
    ``person_ids``); ``context`` carries what the reform needs beyond the H5 (``needs``).
    """

    variable: str
    entity: str
    description: str
    needs: tuple[str, ...]
    cash_unchanged: bool  # the input is a tax measure, not cash: impacts add the change back
    apply: Callable[[np.ndarray, np.ndarray, Mapping[str, Any]], np.ndarray]


def _capital_gains_indexation(
    baseline: np.ndarray, person_ids: np.ndarray, context: Mapping[str, Any]
) -> np.ndarray:
    """Context: ``lots`` (the dataset's capital-gain lots) and ``cpi`` (date -> CPI-U), or
    ``system`` to read CPI-U from ``gov.bls.cpi.cpi_u``."""
    lots = context.get("lots")
    if lots is None:
        raise KeyError(
            "structural reform 'capital_gains_indexation' needs context['lots'] "
            "(the dataset's lots, microplex_assets.publication.capital_gains_lots)"
        )
    if "cpi" in context:
        cpi = context["cpi"]
    elif "system" in context:
        cpi = policyengine_cpi_u(context["system"])
    else:
        raise KeyError(
            "structural reform 'capital_gains_indexation' needs context['cpi'] "
            "(date -> CPI-U) or context['system'] (to read gov.bls.cpi.cpi_u)"
        )
    return apply_indexation(baseline, person_ids, lots, cpi)


STRUCTURAL_REFORMS: dict[str, StructuralReform] = {
    "capital_gains_indexation": {
        "variable": INDEXED_VARIABLE,
        "entity": "person",
        "description": (
            "Long-term lots' basis scaled by CPI-U(sale)/CPI-U(acquisition); positive "
            "long-term gains lowered by the basis increase, never below zero."
        ),
        "needs": ("lots", "cpi or system"),
        "cash_unchanged": True,
        "apply": _capital_gains_indexation,
    },
}


def _resolve(system: Any, path: str) -> str | None:
    """None when ``path`` is a leaf parameter of ``system``; else why not."""
    from policyengine_core.parameters import Parameter

    try:
        node = system.parameters.get_child(path)
    except (ValueError, KeyError, AttributeError, IndexError):
        return "not found"
    if not isinstance(node, Parameter):
        return f"is a {type(node).__name__}, not a leaf parameter"
    return None


def check_paths(manifest: BenchmarkManifest, system: Any) -> list[str]:
    """One line per parametric change whose path is not a leaf parameter of ``system``.

    Leaves only: updating a breakdown node (e.g. a filing-status table) or a scale would
    either fail or silently miss values, so every leaf must be written out.
    """
    problems = []
    for reform in manifest.reforms:
        for path in dict.fromkeys(change.path for change in reform.changes):
            problem = _resolve(system, path)
            if problem:
                problems.append(f"{reform.id}: {path} {problem}")
    return problems


def parametric_reform(reform: BenchmarkReform, system: Any) -> type:
    """The policyengine-core ``Reform`` class for a parametric manifest reform.

    Paths are checked against ``system`` first, so a bad path fails here with the reform's
    id rather than deep inside a simulation build.
    """
    from policyengine_core.reforms import Reform

    if reform.kind != "parametric":
        raise ValueError(f"reform '{reform.id}' is {reform.kind}, not parametric")
    problems = [
        f"{change.path} {problem}"
        for change in reform.changes
        if (problem := _resolve(system, change.path))
    ]
    if problems:
        raise ValueError(f"reform '{reform.id}': {'; '.join(problems)}")
    values: dict[str, dict[str, Any]] = {}
    for change in reform.changes:
        values.setdefault(change.path, {})[change.period] = change.value
    return Reform.from_dict(values, country_id="us", name=reform.id)


def poverty_with_cash_restored(
    resources: np.ndarray,
    thresholds: np.ndarray,
    spm_unit_ids: np.ndarray,
    person_spm_unit_ids: np.ndarray,
    removed_per_person: np.ndarray,
) -> np.ndarray:
    """Person SPM-poverty flags after a ``cash_unchanged`` reform, with the cash restored.

    PolicyEngine computes SPM resources (``spm_unit_net_income``) from the rewritten input,
    so a unit whose taxable gain indexation lowered looks poorer although its sale proceeds
    did not change. Poverty is ``resources < threshold`` (policyengine-us 2.68
    ``spm_unit_is_in_spm_poverty``); here the person-level amount the reform took out is
    summed per SPM unit and added back before the comparison, so only the reform's tax
    change moves a unit's poverty status.
    """
    restored = (
        pd.Series(np.asarray(removed_per_person, dtype=float))
        .groupby(np.asarray(person_spm_unit_ids))
        .sum()
        .reindex(np.asarray(spm_unit_ids), fill_value=0.0)
        .to_numpy()
    )
    poor = pd.Series(
        np.asarray(resources, dtype=float) + restored < np.asarray(thresholds, dtype=float),
        index=np.asarray(spm_unit_ids),
    )
    return poor.reindex(np.asarray(person_spm_unit_ids)).to_numpy(dtype=bool)


def restore_cash(
    arrays: SimulationArrays, results: SimulationResults, removed: np.ndarray
) -> pd.Series:
    """A ``cash_unchanged`` reform's household add-back; fixes ``results``' poverty flags.

    ``arrays`` are the reform simulation's, the ones ``results`` came from (their person
    ids and household links are cached there already). Net income is restored later
    (``ReformRun.impact_results``); poverty is judged here on SPM resources with the
    removed amount restored (``poverty_with_cash_restored``).
    """
    results.person["in_poverty"] = poverty_with_cash_restored(
        arrays.values("spm_unit_net_income", "spm_unit"),
        arrays.values("spm_unit_spm_threshold", "spm_unit"),
        arrays.values("spm_unit_id", "spm_unit"),
        arrays.values("spm_unit_id", "person"),
        removed,
    )
    members = arrays.values("household_id", "person").astype(np.int64)
    return pd.Series(removed).groupby(members).sum()
