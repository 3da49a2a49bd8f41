"""The product x geography partition grid shared by every partitioned asset.

Dagster builds the full grid, so every cell needs a meaning: ``cell_meaning`` is the
single place that says what each cell is. Two kinds of cell exist:

- record cells (``national|US``, ``local|<state>``) run the nine-stage chain on records;
- derived cells (``national|<state>``, ``local|US``) are made from record cells' published
  bundles by the derived-bundle assets; the record chain yields nothing for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster import MultiPartitionKey, MultiPartitionsDefinition, StaticPartitionsDefinition

from microplex_assets.geography.states import STATE_FIPS, fips_from_code

PRODUCTS: tuple[str, ...] = ("national", "local")

# "US" and the 50 states and DC by postal code (``geography.states``).
GEOGRAPHIES: tuple[str, ...] = ("US", *STATE_FIPS)

product_geography_partitions = MultiPartitionsDefinition(
    {
        "product": StaticPartitionsDefinition(list(PRODUCTS)),
        "geography": StaticPartitionsDefinition(list(GEOGRAPHIES)),
    }
)


@dataclass(frozen=True)
class Cell:
    """One product x geography cell and what it means."""

    product: str
    geography: str

    @property
    def key(self) -> MultiPartitionKey:
        return MultiPartitionKey({"product": self.product, "geography": self.geography})

    @property
    def state_fips(self) -> int | None:
        return None if self.geography == "US" else fips_from_code(self.geography)

    @property
    def meaning(self) -> str:
        return cell_meaning(self.product, self.geography)

    @property
    def state_calibrated(self) -> bool:
        return self.product == "local" and self.geography != "US"

    @property
    def derived(self) -> bool:
        """True for cells made from other cells' published bundles, not from records:
        ``national|<state>`` (restricted from national|US) and ``local|US`` (the fan-in)."""
        return (self.product == "national") != (self.geography == "US")

    @property
    def label(self) -> str:
        return f"{self.product}|{self.geography}"


def cell_meaning(product: str, geography: str) -> str:
    """What a cell means; ValueError naming the product or geography when it is not one."""
    if product not in PRODUCTS:
        raise ValueError(f"unknown product '{product}'; expected one of {PRODUCTS}")
    if geography not in GEOGRAPHIES:
        raise ValueError(f"unknown geography '{geography}'; expected 'US' or a state code")
    if product == "national" and geography == "US":
        return "mp-national: the national dataset"
    if product == "national":
        return f"national weights restricted to {geography} (not state-calibrated)"
    if geography == "US":
        return "mp-local-rich: the fan-in of all 51 state shards, scored on every target"
    return f"mp-local-fast shard calibrated to {geography}'s targets"


def cell_from_partition_key(partition_key: str | MultiPartitionKey) -> Cell:
    """Parse a Dagster multi-partition key; validates the cell."""
    if not isinstance(partition_key, MultiPartitionKey):
        partition_key = product_geography_partitions.get_partition_key_from_str(partition_key)
    dims = partition_key.keys_by_dimension
    cell = Cell(product=dims["product"], geography=dims["geography"])
    cell_meaning(cell.product, cell.geography)
    return cell
