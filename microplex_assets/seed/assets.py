"""Stage 4 asset: the seed frame of one partition cell."""

from typing import Any

import pandas as pd
from dagster import AssetExecutionContext, MetadataValue

from microplex_assets.partitions import product_geography_partitions
from microplex_assets.plots import grouped_bar_png, png_markdown, save_png
from microplex_assets.seed.seed import build_seed
from microplex_assets.source_plan.plan import SourcePlan
from microplex_assets.sources.frame import ObservationFrame
from microplex_assets.stage_asset import context_cell, stage_asset, stage_metadata, table_metadata
from microplex_resources.artifact_store import ArtifactStore


@stage_asset("seed", partitions_def=product_geography_partitions)
def seed_frame(
    context: AssetExecutionContext,
    run_profile: dict[str, Any],
    source_plan: SourcePlan,
    cps_source_frame: ObservationFrame,
    artifact_store: ArtifactStore,
) -> ObservationFrame:
    """Scaffold households with canonical features (state, head age group, income bracket,
    recipient flags), stratified-sampled to the product size with certainty strata for the
    income top and rare programs; weights ratio-adjusted to keep stratum totals."""
    cell = context_cell(context)
    frames = {cps_source_frame.source: cps_source_frame}
    scaffold = frames[source_plan.scaffold]
    seed, report = build_seed(
        scaffold,
        households=run_profile["national_households"],
        seed=run_profile["seeds"]["sampling"],
        state_fips=cell.state_fips,
    )
    by_bracket = pd.DataFrame(report.pop("by_income_bracket"))
    png = grouped_bar_png(
        by_bracket[["income_bracket", "scaffold_weighted_m", "seed_weighted_m"]],
        "income_bracket",
        "Weighted households by household income: scaffold vs sample",
        "households (millions)",
    )
    chart = save_png(
        png, artifact_store.work_dir(cell.product, cell.geography) / "seed_income_brackets.png"
    )
    context.log.info(
        f"seed: {report['households_out']:,} of {report['households_in']:,} households "
        f"({report['certainty']:,} with certainty)"
    )
    context.add_output_metadata(
        stage_metadata(
            "seed",
            row_counts=MetadataValue.json({e: len(t) for e, t in seed.tables.items()}),
            sampling=MetadataValue.json(report),
            donors=MetadataValue.json(source_plan.donors),
            by_income_bracket=table_metadata(by_bracket),
            income_bracket_chart=MetadataValue.md(png_markdown(png, "income brackets")),
            chart_path=MetadataValue.path(str(chart)),
        )
    )
    return seed
