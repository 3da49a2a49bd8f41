"""Stage 4 asset: the seed frame of one partition cell."""

from typing import Any

import pandas as pd
from dagster import AssetExecutionContext, MetadataValue

from microplex_assets.partitions import product_geography_partitions
from microplex_assets.plots import grouped_bar_png, png_markdown, save_png
from microplex_assets.seed.asset_imputation import AssetImputationConfig, impute_assets
from microplex_assets.seed.donor_inputs import imputing_self_employment
from microplex_assets.seed.donor_integration import DonorIntegrationConfig, integrate_tax_donor
from microplex_assets.seed.seed import build_local_seed, build_seed
from microplex_assets.source_plan.plan import SourcePlan
from microplex_assets.source_plan.reuse import check_targets
from microplex_assets.sources.frame import ObservationFrame
from microplex_assets.stage_asset import context_cell, stage_asset, stage_metadata, table_metadata
from microplex_assets.targets.model import TargetSet
from microplex_resources.artifact_store import ArtifactStore


@stage_asset("seed", partitions_def=product_geography_partitions)
def seed_frame(
    context: AssetExecutionContext,
    run_profile: dict[str, Any],
    source_plan: SourcePlan,
    cps_source_frame: ObservationFrame,
    calibration_targets: TargetSet,
    artifact_store: ArtifactStore,
) -> ObservationFrame:
    """Scaffold households with canonical features (state, head age group, income bracket,
    recipient flags), stratified-sampled to the product size with certainty strata for the
    income top and rare programs; weights ratio-adjusted to keep stratum totals. A local
    shard samples its state's records and borrows households from similar states (state
    reassigned, reported) for any state target band its own records leave short."""
    cell = context_cell(context)
    check_targets(calibration_targets, run_profile)  # a stored registry of another year
    frames = {cps_source_frame.source: cps_source_frame}
    if source_plan.scaffold not in frames:
        raise ValueError(
            f"source plan chose scaffold '{source_plan.scaffold}' but the seed stage builds "
            f"from {sorted(frames)} only; expected the plan to rank a source the seed reads"
        )
    scaffold = frames[source_plan.scaffold]
    extra: dict[str, Any] = {}
    if cell.state_calibrated:
        seed, report = build_local_seed(
            scaffold,
            cell.geography,
            cell.state_fips,
            households=run_profile["households"],
            seed=run_profile["seeds"]["sampling"],
            target_set=calibration_targets,
            min_support=run_profile["local_support"]["min_support"],
        )
        support = pd.DataFrame(report.pop("support"))
        extra["support_borrowing"] = table_metadata(support)
        extra["households_borrowed"] = report["households_borrowed"]
        context.log.info(
            f"support: {report['households_borrowed']} households borrowed from similar "
            f"states for {int((support['households_borrowed'] > 0).sum())} short targets"
        )
    else:
        seed, report = build_seed(
            scaffold, households=run_profile["households"], seed=run_profile["seeds"]["sampling"]
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
            **extra,
        )
    )
    return seed


