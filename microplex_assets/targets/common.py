"""Small pieces every target provider shares: skip records, band and state labels."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from microplex_assets.geography.states import STATE_FIPS
from microplex_assets.targets.model import TargetFilter

# Two-digit FIPS text ("06") -> postal code, for the 50 states and DC only (the geographies
# a CPS-based build covers; Puerto Rico and the territories are left out on purpose).
_CODE_BY_FIPS_TEXT: dict[str, str] = {f"{fips:02d}": code for code, fips in STATE_FIPS.items()}


@dataclass(frozen=True)
class Skipped:
    """A source fact the registry deliberately left out, and why (shown in the UI)."""

    provider: str
    table: str  # source table or parameter path
    item: str  # which row or fact
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def state_from_geo_id(geo_id: str) -> str | None:
    """Postal code of a Census GEO_ID such as 0400000US06 (None outside the 50 states + DC)."""
    return _CODE_BY_FIPS_TEXT.get(str(geo_id)[-2:]) if str(geo_id).startswith("0400000US") else None


def _money(x: float) -> str:
    if x == 0:
        return "0"
    if x % 1_000_000 == 0:
        return f"{x / 1_000_000:g}m"
    if x % 1_000 == 0:
        return f"{x / 1_000:g}k"
    return str(int(round(x)))


def band_label(low: float, high: float, prefix: str = "agi") -> str:
    """Stable, readable band name: agi_all, agi_under_0, agi_50k_75k, agi_10m_plus."""
    if math.isinf(low) and math.isinf(high):
        return f"{prefix}_all"
    if math.isinf(low):
        return f"{prefix}_under_{_money(high)}"
    if math.isinf(high):
        return f"{prefix}_{_money(low)}_plus"
    return f"{prefix}_{_money(low)}_{_money(high)}"


def agi_band_filters(low: float, high: float) -> tuple[TargetFilter, ...]:
    """The AGI band as a filter; the unbounded band needs none."""
    if math.isinf(low) and math.isinf(high):
        return ()
    return (TargetFilter("adjusted_gross_income", float(low), float(high)),)
