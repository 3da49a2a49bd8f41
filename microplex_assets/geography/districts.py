"""The 436 congressional districts of the 119th Congress (435 seats plus DC's delegate).

Keys are ``<postal code>-<two-digit number>`` (``CA-12``). A state with one seat, and DC,
is ``-01`` (``WY-01``, ``DC-01``): PolicyEngine's district files and its API name them
that way (one-based), so a user who knows the incumbent's ``AK-01`` finds it here, and a
key's number is always a seat number (1..52). The Census convention (``00`` for at-large,
``98`` for DC's delegate, as in GEOID ``5600`` and ``1198``) is kept on each district as
``census_code`` / ``geoid``, which is what the carried ACS and county tables use; the
parser accepts it (``WY-00``, ``DC-98``), ``WY-AL``, a lower-case key, no hyphen, a
one-digit number and the four-digit GEOID.

The list is the Census Bureau's (ACS 5-year 2024, ``data/acs5_congressional_districts_
2024.json``, first row the column names), carried and hash-checked. Left out: Puerto
Rico's resident commissioner (``7298``, outside the 50 states + DC like the state table)
and the three ``ZZ`` rows ("Congressional Districts not defined": water areas of CT, IL
and NH that belong to no district).
"""

from __future__ import annotations

import difflib
import json
import re
from functools import lru_cache
from typing import NamedTuple

from microplex_assets.files import carried_file
from microplex_assets.geography.counties import DATA_DIR, SOURCES_FILE
from microplex_assets.geography.states import CODE_BY_FIPS, STATE_FIPS, UnknownStateError

DISTRICT_LIST_FILE = "acs5_congressional_districts_2024.json"
CONGRESS = 119
N_DISTRICTS = 436
AT_LARGE = "00"  # Census code of a state's only district
DELEGATE = "98"  # Census code of DC's delegate district (Puerto Rico's is 98 too)
NOT_DEFINED = "ZZ"  # Census: area in no district (water)
COLUMNS = ["NAME", "state", "congressional district"]
_KEY = re.compile(r"^\s*([A-Za-z]{2})\s*[-_ ]?\s*(\d{1,2}|AL)\s*$", re.IGNORECASE)


class District(NamedTuple):
    key: str  # "CA-12", "WY-01", "DC-01"
    state: str  # postal code
    state_fips: int
    number: int  # seat number, 1 for a state's only seat and DC
    census_code: str  # the Census code: "12", "00" (at-large), "98" (DC's delegate)
    name: str  # the Census name

    @property
    def geoid(self) -> int:
        """The Census GEOID as an integer (601, 5600, 1198): the key of the ACS tables and
        ``county_cd_distributions.csv`` (``cd_geoid``)."""
        return self.state_fips * 100 + int(self.census_code)

    @property
    def geo_id(self) -> str:
        """The ACS ``GEO_ID`` of the 119th Congress district (``5001900US0612``)."""
        return f"5001900US{self.geoid:04d}"


class DistrictListError(ValueError):
    """The carried district list is not the 436 districts it should be."""