@stage_asset("seed", partitions_def=product_geography_partitions)
def integrated_seed(
    context: AssetExecutionContext,
    run_profile: dict[str, Any],
    seed_frame: ObservationFrame,
    tax_donor_frame: ObservationFrame,
    asset_donor_frame: ObservationFrame,
    artifact_store: ArtifactStore,
) -> ObservationFrame:
    """The seed with the tax donor's variables imputed onto each tax unit's head by a
    quantile regression forest (a random quantile per unit, so distributions and zero
    shares carry over, not just medians); scaffold-authoritative variables are kept.
    Evidence: held-out donor rows' pinball loss vs a hot-deck and no imputation. Then bank,
    stock and bond assets and net worth for every household from the asset donor by the
    same forest (evidence: holding rates and medians vs the published SCF table)."""
    cell = context_cell(context)
    settings = run_profile["donor_integration"]
    if not settings["enabled"]:
        context.log.info("donor integration off: only assets are imputed")
        frame, assets = with_assets(context, run_profile, seed_frame, asset_donor_frame)
        context.add_output_metadata(
            stage_metadata("seed", skipped="donor_integration is off", **assets)
        )
        return frame
    # The evidence (donor hold-out pinball loss) does not depend on the cell: national|US
    # computes it; a local shard points there instead of refitting it 51 times.
    config = DonorIntegrationConfig(
        seed=run_profile["seeds"]["sampling"], evidence=not cell.state_calibrated
    )
    source = settings.get("self_employment", "scaffold")
    if source != "scaffold":
        config = imputing_self_employment(config, keep_reported=source == "donor_where_unreported")
    context.log.info(
        f"integrating {tax_donor_frame.source} ({tax_donor_frame.provenance.get('kind')}) "
        f"into {len(seed_frame.tables['tax_unit']):,} tax units ..."
    )
    integrated, report = integrate_tax_donor(seed_frame, tax_donor_frame, config)
    integrated, assets = with_assets(context, run_profile, integrated, asset_donor_frame)
    summary = report.summary()
    totals = report.totals
    chart_data = totals[["variable", "scaffold_total", "imputed_total"]].copy()
    chart_data[["scaffold_total", "imputed_total"]] /= 1e9
    png = grouped_bar_png(
        chart_data,
        "variable",
        "Weighted totals before and after donor integration ($bn)",
        "$bn",
    )
    chart = save_png(
        png, artifact_store.work_dir(cell.product, cell.geography) / "donor_totals.png"
    )
    evidence = report.evidence
    context.log.info(
        f"donor integration: {report.units_imputed:,} units from {report.rows_fitted:,} donor "
        f"rows on {report.conditioning} in {sum(report.seconds.values()):.1f}s"
    )
    context.add_output_metadata(
        stage_metadata(
            "seed",
            row_counts=MetadataValue.json({e: len(t) for e, t in integrated.tables.items()}),
            donor=report.donor,
            donor_kind=tax_donor_frame.provenance.get("kind", "unknown"),
            conditioning=MetadataValue.json(summary["conditioning_reasons"]),
            donor_source_per_variable=MetadataValue.json(report.donor_source),
            exclusions=MetadataValue.json(report.exclusions),
            overrides=MetadataValue.json(report.overrides),
            totals_before_after=table_metadata(totals, max_rows=40),
            totals_chart=MetadataValue.md(png_markdown(png, "donor totals")),
            chart_path=MetadataValue.path(str(chart)),
            imputation_evidence=table_metadata(evidence, max_rows=40)
            if evidence is not None
            else "not computed",
            top_tail_placement=MetadataValue.json(
                {k: v for k, v in summary["top_tail"].items() if k != "states"}
            )
            if report.top_tail is not None
            else "off",
            top_tail_by_state=table_metadata(report.top_tail.states, max_rows=110)
            if report.top_tail is not None
            else "off",
            seconds=MetadataValue.json(report.seconds),
            **assets,
        )
    )
    return integrated


def with_assets(
    context: AssetExecutionContext,
    run_profile: dict[str, Any],
    seed: ObservationFrame,
    asset_donor: ObservationFrame,
) -> tuple[ObservationFrame, dict[str, Any]]:
    """The seed with imputed assets and net worth, and the metadata that shows the evidence."""
    config = AssetImputationConfig(seed=run_profile["seeds"]["sampling"])
    frame, report = impute_assets(seed, asset_donor, config)
    context.log.info(
        f"assets: {report.households:,} households from {report.rows_fitted:,} donor records "
        f"({report.donor_kind}); net worth ${report.totals['net_worth_bn'] / 1e3:.1f}tn"
    )
    return frame, {
        "asset_donor": f"{report.donor} ({report.donor_kind}; top tail real SCF 2022)",
        "asset_evidence": table_metadata(report.evidence, max_rows=80),
        "asset_totals": MetadataValue.json(report.totals),
        "asset_notes": MetadataValue.json(report.notes),
    }
