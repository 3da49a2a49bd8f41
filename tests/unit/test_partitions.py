import pytest
from dagster import MultiPartitionKey

from microplex_assets.partitions import (
    GEOGRAPHIES,
    PartitionNotBuiltError,
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


@pytest.mark.parametrize("geography", ["US", "TX"])
def test_unbuilt_local_cells_refuse_with_the_cell_named(geography):
    key = MultiPartitionKey({"product": "local", "geography": geography})
    with pytest.raises(PartitionNotBuiltError, match=f"local\\|{geography}"):
        cell_from_partition_key(key)


def test_string_keys_parse_in_dagster_order():
    cell = cell_from_partition_key("NY|national")
    assert (cell.product, cell.geography) == ("national", "NY")