class UnknownDistrictError(KeyError, ValueError):
    """A key that is not one of the 436 districts (a KeyError, as a lookup is)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def district_key(state: str, number: int) -> str:
    """``("CA", 12)`` -> ``"CA-12"``."""
    return f"{state}-{int(number):02d}"


@lru_cache(maxsize=1)
def _districts() -> tuple[District, ...]:
    data, _ = carried_file(DATA_DIR, DISTRICT_LIST_FILE, DistrictListError, SOURCES_FILE)
    rows = json.loads(data)
    if not rows or rows[0] != COLUMNS:
        raise DistrictListError(f"{DISTRICT_LIST_FILE}: first row {rows[:1]} is not {COLUMNS}")
    found = []
    for name, fips_text, code in rows[1:]:
        fips = int(fips_text)
        if code == NOT_DEFINED or fips not in CODE_BY_FIPS:
            continue
        state = CODE_BY_FIPS[fips]
        if code in (AT_LARGE, DELEGATE):
            number = 1
        elif code.isdigit() and 1 <= int(code) <= 52:
            number = int(code)
        else:
            raise DistrictListError(f"{DISTRICT_LIST_FILE}: unexpected district code {code!r}")
        found.append(District(district_key(state, number), state, fips, number, code, name))
    found.sort(key=lambda d: (d.state_fips, d.number))
    keys = [d.key for d in found]
    if len(found) != N_DISTRICTS or len(set(keys)) != N_DISTRICTS:
        raise DistrictListError(
            f"{DISTRICT_LIST_FILE}: {len(set(keys))} distinct districts, expected {N_DISTRICTS}"
        )
    missing = sorted(set(STATE_FIPS) - {d.state for d in found})
    if missing:
        raise DistrictListError(f"{DISTRICT_LIST_FILE}: no district for {missing}")
    return tuple(found)


def districts() -> tuple[District, ...]:
    """The 436 districts in FIPS and seat order (AL-01 ... WY-01)."""
    return _districts()


@lru_cache(maxsize=1)
def _by_key() -> dict[str, District]:
    return {d.key: d for d in _districts()}


@lru_cache(maxsize=1)
def _by_geoid() -> dict[int, District]:
    return {d.geoid: d for d in _districts()}


def district_keys() -> tuple[str, ...]:
    """Every key, in FIPS and seat order."""
    return tuple(_by_key())


def districts_of_state(state: str) -> tuple[District, ...]:
    """A state's districts by postal code (UnknownStateError names a bad code)."""
    if state not in STATE_FIPS:
        raise UnknownStateError(
            f"unknown state {state!r}; expected a postal code of the 50 states or DC"
        )
    return tuple(d for d in _districts() if d.state == state)


def district_from_geoid(geoid: int) -> District:
    """The district of a Census GEOID (601, 5600, 1198); UnknownDistrictError names it."""
    try:
        return _by_geoid()[int(geoid)]
    except (KeyError, TypeError, ValueError):
        raise UnknownDistrictError(
            f"unknown congressional district GEOID {geoid!r}; expected one of the "
            f"{N_DISTRICTS} districts of the {CONGRESS}th Congress (e.g. 612, 5600, 1198)"
        ) from None


def _canonical(text: str) -> str | None:
    """``ca12``, ``CA-2``, ``WY-00``, ``WY-AL``, ``DC-98``, ``5600`` -> a key, else None."""
    text = str(text).strip()
    if text.isdigit() and len(text) in (3, 4):
        district = _by_geoid().get(int(text))
        return district.key if district else None
    match = _KEY.match(text)
    if not match:
        return None
    state, number = match.group(1).upper(), match.group(2).upper()
    if number in ("AL", AT_LARGE, "0") or (state == "DC" and number == DELEGATE):
        seats = [d for d in _districts() if d.state == state]
        return seats[0].key if len(seats) == 1 else None
    return district_key(state, int(number))


def near_matches(text: str, n: int = 5) -> list[str]:
    """Keys close to ``text``: the same state's districts first, then similar spellings."""
    state = str(text).strip()[:2].upper()
    own = [d.key for d in _districts() if d.state == state]
    close = difflib.get_close_matches(str(text).strip().upper(), list(_by_key()), n=n, cutoff=0.5)
    if own:
        number = re.sub(r"\D", "", str(text)) or "0"
        own.sort(key=lambda key: abs(int(key[3:]) - int(number)))
    return list(dict.fromkeys(own[: n - 2 if close else n] + close))[:n]


def parse_district(text: str) -> District:
    """The district a key names (see the module docstring for the accepted forms).

    Raises UnknownDistrictError naming the text and listing near matches (``CA-53``:
    California has 52 districts; ``CA-52``, ``CA-51``, ... are suggested).
    """
    key = _canonical(text)
    district = _by_key().get(key) if key else None
    if district is None:
        state = str(text).strip()[:2].upper()
        seats = len(districts_of_state(state)) if state in STATE_FIPS else 0
        where = f"{state} has {seats} district(s); " if seats else ""
        raise UnknownDistrictError(
            f"unknown congressional district {text!r}: not one of the {N_DISTRICTS} districts "
            f"of the {CONGRESS}th Congress ({where}keys look like 'CA-12', 'WY-01'); "
            f"near matches: {near_matches(text) or 'none'}"
        )
    return district


def validate_district(text: str) -> str:
    """The canonical key of ``text`` (``wy-00`` -> ``WY-01``), or UnknownDistrictError."""
    return parse_district(text).key
