"""Geography shared by the stages: the state table (``states``: the 50 states and DC),
county shares by state and county assignment (``counties``), the 436 congressional
districts (``districts``) and households placed in them (``district_assignment``).

Everything read here is carried in ``data/`` (listed in ``data/SOURCES.json`` with its
public source and SHA256); the build never reads ``../shared`` at run time.
"""

from microplex_assets.geography.counties import (
    CountyMappingError,
    assign_counties,
    county_shares_by_state,
)
from microplex_assets.geography.district_assignment import assign_districts
from microplex_assets.geography.districts import UnknownDistrictError, parse_district

__all__ = [
    "CountyMappingError",
    "UnknownDistrictError",
    "assign_counties",
    "assign_districts",
    "county_shares_by_state",
    "parse_district",
]
