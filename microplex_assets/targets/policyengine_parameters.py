"""Provider ``policyengine_parameters``: facts policyengine-us ships under
``parameters/calibration/gov/``, read through ``system.parameters``.

Only facts with a clear PolicyEngine variable become targets. The value is the
parameter's value on 1 January of the build year (as PolicyEngine's own calibration reads
it). Where that value is one PolicyEngine *extended* with its parameter uprating (the
YAML declares an earlier year), the declared year is the fact year and the ratio is the
recorded factor; where the parameter has no value for the build year, the last declared
value is uprated with the index given here. Every other leaf under ``calibration.gov`` is
reported as skipped, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from microplex_assets.targets.aggregate_uprating import (
    POPULATION_INDEX,
    AggregateIndex,
    Uprater,
    total_index,
    variable_index,
)
from microplex_assets.targets.common import Skipped
from microplex_assets.targets.model import Target, TargetFilter

PROVIDER = "policyengine_parameters"
ROOT = "calibration.gov"
CBO = "Congressional Budget Office"
IRS_SOI = "IRS Statistics of Income"
REFERENCE_TABLES = "reference_tables"


@dataclass(frozen=True)
class ParameterFact:
    """One parameter and how a simulation computes the same number.

    ``index``: an aggregate index, or a variable whose PolicyEngine index to borrow; used
    only when PolicyEngine has no value for the build year. ``superseded_by``: a provider
    whose table carries the same fact (the registry keeps that one when both run).
    """

    path: str
    name: str
    group: str
    agency: str
    variable: str
    aggregation: str
    entity: str
    scope: str
    family: str
    index: AggregateIndex | str
    filters: tuple[TargetFilter, ...] = field(default_factory=tuple)
    superseded_by: str = ""


def _soi(leaf: str, variable: str, family: str, superseded: bool = True) -> ParameterFact:
    """An IRS SOI national total: filer-only tax-unit sum, same naming as the SOI tables."""
    return ParameterFact(
        path=f"{ROOT}.irs.soi.{leaf}",
        name=f"irs_soi/{leaf}/sum/agi_all/all_statuses",
        group=f"irs_soi/{leaf}",
        agency=IRS_SOI,
        variable=variable,
        aggregation="sum",
        entity="tax_unit",
        scope="filer",
        family=family,
        index=variable,
        superseded_by=REFERENCE_TABLES if superseded else "",
    )


def _total(leaf: str, agency: str, variable: str, entity: str, scope: str, family: str,
           group: str = "") -> ParameterFact:  # fmt: skip
    """A national dollar total (outlays, receipts): grows with its own series."""
    path = f"{ROOT}.{leaf}"
    prefix, name = leaf.split(".")[0], leaf.rsplit(".", 1)[-1]
    return ParameterFact(
        path=path,
        name=f"{prefix}/{name}/sum/US",
        group=group or f"{prefix}/{name}",
        agency=agency,
        variable=variable,
        aggregation="sum",
        entity=entity,
        scope=scope,
        family=family,
        index=total_index(path, "the parameter's own series"),
    )


def _people(leaf: str, name: str, group: str, agency: str, variable: str, scope: str,
            family: str) -> ParameterFact:  # fmt: skip
    """A head count of people (recipients or population): grows with population."""
    return ParameterFact(
        path=f"{ROOT}.{leaf}",
        name=name,
        group=group,
        agency=agency,
        variable=variable,
        aggregation="count",
        entity="person",
        scope=scope,
        family=family,
        index=POPULATION_INDEX,
    )


SSA = "Social Security Administration"
FACTS: tuple[ParameterFact, ...] = (
    _people("census.populations.total", "cbo/population/count/US", "cbo/population", CBO,
            "person_count", "population", "population"),
    # SSI: recipients are a COUNT of people with ssi > 0; outlays are a SUM of dollars.
    _people("ssa.ssi.participation", "ssa/ssi/count/US", "ssa/ssi_recipients", SSA, "ssi",
            "recipient", "ssi"),
    _total("cbo.ssi", CBO, "ssi", "person", "population", "ssi", group="cbo/ssi_outlays"),
    _total("cbo.snap", CBO, "snap", "spm_unit", "spm_unit", "snap", group="cbo/snap_outlays"),
    _people("usda.snap.participation", "usda/snap/count/US", "usda/snap_participants",
            "USDA Food and Nutrition Service", "snap", "recipient", "snap"),
    _total("treasury.tax_expenditures.eitc", "US Department of the Treasury", "eitc",
           "tax_unit", "tax_unit", "eitc"),
    _total("cbo.income_tax", CBO, "income_tax", "tax_unit", "tax_unit", "income_tax"),
    _total("cbo.social_security", CBO, "social_security", "person", "population",
           "social_security"),
    _people("ssa.social_security.participation", "ssa/social_security/count/US",
            "ssa/social_security_beneficiaries", SSA, "social_security", "recipient",
            "social_security"),
    _total("cbo.unemployment_compensation", CBO, "unemployment_compensation", "person",
           "population", "unemployment"),
    # SOI totals with no banded counterpart in the carried SOI table.
    _soi("alimony_income", "alimony_income", "other", superseded=False),
    _soi("farm_income", "farm_income", "other", superseded=False),
    _soi("farm_rent_income", "farm_rent_income", "other", superseded=False),
    _soi("long_term_capital_gains", "long_term_capital_gains", "capital_gains", superseded=False),
    # SOI totals that soi_targets.csv (reference_tables) has by AGI band for a later tax
    # year, directly or as the difference of two of its columns: used only without it.
    _soi("employment_income", "irs_employment_income", "wages"),
    _soi("self_employment_income", "self_employment_income", "self_employment"),
    _soi("partnership_s_corp_income", "partnership_s_corp_income", "partnership_s_corp"),
    _soi("qualified_dividend_income", "qualified_dividend_income", "dividends"),
    _soi("non_qualified_dividend_income", "non_qualified_dividend_income", "dividends"),
    _soi("taxable_interest_income", "taxable_interest_income", "interest"),
    _soi("tax_exempt_interest_income", "tax_exempt_interest_income", "interest"),
    _soi("taxable_pension_income", "taxable_pension_income", "retirement_income"),
    _soi("tax_exempt_pension_income", "tax_exempt_pension_income", "retirement_income"),
    _soi("rental_income", "rental_income", "other"),
    _soi("social_security", "social_security", "social_security"),
    _soi("unemployment_compensation", "unemployment_compensation", "unemployment"),
)  # fmt: skip

# Leaves under calibration.gov (by prefix) deliberately not used, and why.
SKIPPED_PREFIXES: dict[str, str] = {
    f"{ROOT}.census.populations.by_state": (
        "values are attached to the wrong states in this policyengine-us version (e.g. CA "
        "6.9M, MA 39.5M); Census state populations come from population_by_state.csv"
    ),
    f"{ROOT}.cbo.income_by_source": (
        "CBO projections of AGI components are the uprating indices of the SOI amounts; "
        "targeting them as well would count the SOI facts twice"
    ),
    f"{ROOT}.cbo.payroll_taxes": (
        "fiscal-year receipts including the employer share; no single PE variable"
    ),
    f"{ROOT}.irs.soi.agi": "same SOI Table 1.1 bands as soi_targets.csv (later year kept)",
    f"{ROOT}.irs.soi.returns_by_filing_status": (
        "same SOI Table 1.2 counts as soi_targets.csv (later year kept)"
    ),
    f"{ROOT}.irs.soi.short_term_capital_gains": (
        "a PUF-derived estimate, not a published SOI figure"
    ),
    f"{ROOT}.hhs.medicaid.totals.enrollment": (
        "KFF Medicaid+CHIP enrollment: includes CHIP, which medicaid_enrolled does not; "
        "Medicaid-only enrollment comes from medicaid_enrollment_2024.csv"
    ),
    f"{ROOT}.hhs.medicaid": (
        "spending / per-capita cost / enrollment by eligibility group: no target family "
        "for them yet (medicaid value is an imputed per-capita cost)"
    ),
    f"{ROOT}.hhs.cms": "CHIP and premium series: no target family for them yet",
    f"{ROOT}.hhs.medicare": "Medicare per-capita cost: no target family for it yet",
    f"{ROOT}.aca": (
        "ACA marketplace enrollment includes unsubsidized enrollees (no PE variable); "
        "spending could use aca_ptc but no ACA target family exists yet"
    ),
}


@cache
def _yaml(path: str) -> Any:
    with open(path) as handle:
        return yaml.safe_load(handle)


def declared_instants(parameter: Any) -> list[str]:
    """Instants the parameter's YAML file declares (not ones PolicyEngine extended)."""
    data = _yaml(parameter.file_path)
    # The file's own dotted path; keys below it (e.g. a state) lead to the parameter.
    stem = Path(parameter.file_path).with_suffix("").as_posix()
    node = stem.split("/parameters/", 1)[-1].replace("/", ".")
    for key in parameter.name[len(node) :].split(".")[1:]:
        data = data[key]
    if isinstance(data, dict) and "values" in data:
        data = data["values"]
    return sorted(str(key) for key in data if str(key)[:4].isdigit())


