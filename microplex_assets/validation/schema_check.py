"""The blocking schema gate on the work H5 (``dataset_h5_schema_compatible``).

Static checks first (``publication.schema_gate.check_h5_schema``: ids, links, dtypes,
enums, variable set, weights); then the file's baseline simulation, in forked slices of
whole states (``baseline_pass``), from which income tax, household net income and SPM
poverty are computed as ``check_microsimulation`` computes them on a whole-file
simulation. The same simulation is the stage-9 aggregates' and the benchmark suite's
baseline, so the gate adds no simulation to the build. The check lives in stage 9's
package because that is where the baseline's readers are.
"""

from pathlib import Path
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    asset_check,
)

from microplex_assets.partitions import product_geography_partitions
from microplex_assets.publication.capital_gains_lots import load_capital_gains_lots
from microplex_assets.publication.schema_gate import check_h5_schema, check_microsimulation
from microplex_assets.stage_asset import table_metadata
from microplex_assets.validation.baseline_pass import published_baseline, suite_context
from microplex_resources.build_settings import BuildSettings
from microplex_resources.policyengine_runtime import PolicyEngineRuntime


@asset_check(
    asset=AssetKey("dataset_h5"),
    blocking=True,
    partitions_def=product_geography_partitions,
    description=(
        "H5 loads in policyengine-us; ids, links, weights, dtypes and enum values valid; "
        "only PE input variables; income_tax, household_net_income and SPM poverty compute "
        "for every household (simulated in slices of whole states)."
    ),
)
def schema_compatible(
    context: AssetCheckExecutionContext,
    dataset_h5: dict[str, Any],
    policyengine: PolicyEngineRuntime,
    build_settings: BuildSettings,
) -> AssetCheckResult:
    path = Path(dataset_h5["path"])
    year = int(dataset_h5["export"]["year"])
    static = check_h5_schema(path, policyengine.system(), year)
    metadata: dict[str, Any] = {**static.metrics, "failures": MetadataValue.json(static.failures)}
    if not static.passed:
        metadata["summary"] = f"{len(static.failures)} schema failures: {static.failures[:3]}"
        return AssetCheckResult(passed=False, severity=AssetCheckSeverity.ERROR, metadata=metadata)
    baseline = published_baseline(
        path,
        year,
        policyengine,
        suite_context(
            load_capital_gains_lots(Path(dataset_h5["lots_path"])), policyengine.system()
        ),
        path.parent / "baseline_slices",
        build_settings.microsim_slice_households,
        progress=context.log.info,
    )
    simulation = check_microsimulation(path, year, lambda _: baseline)
    metadata.update(simulation)
    metadata["simulation"] = f"sliced: {len(baseline.slices)} slices of whole states"
    metadata["microsimulation_seconds"] = baseline.seconds
    metadata["slices"] = table_metadata(pd.DataFrame(baseline.slices).astype({"states": str}))
    for name, message in baseline.reader_errors.items():
        metadata[f"reader_error_{name}"] = message
    passed = bool(simulation.get("finite", False))
    poverty = (
        f"SPM poverty {simulation['spm_poverty_rate']:.1%}"
        if "spm_poverty_rate" in simulation
        else f"SPM poverty FAILED: {simulation.get('spm_poverty_error')}"
    )
    metadata["summary"] = (
        f"{len(static.failures)} schema failures; income tax "
        f"${simulation['income_tax_total_bn']:,.1f}bn, household net income "
        f"${simulation['household_net_income_total_bn']:,.1f}bn; {poverty}"
    )
    context.log.info(f"schema gate: {metadata['summary']} ({baseline.seconds:.0f}s)")
    return AssetCheckResult(passed=passed, severity=AssetCheckSeverity.ERROR, metadata=metadata)
