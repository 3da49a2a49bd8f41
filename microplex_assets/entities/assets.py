"""Stage 6 asset and its blocking integrity check."""

from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    MetadataValue,
    asset_check,
)

from microplex_assets.entities.build import build_entity_bundle, bundle_integrity
from microplex_assets.entities.bundle import EntityBundle
from microplex_assets.partitions import product_geography_partitions
from microplex_assets.sources.frame import ObservationFrame
from microplex_assets.stage_asset import context_cell, stage_asset, stage_metadata
from microplex_resources.policyengine_runtime import PolicyEngineRuntime, is_input_variable


def pe_input_report(bundle: EntityBundle, system) -> dict[str, dict[str, int]]:
    """Per entity: columns that are PolicyEngine input variables on that entity, and the rest."""
    report = {}
    for entity, table in bundle.tables.items():
        inputs = sum(is_input_variable(system, column, entity) for column in table.columns)
        report[entity] = {"columns": int(table.shape[1]), "pe_inputs": inputs}
    return report


@stage_asset("entities", partitions_def=product_geography_partitions)
def entity_bundle(
    context: AssetExecutionContext,
    run_profile: dict[str, Any],
    candidate_population: ObservationFrame,
    policyengine: PolicyEngineRuntime,
) -> EntityBundle:
    """Household, person, tax_unit, spm_unit, family and marital_unit tables with id links;
    each household's county is drawn within its state with the run's sampling seed."""
    context_cell(context)
    bundle = build_entity_bundle(candidate_population, seed=run_profile["seeds"]["sampling"])
    counts = bundle.counts()
    context.log.info(f"entity bundle: {counts}")
    context.add_output_metadata(
        stage_metadata(
            "entities",
            row_counts=MetadataValue.json(counts),
            pe_inputs=MetadataValue.json(pe_input_report(bundle, policyengine.system())),
            construction_notes=MetadataValue.json(bundle.notes),
        )
    )
    return bundle


@asset_check(
    asset=entity_bundle,
    blocking=True,
    partitions_def=product_geography_partitions,
    description=(
        "Ids unique, every link resolves, no empty unit, one head per tax unit and per "
        "household, every county in its household's state."
    ),
)
def entity_links_intact(
    context: AssetCheckExecutionContext, entity_bundle: EntityBundle
) -> AssetCheckResult:
    failures, metrics = bundle_integrity(entity_bundle)
    return AssetCheckResult(
        passed=not failures,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            **metrics,
            "failures": MetadataValue.json(failures),
            "summary": f"{metrics['person_records']:,} persons, {len(failures)} link failures",
        },
    )
