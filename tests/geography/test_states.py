"""The one state table: 50 states and DC, consistent views, and errors that name the code."""

from __future__ import annotations

import pytest

from microplex_assets.geography.states import (
    CODE_BY_FIPS,
    FIPS_CODES,
    STATE_FIPS,
    STATE_NAMES,
    STATES,
    UnknownStateError,
    code_from_fips,
    fips_from_code,
)
from microplex_assets.partitions import GEOGRAPHIES
from microplex_assets.targets.common import state_from_geo_id


def test_fifty_states_and_dc_in_fips_order():
    assert len(STATES) == 51
    assert [state.fips for state in STATES] == sorted({state.fips for state in STATES})
    assert len({state.code for state in STATES}) == 51
    assert len({state.name for state in STATES}) == 51
    # FIPS order is alphabetical by name (DC sits between Delaware and Florida).
    assert [state.name for state in STATES] == sorted(state.name for state in STATES)
    assert set(FIPS_CODES) == set(range(1, 57)) - {3, 7, 14, 43, 52}  # the unused codes
    assert all(len(code) == 2 and code.isupper() for code in STATE_FIPS)
    assert 72 not in FIPS_CODES and "PR" not in STATE_FIPS  # territories are left out


def test_views_agree():
    assert list(STATE_FIPS) == [state.code for state in STATES]
    assert tuple(STATE_FIPS.values()) == FIPS_CODES
    assert {fips: code for code, fips in STATE_FIPS.items()} == CODE_BY_FIPS
    assert STATE_NAMES["DC"] == "District of Columbia" and STATE_FIPS["DC"] == 11
    assert ("US", *STATE_FIPS) == GEOGRAPHIES


def test_helpers_round_trip_and_name_an_unknown_code():
    for state in STATES:
        assert fips_from_code(state.code) == state.fips
        assert code_from_fips(state.fips) == state.code
    with pytest.raises(UnknownStateError, match="unknown state 'PR'"):
        fips_from_code("PR")
    with pytest.raises(KeyError):  # still a KeyError, as the dict lookups it replaced
        fips_from_code("US")
    with pytest.raises(ValueError, match="unknown state FIPS code 72"):
        code_from_fips(72)


def test_geo_ids_map_through_the_same_table():
    assert state_from_geo_id("0400000US06") == "CA"
    assert state_from_geo_id("0400000US11") == "DC"
    assert state_from_geo_id("0400000US72") is None  # Puerto Rico
    assert state_from_geo_id("0100000US") is None