def _reference(parameter: Any) -> tuple[str, str]:
    references = parameter.metadata.get("reference") or []
    if references:
        return str(references[-1].get("title", "")), str(references[-1].get("href", ""))
    return str(parameter.description or parameter.name), ""


def _pe_uprating_label(parameter: Any) -> str:
    meta = parameter.metadata.get("uprating")
    return str(meta.get("parameter") if isinstance(meta, dict) else meta)


def resolve_parameter(
    system: Any, fact: ParameterFact, uprater: Uprater
) -> tuple[float, dict[str, Any]]:
    """The fact's value in the build year and the ``source`` keys saying where it came from."""
    parameter = system.parameters.get_child(fact.path)
    instant = f"{uprater.year}-01-01"
    entries = sorted(parameter.values_list, key=lambda e: e.instant_str)
    entry = ([e for e in entries if e.instant_str <= instant] or entries[:1])[-1]
    declared = declared_instants(parameter)
    earlier = [d for d in declared if d <= entry.instant_str]
    if earlier:  # the declared value in force, possibly extended by PolicyEngine since
        fact_instant, value, base_year = earlier[-1], float(entry.value), int(entry.instant_str[:4])
    else:  # build year before the first declared value: bring that one back ourselves
        fact_instant = declared[0]
        value, base_year = float(parameter(fact_instant)), int(fact_instant[:4])
    fact_value = float(parameter(fact_instant))
    pe_factor = value / fact_value if fact_value else 1.0
    title, href = _reference(parameter)
    source: dict[str, Any] = {
        "provider": PROVIDER, "agency": fact.agency, "table": title, "parameter": fact.path,
        "reference_url": href, "year": int(fact_instant[:4]), "reported_value": fact_value,
    }  # fmt: skip
    index = (
        fact.index if isinstance(fact.index, AggregateIndex) else variable_index(system, fact.index)
    )
    ours = uprater.record(index, base_year)
    if pe_factor != 1.0:
        then = f", then {ours['uprating_index']}" if base_year != uprater.year else ""
        source["uprating_index"] = _pe_uprating_label(parameter) + then
        source["uprating_method"] = "policyengine parameter uprating"
        source["uprating_factor"] = pe_factor * ours["uprating_factor"]
    else:
        source.update(ours)
    return value * ours["uprating_factor"], source


