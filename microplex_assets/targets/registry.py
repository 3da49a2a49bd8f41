"""The target registry: every calibration target of a build, resolved to the build year.

Public API::

    resolve_targets(year, system, providers=DEFAULT_PROVIDERS) -> TargetSet
    resolve_targets_with_report(year, system, providers=DEFAULT_PROVIDERS)
        -> tuple[TargetSet, dict]
    registry_report(target_set, skipped) -> dict
    DEFAULT_PROVIDERS, DEFAULT_HELD_OUT_GROUPS, PROVIDERS

``system`` is the policyengine-us tax-benefit system (``policyengine_system()``); it
gives the variables every target is checked against and the uprating indices. Providers
(``PROVIDERS``) are plain functions ``(year, system, skipped) -> list[Target]``:

- ``policyengine_parameters``: facts shipped in policyengine-us
  ``parameters/calibration/gov`` (population, SSI, SNAP, EITC, income tax, Social
  Security, unemployment, SOI totals);
- ``reference_tables``: the public SOI / Census / USDA / CMS tables carried in ``data/``
  (national SOI by AGI band and filing status, state AGI, age, SNAP, EITC, Medicaid);
- ``district_tables``: ACS 2024 people by age x sex, households and SNAP households per
  congressional district (geography ``CA-12``). Not a default provider: nothing records
  a household's district in the H5 yet, so these targets cannot be scored
  (``targets.district_tables`` says how they should be).

Where both give the same fact, the carried SOI table wins (it is banded and a later tax
year) and the parameter is reported as skipped. Every row left out (no PE variable,
duplicate, sign or definition mismatch, outside the covered states) is in the report's
``skipped`` list with its reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from microplex_assets.targets.carried import carried_sources
from microplex_assets.targets.common import Skipped
from microplex_assets.targets.district_tables import district_table_targets
from microplex_assets.targets.model import Target, TargetSet
from microplex_assets.targets.policyengine_parameters import (
    policyengine_parameter_targets,
)
from microplex_assets.targets.reference_tables import reference_table_targets

Provider = Callable[[int, Any, list[Skipped]], list[Target]]

PROVIDERS: dict[str, Provider] = {
    "policyengine_parameters": policyengine_parameter_targets,
    "reference_tables": reference_table_targets,
    "district_tables": district_table_targets,
}
DEFAULT_PROVIDERS: tuple[str, ...] = ("policyengine_parameters", "reference_tables")

# Validation (chooses the epoch; held out whole, never fitted):
# - irs_soi/returns_by_state: the state x AGI-band return counts (geography); the state
#   AGI amounts by band and the national bands stay in training, so the split asks whether
#   the states' return counts follow from them (the local shards hold out the same group).
#   Until 2026-12-03 the AGI amounts were held out instead. That left where the top tail's
#   income lies unconstrained: on build a967b3c2 three households with $25-52m of donor
#   AGI, raised for the national $10m+ wage, pension and dividend targets, put Alaska's,
#   New Mexico's and West Virginia's $1m+ AGI at 11-23x SOI's and carried 88% of the
#   validation loss. Fitting the amounts on that matrix: all-kept loss 0.2976 -> 0.1188
#   (the eCPS method's 0.1663), test 0.4716 -> 0.4775 (README, "Calibration a user can
#   trust, measured", ninth session).
# - irs_soi/charitable_contributions_deductions: an itemized-deduction table (income/
#   program, outside every protected family), implied but not pinned by the other
#   itemizer targets.
DEFAULT_HELD_OUT_GROUPS: tuple[str, ...] = (
    "irs_soi/returns_by_state",
    "irs_soi/charitable_contributions_deductions",
)
# The test split (national|US): whole families no choice ever saw and outside the synthetic
# donor's SOI tables. EITC (IRS Table 2.5 by AGI x children, Historic Table 2 by state,
# Treasury: an income/program family at both levels) and Medicaid enrollment by state
# (CMS: a geography family). Never shown to a solver; the held-out gates judge them.
DEFAULT_TEST_GROUPS: tuple[str, ...] = (
    "irs_soi/eitc_by_agi_and_children",
    "irs_soi/eitc_by_state",
    "treasury/eitc",
    "cms/medicaid_enrollment_by_state",
)
# A local shard fits its state's AGI amounts by band (one of its six target families) and
# holds out the same bands' return counts: a shard that buys its AGI fit with implausible
# weights shows it there (the held-out geography family of each shard).
LOCAL_HELD_OUT_GROUPS: tuple[str, ...] = ("irs_soi/returns_by_state",)


def _collect(
    year: int, system: Any, providers: tuple[str, ...]
) -> tuple[list[Target], list[Skipped]]:
    """Every provider's targets; a fact two providers give is kept once (see docstring)."""
    unknown = [p for p in providers if p not in PROVIDERS]
    if unknown:
        raise ValueError(f"unknown target providers {unknown}; known: {sorted(PROVIDERS)}")
    targets: list[Target] = []
    skipped: list[Skipped] = []
    for provider in providers:
        targets.extend(PROVIDERS[provider](int(year), system, skipped))
    kept = []
    for target in targets:
        winner = target.source.get("superseded_by")
        if winner in providers:
            reason = f"superseded by {winner}, which carries the same fact (banded, later year)"
            table = target.source.get("parameter", target.name)
            skipped.append(Skipped(target.source["provider"], table, target.name, reason))
        else:
            kept.append(target)
    return kept, skipped


