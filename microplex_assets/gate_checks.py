"""Blocking gate checks that say "not applicable" instead of "Passed" where a gate has
nothing to judge (``beats_national_fallback`` on national|US, the benchmark suite's gates
with the suite off).

Dagster 1.13 has no "not applicable" check result: ``AssetCheckResult`` is passed or
failed. A check declared in a ``multi_asset_check`` with ``can_subset=True`` may emit no
result; its execution then stays planned and the UI shows it as **Skipped** (a grey dot,
never a green "Passed"), and Dagster lets downstream steps proceed (it logs that the
blocking check emitted no result). The reason is logged here and kept in the gate tables
of the asset's metadata and the loss record (status ``not_applicable``).
"""

# No ``from __future__ import annotations``: Dagster checks the context annotation itself.
from collections.abc import Callable, Iterator
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSpec,
    AssetIn,
    AssetsDefinition,
    multi_asset_check,
)

from microplex_assets.partitions import product_geography_partitions

# value of the asset -> the check's result, or a str: why the gate does not apply here
GateEvaluation = Callable[[Any], AssetCheckResult | str]
NOT_APPLICABLE = "not applicable"


def blocking_gate_check(
    asset: AssetsDefinition, name: str, description: str, evaluate: GateEvaluation
) -> Any:
    """A blocking, partitioned check on ``asset`` named ``name`` that emits ``evaluate``'s
    result, or nothing (UI: Skipped) with the logged reason when it returns a str."""
    (asset_key,) = asset.keys
    spec = AssetCheckSpec(
        name,
        asset=asset_key,
        blocking=True,
        description=description,
        partitions_def=product_geography_partitions,
    )

    @multi_asset_check(
        specs=[spec],
        can_subset=True,
        name=f"{asset_key.path[-1]}__{name}",
        ins={"value": AssetIn(key=asset_key)},
    )
    def _check(context: AssetCheckExecutionContext, value: Any) -> Iterator[AssetCheckResult]:
        verdict = evaluate(value)
        if isinstance(verdict, str):
            context.log.info(f"{name}: {NOT_APPLICABLE} for this cell ({verdict}); no result")
            return
        yield AssetCheckResult(
            asset_key=asset_key,
            check_name=name,
            passed=verdict.passed,
            severity=verdict.severity,
            metadata=verdict.metadata,
            description=verdict.description,
        )

    return _check
