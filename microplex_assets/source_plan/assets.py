"""Stage 3 asset: the source plan of one partition cell."""

from typing import Any

from dagster import AssetExecutionContext, MetadataValue

from microplex_assets.partitions import product_geography_partitions
from microplex_assets.source_plan.plan import SourcePlan, plan_sources
from microplex_assets.sources.frame import ObservationFrame
from microplex_assets.stage_asset import context_cell, stage_asset, stage_metadata, table_metadata


@stage_asset("source_plan", partitions_def=product_geography_partitions)
def source_plan(
    context: AssetExecutionContext, run_profile: dict[str, Any], cps_source_frame: ObservationFrame
) -> SourcePlan:
    """Which source is the scaffold and why, which are donors, and who covers which variable."""
    context_cell(context)
    frames = {cps_source_frame.source: cps_source_frame}
    plan = plan_sources(frames)
    context.log.info(f"scaffold: {plan.scaffold}; donors: {plan.donors or 'none configured'}")
    context.add_output_metadata(
        stage_metadata(
            "source_plan",
            scaffold=plan.scaffold,
            donors=MetadataValue.json(plan.donors),
            reasons=MetadataValue.md("\n".join(f"- {r}" for r in plan.reasons)),
            coverage=table_metadata(plan.coverage, max_rows=200),
            profile_providers=len(run_profile["providers"]),
        )
    )
    return plan
