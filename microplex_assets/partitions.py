"""The product x geography partition grid shared by every partitioned asset.

Dagster builds the full grid, so every cell needs a meaning: ``cell_meaning`` is the
single place that says what each cell is. Two kinds of cell exist:

- record cells (``national|US``, ``local|<state>``) run the nine-stage chain on records;
- derived cells (``national|<state>``, ``local|US``) are made from record cells' published
  bundles by the derived-bundle assets; the record chain yields nothing for them.

The derived assets live on sub-grids of the same two dimensions (so their keys read
``national|CA`` and ``local|US`` like every other cell), and partition mappings name the
record cells each derived cell is made from: Dagster draws those edges, orders backfills
by them and reports a missing upstream partition.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster import (
    DimensionPartitionMapping,
    IdentityPartitionMapping,
    MultiPartitionKey,
    MultiPartitionMapping,
    MultiPartitionsDefinition,
    StaticPartitionMapping,
    StaticPartitionsDefinition,
)

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

STATES: tuple[str, ...] = tuple(STATE_FIPS)


def sub_grid(products: list[str], geographies: list[str]) -> MultiPartitionsDefinition:
    """Part of the grid, with the grid's dimension names (so keys print the same)."""
    return MultiPartitionsDefinition(
        {
            "product": StaticPartitionsDefinition(products),
            "geography": StaticPartitionsDefinition(geographies),
        }
    )


# The derived cells: the 51 national|<state> fallbacks and the local|US fan-in.
national_state_partitions = sub_grid(["national"], list(STATES))
local_us_partitions = sub_grid(["local"], ["US"])


def geography_mapping(downstream_by_upstream: dict[str, str | set[str]]) -> MultiPartitionMapping:
    """Same product; geography mapped as given (upstream geography -> downstream ones)."""
    return MultiPartitionMapping(
        {
            "product": DimensionPartitionMapping("product", IdentityPartitionMapping()),
            "geography": DimensionPartitionMapping(
                "geography", StaticPartitionMapping(downstream_by_upstream)
            ),
        }
    )


# national|<state> is made from national|US (same product, geography US -> each state).
FALLBACK_FROM_NATIONAL_US = geography_mapping({"US": set(STATES)})
# local|US is made from every local|<state> shard (each state -> US).
FAN_IN_FROM_SHARDS = geography_mapping({state: "US" for state in STATES})


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