def check_targets(targets: list[Target], system: Any) -> None:
    """Every variable exists on PolicyEngine and groups never span two families."""
    problems = []
    for target in targets:
        names = [target.variable, *(f.variable for f in target.filters)]
        problems += [
            f"{target.name}: unknown variable {n}" for n in names if n not in system.variables
        ]
    families: dict[str, set[str]] = {}
    for target in targets:
        families.setdefault(target.group, set()).add(target.family)
    problems += [f"group {g} spans families {sorted(f)}" for g, f in families.items() if len(f) > 1]
    if problems:
        raise ValueError("invalid targets: " + "; ".join(problems[:10]))


def resolve_targets_with_report(
    year: int, system: Any, providers: tuple[str, ...] = DEFAULT_PROVIDERS
) -> tuple[TargetSet, dict[str, Any]]:
    """The build's targets and the coverage report (counts, skipped rows, data hashes)."""
    targets, skipped = _collect(year, system, tuple(providers))
    check_targets(targets, system)
    target_set = TargetSet(tuple(sorted(targets, key=lambda t: t.name)))
    report = registry_report(target_set, skipped)
    report["year"] = int(year)
    report["providers"] = list(providers)
    return target_set, report


def resolve_targets(
    year: int, system: Any, providers: tuple[str, ...] = DEFAULT_PROVIDERS
) -> TargetSet:
    """Every target of the selected providers, each resolved to ``year``."""
    return resolve_targets_with_report(year, system, providers)[0]


def registry_report(target_set: TargetSet, skipped: list[Skipped]) -> dict[str, Any]:
    """Coverage by provider x family x geography level, groups, and what was left out."""
    cells = Counter(
        (t.source.get("provider", "?"), t.family, t.geography_level) for t in target_set
    )
    groups = Counter(t.group for t in target_set)
    reasons = Counter((s.provider, s.table, s.reason) for s in skipped)
    return {
        "content_hash": target_set.content_hash,
        "n_targets": len(target_set),
        "by_provider": dict(Counter(t.source.get("provider", "?") for t in target_set)),
        "by_family": dict(sorted(Counter(t.family for t in target_set).items())),
        "by_geography_level": dict(Counter(t.geography_level for t in target_set)),
        "coverage": [
            {"provider": p, "family": f, "geography_level": g, "targets": n}
            for (p, f, g), n in sorted(cells.items())
        ],
        "groups": dict(sorted(groups.items())),
        "held_out_groups": {g: groups.get(g, 0) for g in DEFAULT_HELD_OUT_GROUPS},
        "test_groups": {g: groups.get(g, 0) for g in DEFAULT_TEST_GROUPS},
        "n_skipped": len(skipped),
        "skipped_summary": [
            {"provider": p, "table": t, "reason": r, "rows": n}
            for (p, t, r), n in sorted(reasons.items())
        ],
        "skipped": [s.as_dict() for s in skipped],
        "data_files": carried_sources(),
    }
