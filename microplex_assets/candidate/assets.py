"""Stage 5 asset: the candidate population of one partition cell."""

from typing import Any

from dagster import AssetExecutionContext, MetadataValue

from microplex_assets.candidate.make import make_candidate
from microplex_assets.geography.states import STATE_FIPS
from microplex_assets.partitions import product_geography_partitions
from microplex_assets.sources.frame import ObservationFrame
from microplex_assets.stage_asset import context_cell, stage_asset, stage_metadata

DEFAULT_BACKEND = "seed_passthrough"


@stage_asset("candidate", partitions_def=product_geography_partitions)
def candidate_population(
    context: AssetExecutionContext,
    run_profile: dict[str, Any],
    integrated_seed: ObservationFrame,
    top_wealth_frame: ObservationFrame,
) -> ObservationFrame:
    """The population handed to entity construction and calibration: the backend's records,
    support enforced per state (borrowed records reported), then the fixed top-tail spine
    appended (fixed weights, never a donor, taken out of the targets in calibration)."""
    cell = context_cell(context)
    backend = run_profile.get("synthesis_backend", DEFAULT_BACKEND)
    required = STATE_FIPS.values() if cell.state_fips is None else [cell.state_fips]
    candidate, report = make_candidate(
        integrated_seed,
        backend,
        run_profile["seeds"]["sampling"],
        required,
        top_wealth_frame if run_profile["spine"]["enabled"] else None,
        cell.state_fips,
    )
    spine = report["spine"]
    context.log.info(
        f"candidate via {backend}: {len(candidate.tables['household']):,} households, "
        f"{report['support_enforcement'].get('records_added', 0)} borrowed for support, "
        f"{spine['records']} spine records"
    )
    context.add_output_metadata(
        stage_metadata(
            "candidate",
            backend=backend,
            support_enforcement=MetadataValue.json(report["support_enforcement"]),
            spine=MetadataValue.json(spine),
            row_counts=MetadataValue.json({e: len(t) for e, t in candidate.tables.items()}),
        )
    )
    return candidate
