"""Stage 3 asset: the source plan of one partition cell."""

from collections.abc import Iterator
from typing import Any

from dagster import AssetExecutionContext, MetadataValue, Output

from microplex_assets.partitions import product_geography_partitions
from microplex_assets.source_plan.plan import SourcePlan, plan_sources
from microplex_assets.source_plan.reuse import check_source_frames
from microplex_assets.sources.frame import ObservationFrame
from microplex_assets.stage_asset import context_cell, stage_asset, stage_metadata, table_metadata


# Not required: a derived cell (national|<state>, local|US) yields no plan, so Dagster
# skips the whole record chain for it and its derived-bundle asset runs instead.
@stage_asset("source_plan", partitions_def=product_geography_partitions, output_required=False)
def source_plan(
    context: AssetExecutionContext,
    run_profile: dict[str, Any],
    cps_source_frame: ObservationFrame,
    tax_donor_frame: ObservationFrame,
    top_wealth_frame: ObservationFrame,
    survey_source_frames: dict[str, ObservationFrame],
) -> Iterator[Output[SourcePlan]]:
    """Which source is the scaffold and why, which are donors, which is the fixed spine, and
    who covers which variable. Derived cells have no records to plan: nothing is yielded."""
    cell = context_cell(context)
    if cell.derived:
        context.log.info(
            f"{cell.label} is derived from {run_profile['derived_from'][0]}"
            f"{' and the other shards' if len(run_profile['derived_from']) > 1 else ''}: "
            "the record chain is skipped; see the derived bundle asset"
        )
        return
    # Stored unpartitioned frames (a backfill reuses them) must be this run's.
    check_source_frames(
        run_profile, cps_source_frame, tax_donor_frame, top_wealth_frame, survey_source_frames
    )
    frames = {
        frame.source: frame
        for frame in (cps_source_frame, tax_donor_frame, *survey_source_frames.values())
    }
    frames[top_wealth_frame.source] = top_wealth_frame
    plan = plan_sources(frames, spine_sources=frozenset({top_wealth_frame.source}))
    kinds = {name: frame.provenance.get("kind", "unknown") for name, frame in frames.items()}
    context.log.info(
        f"scaffold: {plan.scaffold}; donors: {plan.donors or 'none'}; spine: {plan.spine}"
    )
    yield Output(
        plan,
        metadata=stage_metadata(
            "source_plan",
            scaffold=plan.scaffold,
            donors=MetadataValue.json(plan.donors),
            spine=MetadataValue.json(plan.spine),
            source_kinds=MetadataValue.json(kinds),
            rejected_as_scaffold=MetadataValue.json(plan.rejected),
            reasons=MetadataValue.md("\n".join(f"- {r}" for r in plan.reasons)),
            coverage=table_metadata(plan.coverage, max_rows=200),
            profile_providers=len(run_profile["providers"]),
        ),
    )
