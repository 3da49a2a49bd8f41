"""The 436 districts of the 119th Congress: keys, the Census conventions, refused keys."""

from __future__ import annotations

import collections
import json
import shutil

import pytest

from microplex_assets.geography import districts as module
from microplex_assets.geography.districts import (
    DistrictListError,
    UnknownDistrictError,
    district_from_geoid,
    district_keys,
    districts,
    districts_of_state,
    parse_district,
    validate_district,
)
from microplex_assets.geography.states import STATE_FIPS, UnknownStateError


def test_436_districts_one_key_each_in_every_state_and_dc():
    found = districts()
    assert len(found) == 436 and len(set(district_keys())) == 436
    seats = collections.Counter(d.state for d in found)
    assert set(seats) == set(STATE_FIPS)
    assert sum(n for s, n in seats.items() if s != "DC") == 435
    assert (seats["CA"], seats["TX"], seats["FL"], seats["NY"]) == (52, 38, 28, 26)
    # Apportionment of 2020: seats are numbered 1..n in every state.
    for state, n in seats.items():
        assert [d.number for d in districts_of_state(state)] == list(range(1, n + 1))
    assert district_keys()[0] == "AL-01" and district_keys()[-1] == "WY-01"


def test_at_large_states_and_dc_are_seat_one_with_their_census_codes():
    single = {d.state: d for d in districts() if d.census_code in ("00", "98")}
    assert sorted(single) == ["AK", "DC", "DE", "ND", "SD", "VT", "WY"]
    assert all(d.key == f"{d.state}-01" for d in single.values())
    assert single["DC"].census_code == "98" and single["DC"].geoid == 1198
    assert single["WY"].geoid == 5600 and single["WY"].geo_id == "5001900US5600"
    assert "Delegate District" in single["DC"].name
    assert parse_district("CA-12").geo_id == "5001900US0612"


@pytest.mark.parametrize(
    "text, key",
    [
        ("CA-12", "CA-12"),
        ("ca-12", "CA-12"),
        ("CA12", "CA-12"),
        ("CA-2", "CA-02"),
        (" tx 38 ", "TX-38"),
        ("WY-00", "WY-01"),
        ("WY-AL", "WY-01"),
        ("wy-01", "WY-01"),
        ("DC-98", "DC-01"),
        ("DC-00", "DC-01"),
        ("612", "CA-12"),
        ("5600", "WY-01"),
        ("1198", "DC-01"),
    ],
)
def test_accepted_forms_name_one_district(text, key):
    assert validate_district(text) == key


def test_geoid_lookup_and_its_refusal():
    assert district_from_geoid(3601).key == "NY-01"
    with pytest.raises(UnknownDistrictError, match="7298"):
        district_from_geoid(7298)  # Puerto Rico's resident commissioner


@pytest.mark.parametrize(
    "text, near",
    [
        ("CA-53", "'CA-52'"),  # California has 52
        ("CA-00", "'CA-01'"),  # not at-large
        ("DE-02", "'DE-01'"),  # one seat
        ("PR-98", "near matches"),  # territories are left out
        ("ZZ-01", "near matches"),
        ("Texas", "near matches"),
        ("CA-", "'CA-01'"),
    ],
)
def test_an_unknown_district_is_refused_naming_it_and_near_matches(text, near):
    with pytest.raises(UnknownDistrictError) as raised:
        parse_district(text)
    message = str(raised.value)
    assert repr(text) in message and near in message and "436 districts" in message
    assert isinstance(raised.value, KeyError) and isinstance(raised.value, ValueError)


def test_california_53_suggests_its_neighbours_first():
    with pytest.raises(UnknownDistrictError, match=r"CA has 52 district\(s\).*\['CA-52', 'CA-51'"):
        parse_district("CA-53")


def test_unknown_state_is_refused_by_the_state_table():
    with pytest.raises(UnknownStateError, match="'PR'"):
        districts_of_state("PR")


def test_a_changed_district_list_fails_its_hash(tmp_path, monkeypatch):
    copy = tmp_path / "data"
    shutil.copytree(module.DATA_DIR, copy)
    path = copy / module.DISTRICT_LIST_FILE
    rows = json.loads(path.read_text())
    path.write_text(json.dumps(rows[:-5]))
    monkeypatch.setattr(module, "DATA_DIR", copy)
    module._districts.cache_clear()
    try:
        with pytest.raises(DistrictListError, match="sha256"):
            module._districts()
    finally:
        module._districts.cache_clear()
