import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from microplex_assets.publication.capital_gains_lots import (
    COLUMNS,
    build_capital_gains_lots,
    load_capital_gains_lots,
    lots_reconcile,
    read_lots_metadata,
    write_capital_gains_lots,
)

YEAR = 2024
LONG = "long_term_capital_gains_before_response"
SHORT = "short_term_capital_gains"


@pytest.fixture()
def gains_bundle(bundle):
    """The 40-household bundle with gains and losses of every size, some sub-cent."""
    person = bundle.tables["person"]
    n = len(person)
    long = np.zeros(n)
    short = np.zeros(n)
    long[::3] = np.resize([1_250_000.0, -3_000.0, 0.01, 47_321.555, 812.4, -0.03], len(long[::3]))
    short[::4] = np.resize([15_000.0, -2_200.75, 99.99, -150_000.0], len(short[::4]))
    person[LONG] = long
    person[SHORT] = short
    return bundle


def _cents(values):
    return np.rint(np.asarray(values, dtype=float) * 100).astype(np.int64)


def test_lot_gains_sum_to_each_persons_amounts_to_the_cent(gains_bundle):
    lots = build_capital_gains_lots(gains_bundle, YEAR, seed=1)
    assert list(lots.columns) == list(COLUMNS)
    person = gains_bundle.person.set_index("person_id")
    for term, column in (("long", LONG), ("short", SHORT)):
        sums = lots[lots["term"] == term].groupby("person_id")["gain"].apply(_cents_sum)
        expected = pd.Series(_cents(person[column]), person.index)
        assert (sums == expected.reindex(sums.index)).all()
        # every nonzero amount has lots; zero amounts have none
        assert set(sums.index) == set(expected[expected != 0].index)
    report = lots_reconcile(lots, gains_bundle)
    assert report["reconciled"]
    assert report["max_abs_person_difference"] == 0.0
    assert report["long"]["lots_total"] == pytest.approx(report["long"]["bundle_total"])
    assert report["short"]["persons_mismatched"] == 0


def _cents_sum(gains):
    return int(_cents(gains).sum())


def test_lots_keep_links_and_gain_identity(gains_bundle):
    lots = build_capital_gains_lots(gains_bundle, YEAR, seed=1)
    person = gains_bundle.person.set_index("person_id")
    assert (lots["tax_unit_id"].to_numpy() == person.loc[lots["person_id"], "tax_unit_id"]).all()
    assert (lots["household_id"].to_numpy() == person.loc[lots["person_id"], "household_id"]).all()
    assert lots["lot_id"].is_unique
    assert (_cents(lots["proceeds"]) - _cents(lots["cost_basis"]) == _cents(lots["gain"])).all()
    assert (lots["cost_basis"] >= 0).all() and (lots["proceeds"] >= 0).all()
    assert (lots["gain"] < 0).any() and (lots["gain"] > 0).any()


def test_holding_periods_follow_the_term_and_sales_fall_in_the_year(gains_bundle):
    lots = build_capital_gains_lots(gains_bundle, YEAR, seed=3)
    assert (lots["sale_date"].dt.year == YEAR).all()
    one_year_on = lots["acquisition_date"] + pd.DateOffset(years=1)
    long = lots["term"] == "long"
    assert (lots.loc[long, "sale_date"] > one_year_on[long]).all()
    assert (lots.loc[~long, "sale_date"] <= one_year_on[~long]).all()
    assert (lots["acquisition_date"] <= lots["sale_date"]).all()


def test_bigger_gains_get_more_lots(gains_bundle):
    person = gains_bundle.person
    person[LONG] = np.where(person.index % 2 == 0, 5_000_000.0, 5.0)
    person[SHORT] = 0.0
    lots = build_capital_gains_lots(gains_bundle, YEAR, seed=0)
    per_person = lots.groupby("person_id").size()
    big = person.loc[person[LONG] > 1e6, "person_id"]
    small = person.loc[person[LONG] < 1e6, "person_id"]
    assert per_person[big].mean() > 3 * per_person[small].mean()


def test_deterministic_per_seed_and_independent_of_row_order(gains_bundle):
    first = build_capital_gains_lots(gains_bundle, YEAR, seed=11)
    again = build_capital_gains_lots(gains_bundle, YEAR, seed=11)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(build_capital_gains_lots(gains_bundle, YEAR, seed=12))
    gains_bundle.tables["person"] = gains_bundle.person.iloc[::-1].reset_index(drop=True)
    pd.testing.assert_frame_equal(first, build_capital_gains_lots(gains_bundle, YEAR, seed=11))


def test_no_gains_no_lots(bundle):
    lots = build_capital_gains_lots(bundle, YEAR, seed=0)  # no capital-gain columns at all
    assert lots.empty and list(lots.columns) == list(COLUMNS)
    assert lots_reconcile(lots, bundle)["reconciled"]


def test_round_trip_through_parquet_with_metadata(tmp_path, gains_bundle):
    lots = build_capital_gains_lots(gains_bundle, YEAR, seed=5)
    path = write_capital_gains_lots(lots, tmp_path / "out" / "capital_gains_lots_2024.parquet")
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    metadata = read_lots_metadata(path)
    assert metadata["year"] == YEAR and metadata["row_count"] == len(lots)
    assert metadata["schema_version"] == 1 and "lots" in metadata["description"]
    back = load_capital_gains_lots(path)
    pd.testing.assert_frame_equal(back, lots)
    assert lots_reconcile(back, gains_bundle)["reconciled"]


def _rewrite(path, table):
    pq.write_table(table, path)
    return path


def test_missing_column_is_named(tmp_path, gains_bundle):
    path = write_capital_gains_lots(
        build_capital_gains_lots(gains_bundle, YEAR, seed=5), tmp_path / "lots.parquet"
    )
    table = pq.read_table(path)
    _rewrite(path, table.drop_columns(["cost_basis"]))
    with pytest.raises(ValueError, match=r"lots\.parquet: missing column 'cost_basis'"):
        load_capital_gains_lots(path)


def test_short_lot_held_three_years_is_named(tmp_path, gains_bundle):
    lots = build_capital_gains_lots(gains_bundle, YEAR, seed=5)
    path = write_capital_gains_lots(lots, tmp_path / "lots.parquet")
    table = pq.read_table(path)
    acquired = table.column("acquisition_date").to_pylist()
    short = table.column("term").to_pylist().index("short")
    acquired[short] = acquired[short].replace(year=YEAR - 3)
    index = table.schema.get_field_index("acquisition_date")
    broken = table.set_column(index, "acquisition_date", pa.array(acquired, pa.date32()))
    _rewrite(path, broken)
    with pytest.raises(ValueError, match="lots.parquet.*'acquisition_date'.*short-term"):
        load_capital_gains_lots(path)


def test_wrong_dtype_and_foreign_file_are_named(tmp_path, gains_bundle):
    path = write_capital_gains_lots(
        build_capital_gains_lots(gains_bundle, YEAR, seed=5), tmp_path / "lots.parquet"
    )
    table = pq.read_table(path)
    index = table.schema.get_field_index("gain")
    _rewrite(path, table.set_column(index, "gain", table.column("gain").cast(pa.string())))
    with pytest.raises(ValueError, match="column 'gain' has type string"):
        load_capital_gains_lots(path)
    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"x": [1]}), foreign)
    with pytest.raises(ValueError, match="foreign.parquet: no .* metadata"):
        load_capital_gains_lots(foreign)