def policyengine_parameter_targets(
    year: int, system: Any, skipped: list[Skipped] | None = None
) -> list[Target]:
    """Targets from PolicyEngine's calibration parameters, resolved to ``year``.

    Facts ``superseded_by`` another provider are returned too (with that key in
    ``source``); the registry drops them when that provider also runs.
    """
    skipped = [] if skipped is None else skipped
    uprater = Uprater(system, year)
    targets = []
    for fact in FACTS:
        if fact.variable not in system.variables:
            skipped.append(Skipped(PROVIDER, fact.path, fact.name,
                                   f"PE lacks variable {fact.variable}"))  # fmt: skip
            continue
        value, source = resolve_parameter(system, fact, uprater)
        if fact.superseded_by:
            source["superseded_by"] = fact.superseded_by
        targets.append(Target(
            name=fact.name, value=value, period=uprater.year, variable=fact.variable,
            aggregation=fact.aggregation, entity=fact.entity, scope=fact.scope,
            geography="US", family=fact.family, group=fact.group, source=source,
            filters=fact.filters,
        ))  # fmt: skip
    skipped.extend(unused_parameters(system))
    return targets


def unused_parameters(system: Any) -> list[Skipped]:
    """One skip record per parameter node under calibration.gov that no fact uses."""
    used = {fact.path for fact in FACTS}
    by_reason: dict[tuple[str, str], int] = {}
    for parameter in system.parameters.get_child(ROOT).get_descendants():
        name = parameter.name
        if not hasattr(parameter, "values_list") or name in used:
            continue
        if parameter.metadata.get("derived_from"):
            continue  # per-capita siblings PolicyEngine builds from the totals above
        prefix = next((p for p in SKIPPED_PREFIXES if name == p or name.startswith(p + ".")),
                      None)  # fmt: skip
        if prefix is None:
            key = (name.rsplit(".", 1)[0], "no clear PE variable mapped in this registry")
        else:
            key = (prefix, SKIPPED_PREFIXES[prefix])
        by_reason[key] = by_reason.get(key, 0) + 1
    return [
        Skipped(PROVIDER, node, f"{count} parameter(s) under {node}", reason)
        for (node, reason), count in sorted(by_reason.items())
    ]
