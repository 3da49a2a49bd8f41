"""Local and derived cells: run profiles, cell kinds, saved matrices and derived scoring."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from microplex_assets.calibration.loss import target_loss
from microplex_assets.calibration.matrix import (
    LEDGER_COLUMNS,
    TargetMatrix,
    load_saved_matrix,
)
from microplex_assets.calibration.solver_config import solver_config
from microplex_assets.files import dataset_filename
from microplex_assets.geography.states import STATE_FIPS
from microplex_assets.partitions import (
    GEOGRAPHIES,
    PRODUCTS,
    Cell,
    cell_meaning,
    product_geography_partitions,
)
from microplex_assets.publication.derived import (
    MissingShardsError,
    entity_lookup,
    load_shards,
    score_table,
)
from microplex_assets.run_profile.profile import LOCAL_SOLVER, resolve_run_profile
from microplex_assets.targets.model import Target, TargetSet
from microplex_assets.targets.registry import (
    DEFAULT_HELD_OUT_GROUPS,
    LOCAL_HELD_OUT_GROUPS,
)
from microplex_resources.build_settings import BuildSettings

SOURCE = {"agency": "test", "table": "synthetic", "year": 2024}


def settings(**overrides) -> dict:
    return {
        **BuildSettings().model_dump(),
        "national_households": 5_678,
        "local_households": 1_234,
        **overrides,
    }


# ------------------------------------------------------------------ run profiles


def test_local_shard_profile():
    profile = resolve_run_profile(settings(local_min_support=7), Cell("local", "CA"))
    assert profile["households"] == 1_234
    assert profile["national_households"] == 5_678
    assert profile["state_calibrated"] is True
    assert profile["state_fips"] == 6
    assert profile["calibration"]["held_out_groups"] == list(LOCAL_HELD_OUT_GROUPS)
    assert profile["calibration_backend"] == "microplex"
    config = solver_config(profile)
    for key, value in LOCAL_SOLVER.items():
        assert profile["calibration"][key] == value
        assert getattr(config, key) == value  # reaches the solver
    assert profile["donor_integration"]["ablation"] is False
    assert profile["microsim_benchmarks"]["enabled"] is False  # national|US only
    assert profile["derived_from"] is None
    assert profile["local_support"] == {"min_support": 7}
    assert profile["cell_meaning"] == cell_meaning("local", "CA")
    json.dumps(profile)  # written into the bundle


def test_national_state_fallback_shares_the_shards_split_and_stays_uncalibrated():
    shard = resolve_run_profile(settings(), Cell("local", "CA"))
    fallback = resolve_run_profile(settings(), Cell("national", "CA"))
    assert fallback["calibration"]["held_out_groups"] == shard["calibration"]["held_out_groups"]
    assert fallback["calibration_backend"] == "none"
    assert "uncalibrated" in fallback["calibration"]["backend_reason"]
    assert fallback["households"] == 5_678
    assert fallback["derived_from"] == ["national|US"]
    assert fallback["state_calibrated"] is False
    assert fallback["local_support"] is None
    assert not set(LOCAL_SOLVER) & set(fallback["calibration"])


def test_configured_local_held_out_groups_reach_the_shard_and_its_fallback_only():
    chosen = ["irs_soi/agi_by_state"]
    configured = settings(local_held_out_groups=chosen, held_out_groups=["cbo/snap_outlays"])
    for cell in (Cell("local", "TX"), Cell("national", "TX")):
        assert resolve_run_profile(configured, cell)["calibration"]["held_out_groups"] == chosen
    for cell in (Cell("national", "US"), Cell("local", "US")):
        profile = resolve_run_profile(configured, cell)
        assert profile["calibration"]["held_out_groups"] == ["cbo/snap_outlays"]


def test_national_profile_keeps_the_national_defaults():
    profile = resolve_run_profile(settings(), Cell("national", "US"))
    assert profile["households"] == 5_678
    assert profile["calibration"]["held_out_groups"] == list(DEFAULT_HELD_OUT_GROUPS)
    assert profile["calibration_backend"] == "microplex"
    assert not set(LOCAL_SOLVER) & set(profile["calibration"])
    # The donor ablation costs a simulation: opt-in; the reform suite runs on national|US.
    assert profile["donor_integration"]["ablation"] is False
    assert profile["microsim_benchmarks"]["enabled"] is True
    assert profile["microsim_benchmarks"]["tolerance"] == {"relative": 0.05, "absolute_bn": 5.0}
    assert profile["derived_from"] is None
    assert profile["local_support"] is None


def test_local_rich_profile_is_derived_from_every_shard():
    profile = resolve_run_profile(settings(), Cell("local", "US"))
    assert profile["derived_from"] == [f"local|{state}" for state in STATE_FIPS]
    assert len(profile["derived_from"]) == 51
    assert profile["state_calibrated"] is False
    assert profile["calibration"]["held_out_groups"] == list(DEFAULT_HELD_OUT_GROUPS)


# ------------------------------------------------------------------ cells


@pytest.mark.parametrize(
    ("product", "geography", "derived", "state_calibrated"),
    [
        ("national", "US", False, False),
        ("national", "WY", True, False),
        ("local", "WY", False, True),
        ("local", "US", True, False),
    ],
)
def test_cell_kind_truth_table(product, geography, derived, state_calibrated):
    cell = Cell(product, geography)
    assert cell.derived is derived
    assert cell.state_calibrated is state_calibrated
    assert cell.label == f"{product}|{geography}"


def test_every_grid_cell_has_its_own_meaning():
    keys = product_geography_partitions.get_partition_keys()
    cells = [Cell(k.keys_by_dimension["product"], k.keys_by_dimension["geography"]) for k in keys]
    assert len(cells) == len(PRODUCTS) * len(GEOGRAPHIES) == 104
    meanings = [cell.meaning for cell in cells]
    assert all(isinstance(m, str) and m for m in meanings)
    assert len(set(meanings)) == 104
    assert sum(cell.derived for cell in cells) == 52
    assert sum(cell.state_calibrated for cell in cells) == 51


@pytest.mark.parametrize(("product", "geography"), [("local", "us"), ("state", "CA"), ("", "")])
def test_unknown_cells_raise(product, geography):
    with pytest.raises(ValueError, match="unknown"):
        cell_meaning(product, geography)


# ------------------------------------------------------------------ saved matrices


def make_target(name: str, value: float, geography: str, group: str) -> Target:
    return Target(
        name=name,
        value=value,
        period=2024,
        variable="employment_income",
        aggregation="sum",
        entity="person",
        scope="population",
        geography=geography,
        family="wages",
        group=group,
        source=SOURCE,
    )


@pytest.fixture()
def matrix() -> TargetMatrix:
    targets = (
        make_target("wages/US", 100.0, "US", "wages"),
        make_target("wages/CA", 40.0, "CA", "wages_state"),
        make_target("wages/TX", 30.0, "TX", "wages_state"),
    )
    dense = np.array(
        [
            [1.0, 2.0, 0.0, 4.0],
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 3.0, 0.5],
        ]
    )
    ledger = pd.DataFrame(
        [
            {
                "name": t.name,
                "family": t.family,
                "group": t.group,
                "geography": t.geography,
                "value": t.value,
                "status": "kept",
                "reason": "",
                "supporting_households": 1,
            }
            for t in targets
        ],
        columns=list(LEDGER_COLUMNS),
    )
    return TargetMatrix(
        matrix=sparse.csr_matrix(dense),
        targets=TargetSet(targets),
        household_ids=np.array([101, 102, 103, 104]),
        ledger=ledger,
        train=np.array([True, False, True]),
    )


def test_saved_matrix_round_trips_under_a_prefix(tmp_path: Path, matrix: TargetMatrix):
    design = np.array([1.0, 2.0, 3.0, 4.0])
    paths = matrix.save(tmp_path, design, prefix="national_contributions")
    assert {p.name for p in paths.values()} == {
        "national_contributions.npz",
        "national_contributions_targets.parquet",
        "national_contributions_household_ids.npy",
        "national_contributions_ledger.csv",
        "national_contributions_design_weights.npy",
    }
    assert all(p.exists() for p in paths.values())
    assert np.array_equal(np.load(paths["design_weights"]), design)
    # A second matrix under the default prefix lives beside it without clobbering it.
    default = matrix.save(tmp_path)
    assert default["ledger"].name == "target_ledger.csv"
    assert "design_weights" not in default

    saved = load_saved_matrix(tmp_path, "national_contributions")
    assert np.array_equal(saved.matrix.toarray(), matrix.matrix.toarray())
    assert saved.household_ids.tolist() == [101, 102, 103, 104]
    assert saved.targets["name"].tolist() == ["wages/US", "wages/CA", "wages/TX"]
    assert saved.targets["value"].tolist() == [100.0, 40.0, 30.0]
    assert saved.targets["is_national"].tolist() == [True, False, False]
    assert saved.targets["train"].tolist() == [True, False, True]
    assert saved.targets["group"].tolist() == ["wages", "wages_state", "wages_state"]


def test_a_missing_prefix_is_named(tmp_path: Path, matrix: TargetMatrix):
    matrix.save(tmp_path, prefix="national_contributions")
    with pytest.raises(FileNotFoundError, match="target_matrix.npz"):
        load_saved_matrix(tmp_path)


def test_a_matrix_that_does_not_match_its_ids_is_refused(tmp_path: Path, matrix: TargetMatrix):
    paths = matrix.save(tmp_path)
    np.save(paths["household_ids"], np.array([101, 102, 103]))
    with pytest.raises(ValueError, match="does not match 3 targets x 3 households"):
        load_saved_matrix(tmp_path)


def test_estimates_by_name_aligns_weights_and_fills_unknown_targets(
    tmp_path: Path, matrix: TargetMatrix
):
    matrix.save(tmp_path)
    saved = load_saved_matrix(tmp_path)
    # By household id, in another order, with an extra household the matrix lacks.
    weights = pd.Series({104: 4.0, 999: 1e9, 102: 2.0, 101: 1.0, 103: 3.0})
    names = pd.Index(["wages/TX", "not/in/matrix", "wages/US", "wages/CA"])
    estimates = saved.estimates_by_name(weights, names)
    assert estimates.index.tolist() == names.tolist()
    assert estimates.tolist() == [3.0 * 3 + 0.5 * 4, 0.0, 1 + 2 * 2 + 4 * 4, 1.0]
    expected = matrix.estimates(np.array([1.0, 2.0, 3.0, 4.0]))
    assert np.allclose(estimates[["wages/US", "wages/CA", "wages/TX"]], expected)


def test_estimates_by_name_refuses_weights_missing_a_household(
    tmp_path: Path, matrix: TargetMatrix
):
    matrix.save(tmp_path)
    saved = load_saved_matrix(tmp_path)
    with pytest.raises(KeyError, match="103"):
        saved.estimates_by_name(pd.Series({101: 1.0, 102: 1.0, 104: 1.0}), pd.Index(["wages/US"]))


# ------------------------------------------------------------------ derived scoring


@pytest.fixture()
def targets() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": ["us/a", "us/b", "ca/a", "ca/b", "ca/c"],
            "value": [100.0, 50.0, 10.0, 20.0, 30.0],
            "is_national": [True, True, False, False, False],
            "group": ["national_g", "held", "state_g", "held", "state_g"],
        }
    )


def test_score_table_splits_by_group_and_level(targets: pd.DataFrame):
    estimate = pd.Series([90.0, 60.0, 12.0, 15.0, 30.0], index=targets["name"])
    # Estimates come by name, in any order.
    table = score_table(targets, {"m": estimate.iloc[::-1]}, ["held"])
    assert table[["method", "level"]].values.tolist() == [
        ["m", "all"],
        ["m", "national"],
        ["m", "state"],
    ]
    assert table["targets"].tolist() == [5, 2, 3]
    values, est = targets["value"].to_numpy(), estimate.to_numpy()
    national = targets["is_national"].to_numpy()
    held = targets["group"].eq("held").to_numpy()

    def loss(mask):
        return target_loss(est[mask], values[mask], national[mask])

    everything = np.ones(5, dtype=bool)
    rows = table.set_index("level")
    assert rows.loc["all", "train"] == pytest.approx(loss(~held))
    assert rows.loc["all", "held_out"] == pytest.approx(loss(held))
    assert rows.loc["all", "all"] == pytest.approx(loss(everything))
    assert rows.loc["national", "train"] == pytest.approx(loss(national & ~held))
    assert rows.loc["national", "held_out"] == pytest.approx(loss(national & held))
    assert rows.loc["state", "train"] == pytest.approx(loss(~national & ~held))
    assert rows.loc["state", "held_out"] == pytest.approx(loss(~national & held))
    assert rows.loc["state", "all"] == pytest.approx(loss(~national))


def test_score_table_drops_empty_levels_and_leaves_empty_splits_none(targets: pd.DataFrame):
    state_only = targets[~targets["is_national"]].reset_index(drop=True)
    perfect = pd.Series(state_only["value"].to_numpy(), index=state_only["name"])
    table = score_table(state_only, {"a": perfect, "b": perfect * 2}, ["nothing_held"])
    assert table[["method", "level"]].values.tolist() == [
        ["a", "all"],
        ["a", "state"],
        ["b", "all"],
        ["b", "state"],
    ]
    assert table["held_out"].isna().all()
    values = state_only["value"].to_numpy()
    national = np.zeros(3, dtype=bool)
    # The +1 of the shared loss: a perfect estimate scores mean((1 / (t + 1))^2), not 0.
    assert table.loc[0, "train"] == pytest.approx(np.mean(1 / (values + 1) ** 2))
    assert table.loc[0, "train"] == pytest.approx(target_loss(values, values, national))
    assert table.loc[2, "train"] == pytest.approx(target_loss(2 * values, values, national))
    assert table.loc[2, "train"] > table.loc[0, "train"]


def test_entity_lookup_reads_the_manifest():
    manifest = {"exported_variables": {"person": ["age", "wages"], "household": ["state_fips"]}}
    entity_of = entity_lookup(manifest)
    assert entity_of("age") == "person"
    assert entity_of("state_fips") == "household"
    with pytest.raises(KeyError, match="snap"):
        entity_of("snap")


def test_entity_lookup_joins_the_shards_manifests():
    # The 51-shard fan-in failed on net_worth: exported by some shards, not the first one.
    without = {"exported_variables": {"person": ["age"], "household": ["state_fips"]}}
    with_wealth = {"exported_variables": {"person": ["age"], "household": ["net_worth"]}}
    entity_of = entity_lookup(without, with_wealth)
    assert entity_of("net_worth") == "household"
    assert entity_of("state_fips") == "household"
    with pytest.raises(KeyError, match="snap.*any manifest"):
        entity_of("snap")
    clash = {"exported_variables": {"tax_unit": ["age"]}}
    with pytest.raises(ValueError, match="age is a person variable .* tax_unit"):
        entity_lookup(without, clash)


def write_bundle(folder: Path, state: str, ids: list[int], weights: list[float]) -> None:
    folder.mkdir(parents=True)
    with h5py.File(folder / dataset_filename(2024), "w") as h5:
        h5.create_dataset("household_id/2024", data=np.array(ids, dtype=np.int64))
        h5.create_dataset("household_weight/2024", data=np.array(weights, dtype=np.float32))
    manifest = {"config": {"product": "local", "geography": state}}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_load_shards_reads_every_published_shard(tmp_path: Path):
    write_bundle(tmp_path / "CA", "CA", [1, 2], [10.0, 20.0])
    write_bundle(tmp_path / "NY", "NY", [5], [7.5])
    shards = load_shards(lambda state: tmp_path / state, 2024, ["CA", "NY"])
    assert list(shards) == ["CA", "NY"]
    assert shards["CA"].label == "local|CA"
    assert shards["CA"].weights.to_dict() == {1: 10.0, 2: 20.0}
    assert shards["NY"].weights.to_dict() == {5: 7.5}


def test_missing_shards_are_named_exactly(tmp_path: Path):
    write_bundle(tmp_path / "CA", "CA", [1, 2], [10.0, 20.0])
    write_bundle(tmp_path / "NY", "NY", [5], [7.5])
    (tmp_path / "TX").mkdir()  # a folder without its H5 is still missing
    (tmp_path / "TX" / "manifest.json").write_text("{}")
    with pytest.raises(MissingShardsError) as caught:
        load_shards(lambda state: tmp_path / state, 2024, ["CA", "TX", "NY", "WY"])
    message = str(caught.value)
    assert "needs all 4 state shards; 2 missing: TX, WY." in message
    missing_part = message.split("missing:")[1].split(".")[0]
    assert "CA" not in missing_part and "NY" not in missing_part
    assert isinstance(caught.value, FileNotFoundError)


def test_one_missing_shard_of_three(tmp_path: Path):
    write_bundle(tmp_path / "CA", "CA", [1], [1.0])
    write_bundle(tmp_path / "NY", "NY", [2], [1.0])
    with pytest.raises(MissingShardsError, match=r"all 3 state shards; 1 missing: TX\."):
        load_shards(lambda state: tmp_path / state, 2024, ["CA", "TX", "NY"])


def test_matrix_remembers_where_it_was_saved_through_a_pickle(tmp_path: Path, matrix):
    # published_dataset reads the ledger and matrices from saved_in, so a run that
    # re-executes only that asset (its own work folder is new) still finds them.
    import pickle

    from microplex_assets.publication.assets import published_matrices

    assert matrix.saved_in is None
    matrix.save(tmp_path / "other", prefix="national_contributions")
    assert matrix.saved_in is None  # only the main matrix's folder is the one published
    matrix.save(tmp_path / "run_a")
    loaded = pickle.loads(pickle.dumps(matrix))  # what the IO manager hands the next run
    assert loaded.saved_in == str(tmp_path / "run_a")
    published = published_matrices(Path(loaded.saved_in), with_national_contributions=False)
    assert published and all(path.exists() for path in published.values())
