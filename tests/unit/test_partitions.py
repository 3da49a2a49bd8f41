import pytest
from dagster import MultiPartitionKey

from microplex_assets.partitions import (
    GEOGRAPHIES,
    cell_from_partition_key,
    product_geography_partitions,
)


def test_grid_is_two_products_by_us_plus_51_states():
    assert len(GEOGRAPHIES) == 52
    assert len(product_geography_partitions.get_partition_keys()) == 104


def test_national_cells_have_meanings():
    us = cell_from_partition_key(MultiPartitionKey({"product": "national", "geography": "US"}))
    assert us.meaning.startswith("mp-national")
    ca = cell_from_partition_key(MultiPartitionKey({"product": "national", "geography": "CA"}))
    assert "not state-calibrated" in ca.meaning
    assert ca.state_fips == 6


@pytest.mark.parametrize(
    ("product", "geography", "derived", "state_calibrated", "meaning"),
    [
        ("national", "US", False, False, "mp-national"),
        ("national", "TX", True, False, "not state-calibrated"),
        ("local", "TX", False, True, "mp-local-fast shard calibrated to TX"),
        ("local", "US", True, False, "mp-local-rich"),
    ],
)
def test_every_kind_of_cell_has_a_meaning(product, geography, derived, state_calibrated, meaning):
    cell = cell_from_partition_key(MultiPartitionKey({"product": product, "geography": geography}))
    assert cell.derived is derived
    assert cell.state_calibrated is state_calibrated
    assert meaning in cell.meaning
    assert cell.label == f"{product}|{geography}"


def test_unknown_cells_are_refused_by_name():
    from microplex_assets.partitions import cell_meaning

    with pytest.raises(ValueError, match="unknown product 'district'"):
        cell_meaning("district", "US")
    with pytest.raises(ValueError, match="unknown geography"):
        cell_meaning("local", "PR")


def test_string_keys_parse_in_dagster_order():
    cell = cell_from_partition_key("NY|national")
    assert (cell.product, cell.geography) == ("national", "NY")
