"""Geography shared by the stages: the state table (``states``: the 50 states and DC),
county shares by state and county assignment (``counties``), the congressional
district drawn within the county (``districts``).

Everything read here is carried in ``data/`` (listed in ``data/SOURCES.json`` with its
public source and SHA256); the build never reads ``../shared`` at run time.
"""

from microplex_assets.geography.counties import (
    CountyMappingError,
    assign_counties,
    county_shares_by_state,
)
from microplex_assets.geography.districts import assign_districts

__all__ = ["CountyMappingError", "assign_counties", "assign_districts", "county_shares_by_state"]
