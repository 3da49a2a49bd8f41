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

PRODUCTS: tuple[str, ...] = ("national", "local")

# 50 states and DC, by postal code, with their FIPS codes.
STATE_FIPS: dict[str, int] = {
    "AL": 1, "AK": 2, "AZ": 4, "AR": 5, "CA": 6, "CO": 8, "CT": 9, "DE": 10, "DC": 11,
    "FL": 12, "GA": 13, "HI": 15, "ID": 16, "IL": 17, "IN": 18, "IA": 19, "KS": 20,
    "KY": 21, "LA": 22, "ME": 23, "MD": 24, "MA": 25, "MI": 26, "MN": 27, "MS": 28,
    "MO": 29, "MT": 30, "NE": 31, "NV": 32, "NH": 33, "NJ": 34, "NM": 35, "NY": 36,
    "NC": 37, "ND": 38, "OH": 39, "OK": 40, "OR": 41, "PA": 42, "RI": 44, "SC": 45,
    "SD": 46, "TN": 47, "TX": 48, "UT": 49, "VT": 50, "VA": 51, "WA": 53, "WV": 54,
    "WI": 55, "WY": 56,
}  # fmt: skip
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
        return None if self.geography == "US" else STATE_FIPS[self.geography]

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
