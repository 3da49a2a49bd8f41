"""Assets for every household: the published-table SCF donor and its stage-4 imputation."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex_assets.seed.asset_imputation import (
    PERSON_ASSETS,
    SSI_RESOURCE_LIMIT,
    AssetImputationConfig,
    impute_assets,
    rank_against,
    weighted_rank,
)
from microplex_assets.sources import scf_published as scf
from microplex_assets.sources import scf_published_table
from microplex_assets.sources.frame import ObservationFrame, SourceFormatError
from tests.frames import tiny_scaffold

FAST = AssetImputationConfig(seed=5, n_estimators=10, min_samples_leaf=5)


@pytest.fixture(scope="module")
def donor():
    return scf.synthesize_asset_donor(2024, records=3_600, seed=2)


@pytest.fixture(scope="module")
def imputed(donor):
    return impute_assets(tiny_scaffold(300, seed=4), donor, FAST)


def test_donor_reproduces_the_tables_holding_rates(donor):
    table, _ = scf.read_published_table()
    reproduction = scf.cell_reproduction(donor)
    assert len(reproduction) == 36 * len(scf.SCF_PARTS)
    # Exactly round(p x n) holders per cell: within half a record of the table's rate.
    assert (reproduction["donor_rate"] - reproduction["table_rate"]).abs().max() <= 0.5 / 100
    # Donor plus real top tail hold at the published all-family rates.
    household = donor.tables["household"]
    weight = household["household_weight"].to_numpy()
    for variable, asset in (("bank_account_assets", "transaction_accounts"),
                            ("stock_assets", "stocks")):  # fmt: skip
        rate = weight[household[variable].to_numpy() > 0].sum() / weight.sum()
        assert rate == pytest.approx(scf.figure(table, "holding_rate", asset) / 100, abs=0.01)
    # Gradients carry over: top-income cells hold stocks far more often than bottom ones.
    stocks = reproduction[reproduction["asset"] == "stocks"].groupby("income_group")
    assert stocks["donor_rate"].mean()["90-100"] > 5 * stocks["donor_rate"].mean()["0-20"]
    assert weight.sum() == pytest.approx(scf.figure(table, "families", "all") * 1e6)


def test_donor_top_tail_is_the_real_scf_records(donor):
    household = donor.tables["household"]
    tail = household[household["is_top_tail"]]
    assert len(tail) == 6_092 and donor.provenance["top_tail"]["kind"] == "real"
    assert donor.provenance["kind"] == "synthetic"
    synthetic = household[~household["is_top_tail"]]
    assert synthetic["net_worth"].max() < tail["net_worth"].min()


def test_assets_are_non_negative_and_on_reference_heads_and_spouses(imputed):
    frame, report = imputed
    person, household = frame.tables["person"], frame.tables["household"]
    for variable in PERSON_ASSETS:
        assert (person[variable] >= 0).all()
        holders = person.loc[person[variable] > 0, "role"]
        assert set(holders) <= {"head", "spouse"}
    assert (household["net_worth"] >= 0).all() and (household["net_worth"] > 0).all()
    liquid = person.groupby("household_id")[list(PERSON_ASSETS)].sum().sum(axis=1)
    worth = household.set_index("household_id")["net_worth"]
    assert (liquid.reindex(worth.index) <= worth + 1e-6).all()
    assert (
        report.evidence.query("group == 'all' and variable == 'bank_account_assets'")[
            "holding_rate"
        ].iloc[0]
        > 0.9
    )


def test_reported_ssi_households_stay_within_the_resource_limit(imputed):
    frame, report = imputed
    person, unit = frame.tables["person"], frame.tables["tax_unit"]
    ssi = set(unit.loc[unit["ssi_reported"] > 0, "household_id"])
    liquid = person.groupby("household_id")[list(PERSON_ASSETS)].sum().sum(axis=1)
    assert report.ssi_households_restricted == len(ssi) > 0
    assert (liquid.loc[sorted(ssi)] <= SSI_RESOURCE_LIMIT["couple"] + 1e-6).all()


def test_imputation_is_deterministic_for_a_seed(donor, imputed):
    scaffold = tiny_scaffold(300, seed=4)
    again, _ = impute_assets(scaffold, donor, FAST)
    other, _ = impute_assets(scaffold, donor, AssetImputationConfig(seed=6, n_estimators=10))
    columns = list(PERSON_ASSETS)
    first = imputed[0].tables["person"][columns].to_numpy()
    np.testing.assert_array_equal(first, again.tables["person"][columns].to_numpy())
    assert not np.array_equal(first, other.tables["person"][columns].to_numpy())


def test_richer_households_draw_more_assets(imputed):
    evidence = imputed[1].evidence
    worth = evidence.query("group_type == 'income' and variable == 'net_worth'")
    medians = worth.set_index("group")["median"]
    assert medians["90-100"] > medians["0-20"]


def test_ranks():
    weight = np.array([1.0, 1.0, 2.0])
    np.testing.assert_allclose(
        weighted_rank(np.array([3.0, 1.0, 2.0]), weight), [0.875, 0.125, 0.5]
    )
    np.testing.assert_allclose(rank_against(np.array([0.0, 2.5, 9.0]), np.array([1.0, 2.0, 3.0]),
                                            np.ones(3)), [0.0, 2 / 3, 1.0])  # fmt: skip


def _write(tmp_path: Path, edit) -> Path:
    lines = (scf.DATA_DIR / scf.TABLE_FILE).read_text().splitlines()
    path = tmp_path / "published.csv"
    path.write_text("\n".join(edit(lines)) + "\n")
    return path


def test_malformed_table_is_refused_naming_file_and_column(tmp_path):
    def drop_status(lines):
        return [",".join(c for i, c in enumerate(line.split(",")) if i != 6)
                if not line.startswith("#") else line for line in lines]  # fmt: skip

    path = _write(tmp_path, drop_status)
    with pytest.raises(SourceFormatError, match=r"published\.csv.*status"):
        scf.read_published_table(path)

    def bad_value(lines):
        return [line.replace(",98.6,", ",lots,") for line in lines]

    path = _write(tmp_path, bad_value)
    with pytest.raises(SourceFormatError, match=r"published\.csv.*column 'value'.*'lots'"):
        scf.read_published_table(path)

    def bad_group(lines):
        return [line.replace(",age,<35,", ",age,under 35,") for line in lines]

    path = _write(tmp_path, bad_group)
    with pytest.raises(SourceFormatError, match=r"published\.csv.*column 'group'.*under 35"):
        scf.read_published_table(path)


def test_donor_lacking_a_column_is_refused(donor):
    broken = ObservationFrame(
        source="broken", year=2024, links={},
        tables={"household": donor.tables["household"].drop(columns=["stock_assets"])},
    )  # fmt: skip
    with pytest.raises(SourceFormatError, match=r"broken.*stock_assets"):
        impute_assets(tiny_scaffold(50), broken, FAST)


def test_carried_table_hash_is_checked(monkeypatch, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / scf.TABLE_FILE).write_text((scf.DATA_DIR / scf.TABLE_FILE).read_text() + "\n")
    (data / "SOURCES.json").write_text((scf.DATA_DIR / "SOURCES.json").read_text())
    monkeypatch.setattr(scf_published_table, "DATA_DIR", data)
    with pytest.raises(SourceFormatError, match="sha256"):
        scf.read_published_table()


def test_evidence_compares_with_published_figures(imputed):
    evidence = imputed[1].evidence
    row = evidence.query("group == 'all' and variable == 'bank_account_assets'").iloc[0]
    assert row["published_holding_rate"] == pytest.approx(0.986)
    ages = evidence.query("group_type == 'age' and variable == 'net_worth'")
    assert ages["published_median"].notna().all()
    assert isinstance(imputed[1].totals["net_worth_ratio"], float)
    assert pd.notna(imputed[1].totals["published_net_worth_bn"])


def test_seed_asset_step_reports_evidence_metadata(donor):
    from dagster import build_asset_context

    from microplex_assets.seed.assets import with_assets

    run_profile = {"seeds": {"sampling": 5}}
    frame, metadata = with_assets(build_asset_context(), run_profile, tiny_scaffold(60), donor)
    assert {"asset_donor", "asset_evidence", "asset_totals", "asset_notes"} <= set(metadata)
    assert (frame.tables["household"]["net_worth"] > 0).all()


def test_donor_ranks_are_uniform_once_the_tail_is_ranked(donor):
    from microplex_assets.seed.asset_imputation import donor_rows, household_features

    rows = donor_rows(donor, household_features(tiny_scaffold(200, seed=1)))
    group = np.searchsorted(scf.INCOME_BOUNDS, rows["income_rank"], side="right") - 1
    shares = rows.groupby(np.clip(group, 0, 5))["household_weight"].sum()
    np.testing.assert_allclose(shares / shares.sum(), np.diff(scf.INCOME_BOUNDS), atol=0.01)
    tail = rows.loc[rows["is_top_tail"], "income_rank"]
    assert tail.between(0, 1).all() and tail.median() > 0.8
