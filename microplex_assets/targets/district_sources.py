"""How the carried district tables were cut from the public files (kept to re-derive them).

The originals in ``../shared/reference/geography/`` are Census API extracts of 916 columns
(3 MB each); the project carries only the columns the district targets use, values and
column names unchanged, with both SHA256s in ``data/SOURCES.json``. The build never calls
these functions (it reads the carried CSVs); a test re-derives each CSV from the original
when ``../shared`` is present and checks the bytes are the carried ones.
"""

from __future__ import annotations

import io
import json

import pandas as pd

from microplex_assets.targets.state_tables import AGE_BANDS

KEYS = ["GEO_ID", "state", "congressional district"]
# S0101 rows 002..019 are the 18 five-year bands of AGE_BANDS (Under 5 ... 85 and over);
# C01 is the total, C03 male, C05 female (C02/C04/C06 are percentages).
AGE_SEX_TOTAL = "S0101_C01_001E"
MALE_BANDS = {f"S0101_C03_{i + 2:03d}E": band for i, band in enumerate(AGE_BANDS)}
FEMALE_BANDS = {f"S0101_C05_{i + 2:03d}E": band for i, band in enumerate(AGE_BANDS)}
AGE_SEX_COLUMNS = (*KEYS, AGE_SEX_TOTAL, *MALE_BANDS, *FEMALE_BANDS)
# S2201: C01 all households, C03 households receiving food stamps/SNAP in the past 12 months.
HOUSEHOLDS = "S2201_C01_001E"
SNAP_HOUSEHOLDS = "S2201_C03_001E"
SNAP_COLUMNS = (*KEYS, HOUSEHOLDS, SNAP_HOUSEHOLDS)
RENT_COLUMNS = ("state_fips", "district", "median_2br_rent", "national_median_2br_rent")
RENT_MISSING = -666666666  # Census's "no estimate" (the ZZ rows: no district)


def census_api_frame(data: bytes) -> pd.DataFrame:
    """A Census API JSON (a list of rows, the first the column names) as text columns."""
    rows = json.loads(data)
    return pd.DataFrame(rows[1:], columns=rows[0], dtype=str)


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode()


def derive_age_sex(original: bytes) -> bytes:
    """S0101 by district: the keys, total population and the 36 male/female age bands."""
    frame = census_api_frame(original)
    return _csv(frame[list(AGE_SEX_COLUMNS)])


def derive_snap(original: bytes) -> bytes:
    """S2201 by district: the keys, households and households receiving SNAP."""
    frame = census_api_frame(original)
    return _csv(frame[list(SNAP_COLUMNS)])


def derive_rents(original: bytes) -> bytes:
    """Median 2-bedroom rent by district (118th Congress), the three no-district rows
    (``ZZ``, value -666666666) and the name column dropped."""
    frame = pd.read_csv(io.BytesIO(original), dtype=str)
    frame = frame[pd.to_numeric(frame["median_2br_rent"]) != RENT_MISSING]
    return _csv(frame[list(RENT_COLUMNS)])
