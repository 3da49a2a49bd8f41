"""Stage 5 asset: the candidate population of one partition cell."""

from typing import Any

from dagster import AssetExecutionContext, MetadataValue

from microplex_assets.candidate.backends import enforce_support, run_backend
from microplex_assets.partitions import STATE_FIPS, product_geography_partitions
from microplex_assets.sources.frame import ObservationFrame
from microplex_assets.stage_asset import context_cell, stage_asset, stage_metadata

DEFAULT_BACKEND = "seed_passthrough"


@stage_asset("candidate", partitions_def=product_geography_partitions)
def candidate_population(
    context: AssetExecutionContext, run_profile: dict[str, Any], seed_frame: ObservationFrame
) -> ObservationFrame:
    """The population handed to entity construction and calibration, with its support report."""
    cell = context_cell(context)
    backend = run_profile.get("synthesis_backend", DEFAULT_BACKEND)
    candidate = run_backend(backend, seed_frame)
    required = STATE_FIPS.values() if cell.state_fips is None else [cell.state_fips]
    support = enforce_support(candidate, required)
    context.log.info(f"candidate via {backend}: every required state present ({support})")
    context.add_output_metadata(
        stage_metadata(
            "candidate",
            backend=backend,
            support_enforcement=MetadataValue.json(support),
            row_counts=MetadataValue.json({e: len(t) for e, t in candidate.tables.items()}),
        )
    )
    return candidate
