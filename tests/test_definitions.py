"""The code location loads, and every asset honours its stage contract."""

from dagster import AssetKey, Definitions, MultiPartitionKey

from definitions import defs
from microplex_assets.partitions import (
    local_us_partitions,
    national_state_partitions,
    product_geography_partitions,
)
from microplex_assets.stages import STAGES

EXPECTED_ASSETS = {
    "run_profile": "run_profile",
    "cps_source_frame": "sources",
    "tax_donor_frame": "sources",
    "asset_donor_frame": "sources",
    "top_wealth_frame": "sources",
    "survey_source_frames": "sources",
    "source_plan": "source_plan",
    "seed_frame": "seed",
    "integrated_seed": "seed",
    "candidate_population": "candidate",
    "entity_bundle": "entities",
    "calibration_targets": "calibration",
    "target_matrix": "calibration",
    "ecps_baseline_weights": "calibration",
    "calibrated_weights": "calibration",
    "pinned_baseline_scores": "calibration",
    "calibration_scorecard": "calibration",
    "donor_ablation": "calibration",
    "dataset_h5": "publication",
    "published_dataset": "publication",
    "national_state_fallback": "publication",
    "local_rich_fanin": "publication",
    "national_aggregates_report": "validation",
    "microsim_benchmarks": "validation",
    "current_release": "validation",
    "run_index": "validation",
    "readiness_dashboard": "validation",
}
# The same for every cell: a 51-shard backfill computes them once.
UNPARTITIONED = {
    "cps_source_frame",
    "tax_donor_frame",
    "asset_donor_frame",
    "top_wealth_frame",
    "survey_source_frames",
    "calibration_targets",
}
# Derived cells: each on its sub-grid of the same two dimensions.
DERIVED = {
    "national_state_fallback": national_state_partitions,
    "local_rich_fanin": local_us_partitions,
}
# Reported, not computed: the current national|US bundle the shards read.
EXTERNAL = {"national_us_release"}
BLOCKING_CHECKS = {
    ("entity_bundle", "entity_links_intact"),
    ("calibrated_weights", "weights_valid"),
    ("dataset_h5", "schema_compatible"),
    ("calibration_scorecard", "target_loss_below_baseline"),
    ("calibration_scorecard", "protected_families_hold"),
    ("calibration_scorecard", "held_out_loss_below_baseline"),
    ("calibration_scorecard", "beats_national_fallback"),
    ("national_aggregates_report", "bundle_complete"),
    ("microsim_benchmarks", "microsim_benchmarks_hold"),
    ("microsim_benchmarks", "runtime_within_budget"),
    ("microsim_benchmarks", "artifact_size_within_budget"),
}


def test_definitions_validate():
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == set(EXPECTED_ASSETS) | EXTERNAL
    assert not any(graph.get(AssetKey(name)).is_executable for name in EXTERNAL)


def test_every_asset_sits_in_its_stage_group_with_the_stage_description():
    graph = defs.resolve_asset_graph()
    by_number = {stage.group: stage for stage in STAGES}
    for name, group in EXPECTED_ASSETS.items():
        node = graph.get(AssetKey(name))
        assert node.group_name == group, name
        assert node.description.startswith(by_number[group].description), name
        assert node.metadata["stage"] == by_number[group].number
        assert "dagster/code_references" in node.metadata, name


def test_all_nine_stage_groups_have_assets():
    groups = set(EXPECTED_ASSETS.values())
    assert groups == {stage.group for stage in STAGES}
    assert [stage.number for stage in STAGES] == list(range(1, 10))


def test_partitioned_assets_share_the_product_geography_grid():
    graph = defs.resolve_asset_graph()
    for name in EXPECTED_ASSETS:
        node = graph.get(AssetKey(name))
        if name in UNPARTITIONED:
            assert node.partitions_def is None  # one frame / registry serves every cell
        elif name in DERIVED:
            assert node.partitions_def == DERIVED[name], name
        else:
            assert node.partitions_def == product_geography_partitions, name


def test_release_gates_are_blocking_checks():
    graph = defs.resolve_asset_graph()
    found = set()
    for check_key in graph.asset_check_keys:
        spec = graph.get_check_spec(check_key)
        if spec.blocking:
            found.add((check_key.asset_key.to_user_string(), check_key.name))
    assert found >= BLOCKING_CHECKS


def key(product: str, geography: str) -> MultiPartitionKey:
    return MultiPartitionKey({"product": product, "geography": geography})


def test_derived_cells_depend_on_the_cells_they_are_made_from():
    """The cross-cell order is in the graph: Dagster maps each derived cell to its parents."""
    graph = defs.resolve_asset_graph()
    published = AssetKey("published_dataset")
    fallback = graph.get_parents_partitions(
        AssetKey("national_state_fallback"), key("national", "CA")
    )
    assert {(p.asset_key, p.partition_key) for p in fallback.parent_partitions} == {
        (published, key("national", "US"))
    }
    fan_in = graph.get_parents_partitions(AssetKey("local_rich_fanin"), key("local", "US"))
    shards = {p.partition_key for p in fan_in.parent_partitions if p.asset_key == published}
    assert (
        len(shards) == 51 and key("local", "WY") in shards and key("national", "WY") not in shards
    )
    # ... and a shard's scorecard reads the current national|US bundle (an external asset:
    # an edge from published_dataset would be a cycle, the shards run the same assets).
    scorecard = graph.get(AssetKey("calibration_scorecard"))
    assert AssetKey("national_us_release") in scorecard.parent_keys


def test_derived_assets_do_not_exist_for_record_cells():
    """No "yield nothing" branches: the sub-grids hold only the cells each derived asset makes."""
    assert key("national", "US") not in national_state_partitions.get_partition_keys()
    assert key("local", "CA") not in national_state_partitions.get_partition_keys()
    assert local_us_partitions.get_partition_keys() == [key("local", "US")]
    assert len(national_state_partitions.get_partition_keys()) == 51
