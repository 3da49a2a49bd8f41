"""Stage 2 assets: validated ObservationFrames, one per source.

Sources are not partitioned: the CPS frame is the same for every product and
geography, so a local backfill reads it once instead of 51 times.
"""

import time
from pathlib import Path

from dagster import AssetExecutionContext, MetadataValue

from microplex_assets.sources.cps_taxcalc import load_taxcalc_cps
from microplex_assets.sources.frame import ObservationFrame
from microplex_assets.stage_asset import stage_asset, stage_metadata, table_metadata
from microplex_resources.build_settings import BuildSettings
from microplex_resources.policyengine_runtime import PolicyEngineRuntime


@stage_asset("sources")
def cps_source_frame(
    context: AssetExecutionContext,
    build_settings: BuildSettings,
    policyengine: PolicyEngineRuntime,
) -> ObservationFrame:
    """Real CPS-derived tax units from taxcalc, rebuilt into households, tax units and persons.

    Amounts are uprated to the build year with PolicyEngine's own uprating indices.
    """
    started = time.perf_counter()
    context.log.info("loading taxcalc CPS (280,005 tax units) and rebuilding persons")
    frame = load_taxcalc_cps(
        year=build_settings.year,
        seed=build_settings.seed,
        system=policyengine.system(),
        cps_path=Path(build_settings.cps_path) if build_settings.cps_path else None,
        weights_path=Path(build_settings.cps_weights_path)
        if build_settings.cps_weights_path
        else None,
    )
    seconds = time.perf_counter() - started
    counts = {entity: len(table) for entity, table in frame.tables.items()}
    context.log.info(f"CPS frame ready in {seconds:.1f}s: {counts}")
    coverage = frame.coverage()
    context.add_output_metadata(
        stage_metadata(
            "sources",
            row_counts=MetadataValue.json(counts),
            link_validity=MetadataValue.json(frame.link_report()),
            provenance=MetadataValue.json(frame.provenance),
            kind=frame.provenance.get("kind", "unknown"),
            coverage=table_metadata(coverage, max_rows=200),
            seconds=round(seconds, 1),
        )
    )
    return frame
