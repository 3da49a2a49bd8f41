"""Slices of whole states, put back together in the file's record order (no PolicyEngine:
a stand-in system with two entities)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from microplex_assets.simulation.sliced import (
    SlicedCalculationError,
    SliceOutcome,
    assemble,
    state_slices,
)


def test_slices_hold_whole_states_within_the_cap_largest_first():
    ids = np.arange(100, 130)
    states = np.array([6] * 12 + [36] * 8 + [48] * 6 + [1] * 4)
    slices = state_slices(ids, states, max_households=14)
    # first-fit decreasing: 6 (12), 36 (8) + 48 (6), then 1 (4) fits nowhere
    assert [codes for _, codes in slices] == [[36, 48], [6], [1]]
    assert [len(members) for members, _ in slices] == [14, 12, 4]
    for members, codes in slices:
        assert set(states[np.isin(ids, members)]) == set(codes)  # no state split
    assert np.array_equal(np.sort(np.concatenate([m for m, _ in slices])), ids)


def test_a_state_larger_than_the_cap_is_one_slice_of_its_own():
    ids = np.arange(10)
    slices = state_slices(ids, np.array([6] * 7 + [1] * 3), max_households=4)
    assert [(len(members), codes) for members, codes in slices] == [(7, [6]), (3, [1])]
    with pytest.raises(ValueError, match="at least 1"):
        state_slices(ids, np.zeros(10), max_households=0)


def variable(entity: str) -> SimpleNamespace:
    return SimpleNamespace(entity=SimpleNamespace(key=entity))


SYSTEM = SimpleNamespace(
    entities=[SimpleNamespace(key="person"), SimpleNamespace(key="household")],
    variables={
        name: variable(entity)
        for name, entity in {
            "person_id": "person",
            "person_weight": "person",
            "age": "person",
            "household_id": "household",
            "household_weight": "household",
            "income_tax": "household",
            "household_income_decile": "household",
        }.items()
    },
)


def outcome(people: list[int], households: list[int], **extra) -> SliceOutcome:
    values = {
        ("person_id", None): np.array(people),
        ("person_weight", None): np.full(len(people), 2.0),
        ("age", None): np.array(people) * 1.0,
        ("household_id", None): np.array(households),
        ("household_weight", None): np.full(len(households), 2.0),
        ("income_tax", None): np.array(households) * 10.0,
        ("age", "household"): np.array(households) * 100.0,
    }
    values.update(extra.pop("values", {}))
    return SliceOutcome(len(households), [0], values, extra.get("errors", {}), {})


FILE_IDS = {"person": np.array([1, 2, 3, 4, 5]), "household": np.array([10, 20, 30])}


def test_values_come_back_in_the_file_order_as_weighted_microseries():
    # slice one holds households 30 and 10 (persons 5, 1, 2), slice two household 20.
    sliced = assemble(SYSTEM, 2024, FILE_IDS, [outcome([5, 1, 2], [30, 10]), outcome([3, 4], [20])])
    assert np.array_equal(sliced.values[("age", None)], [1, 2, 3, 4, 5])
    assert np.array_equal(sliced.values[("income_tax", None)], [100, 200, 300])
    tax = sliced.calculate("income_tax", 2024)
    assert float(tax.sum()) == 2.0 * 600  # weighted by household_weight
    assert np.array_equal(sliced.calculate("age", 2024, map_to="household"), [1000, 2000, 3000])


def test_an_unread_key_a_failed_key_and_lost_records_are_named():
    failed = {("income_tax", None): "SPMInputError: SPM unit has no classified adult"}
    parts = [outcome([5, 1, 2], [30, 10], errors=failed), outcome([3, 4], [20])]
    sliced = assemble(SYSTEM, 2024, FILE_IDS, parts)
    with pytest.raises(SlicedCalculationError, match=r"SPMInputError.*slice 1 of 2"):
        sliced.calculate("income_tax", 2024)
    with pytest.raises(KeyError, match="household_id .map_to=person. was not computed"):
        sliced.calculate("household_id", 2024, map_to="person")
    with pytest.raises(ValueError, match="4 person records, the file 5"):
        assemble(SYSTEM, 2024, FILE_IDS, [outcome([5, 1], [30, 10]), outcome([3, 4], [20])])


def test_a_whole_file_ranking_is_refused():
    decile = {("household_income_decile", None): np.array([1, 2])}
    parts = [outcome([5, 1, 2], [30, 10], values=decile), outcome([3, 4], [20])]
    parts[1].values[("household_income_decile", None)] = np.array([3])
    with pytest.raises(ValueError, match="household_income_decile"):
        assemble(SYSTEM, 2024, FILE_IDS, parts)
