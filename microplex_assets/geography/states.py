"""The 50 states and DC: Census FIPS code, postal code and name. The one state table.

Every stage that names a state reads it from here: the partition grid (``local|CA``), the
source readers' allowed state codes, the target registry's ``0400000US06`` GEO_IDs, the
county assignment, the derived bundles. Puerto Rico and the other territories are left
out on purpose: a CPS-based build covers the 50 states and DC (a reader that accepts
Puerto Rico, such as the ACS PUMS, adds it itself).

This module imports nothing from the project, so any package may depend on it.
"""

from __future__ import annotations

from typing import NamedTuple


class State(NamedTuple):
    fips: int  # Census state FIPS code (1 Alabama ... 56 Wyoming)
    code: str  # two-letter postal code
    name: str


# In FIPS order, which is also alphabetical by name (DC between Delaware and Florida).
STATES: tuple[State, ...] = (
    State(1, "AL", "Alabama"), State(2, "AK", "Alaska"), State(4, "AZ", "Arizona"),
    State(5, "AR", "Arkansas"), State(6, "CA", "California"), State(8, "CO", "Colorado"),
    State(9, "CT", "Connecticut"), State(10, "DE", "Delaware"),
    State(11, "DC", "District of Columbia"), State(12, "FL", "Florida"),
    State(13, "GA", "Georgia"), State(15, "HI", "Hawaii"), State(16, "ID", "Idaho"),
    State(17, "IL", "Illinois"), State(18, "IN", "Indiana"), State(19, "IA", "Iowa"),
    State(20, "KS", "Kansas"), State(21, "KY", "Kentucky"), State(22, "LA", "Louisiana"),
    State(23, "ME", "Maine"), State(24, "MD", "Maryland"), State(25, "MA", "Massachusetts"),
    State(26, "MI", "Michigan"), State(27, "MN", "Minnesota"), State(28, "MS", "Mississippi"),
    State(29, "MO", "Missouri"), State(30, "MT", "Montana"), State(31, "NE", "Nebraska"),
    State(32, "NV", "Nevada"), State(33, "NH", "New Hampshire"), State(34, "NJ", "New Jersey"),
    State(35, "NM", "New Mexico"), State(36, "NY", "New York"),
    State(37, "NC", "North Carolina"), State(38, "ND", "North Dakota"), State(39, "OH", "Ohio"),
    State(40, "OK", "Oklahoma"), State(41, "OR", "Oregon"), State(42, "PA", "Pennsylvania"),
    State(44, "RI", "Rhode Island"), State(45, "SC", "South Carolina"),
    State(46, "SD", "South Dakota"), State(47, "TN", "Tennessee"), State(48, "TX", "Texas"),
    State(49, "UT", "Utah"), State(50, "VT", "Vermont"), State(51, "VA", "Virginia"),
    State(53, "WA", "Washington"), State(54, "WV", "West Virginia"),
    State(55, "WI", "Wisconsin"), State(56, "WY", "Wyoming"),
)  # fmt: skip

# Views of the table (all in FIPS order).
STATE_FIPS: dict[str, int] = {state.code: state.fips for state in STATES}  # "CA" -> 6
CODE_BY_FIPS: dict[int, str] = {state.fips: state.code for state in STATES}  # 6 -> "CA"
STATE_NAMES: dict[str, str] = {state.code: state.name for state in STATES}  # "CA" -> name
FIPS_CODES: tuple[int, ...] = tuple(CODE_BY_FIPS)  # 1, 2, 4, ..., 56


class UnknownStateError(KeyError, ValueError):
    """A code that is not one of the 50 states or DC (a KeyError, as a dict lookup was)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def fips_from_code(code: str) -> int:
    """FIPS code of a postal code (``"CA"`` -> 6); UnknownStateError names the code."""
    try:
        return STATE_FIPS[code]
    except (KeyError, TypeError):
        raise UnknownStateError(
            f"unknown state {code!r}; expected a postal code of the 50 states or DC"
        ) from None


def code_from_fips(fips: int) -> str:
    """Postal code of a FIPS code (6 -> ``"CA"``); UnknownStateError names the code."""
    try:
        return CODE_BY_FIPS[fips]
    except (KeyError, TypeError):
        raise UnknownStateError(
            f"unknown state FIPS code {fips!r}; expected one of the 50 states or DC"
        ) from None
