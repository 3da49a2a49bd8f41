"""Geography shared by the stages: the state table (``states``: the 50 states and DC),
county shares by state and county assignment (``counties``).

Everything read here is carried in ``data/`` (listed in ``data/SOURCES.json`` with its
public source and SHA256); the build never reads ``../shared`` at run time.
"""

from microplex_assets.geography.counties import (
    CountyMappingError,
    assign_counties,
    county_shares_by_state,
)

__all__ = ["CountyMappingError", "assign_counties", "county_shares_by_state"]
