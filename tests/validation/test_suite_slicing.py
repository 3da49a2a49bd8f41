"""Reform slices are cut in state order, so each state's programs are simulated in as few
slices as possible (a policyengine-us formula runs only where ``defined_for`` selects)."""

from types import SimpleNamespace

import numpy as np
import pandas as pd

from microplex_assets.validation.microsim.slices import (
    ReformedSystems,
    SliceTask,
    slice_tasks,
    state_order,
)
from microplex_assets.validation.microsim.suite import BaselineInputs


def _inputs(touched: np.ndarray, states: pd.Series | None) -> BaselineInputs:
    return BaselineInputs(
        person_ids=np.arange(3),
        touched={"reform": touched},
        state_aggregates={},
        structural={},
        household_state=states,
    )


def test_state_order_groups_states_then_ids():
    households = np.array([5, 1, 4, 2, 3, 6])
    states = pd.Series([36, 6, 36, 6, 1, 6], index=[5, 1, 4, 2, 3, 6])
    assert state_order(households, states).tolist() == [3, 1, 2, 6, 4, 5]
    assert state_order(households, None).tolist() == households.tolist()


def test_slices_hold_few_states_and_every_household_once():
    rng = np.random.default_rng(0)
    ids = np.arange(1, 1_001)
    states = pd.Series(rng.choice([1, 6, 36, 48, 12], size=ids.size), index=ids)
    manifest = SimpleNamespace(reforms=[SimpleNamespace(id="reform")])
    tasks = slice_tasks(manifest, _inputs(ids, states), chunk_households=200)
    assert len(tasks) == 5
    assert sorted(np.concatenate([t.households for t in tasks]).tolist()) == ids.tolist()
    # five states over five slices: a slice spans at most two (its cut's neighbours) ...
    assert max(states[t.households].nunique() for t in tasks) <= 2
    # ... where id order would put all five in every slice
    unordered = slice_tasks(manifest, _inputs(ids, None), chunk_households=200)
    assert min(states[t.households].nunique() for t in unordered) == 5


def test_a_reformed_system_is_built_at_its_first_slice_and_dropped_after_its_last():
    """Parametric reforms share one system over their slices; the parent holds it only
    between its reform's first and last fork, so at most one is held at a time here."""
    built: list[object] = []

    def build(policy: object) -> object:
        built.append(policy)
        return SimpleNamespace(policy=policy)

    def task(reform_id: str, kind: str) -> SliceTask:
        reform = SimpleNamespace(id=reform_id, kind=kind, changes=())
        return SliceTask(reform, 0, 1, np.arange(3))

    tasks = [task("ctc", "parametric"), task("ctc", "parametric"),
             task("lots", "structural"), task("eitc", "parametric")]  # fmt: skip
    systems = ReformedSystems(tasks, system=None, reform_system=build)
    seen, held = [], []
    for index in range(len(tasks)):
        seen.append(systems.prepare(index, ("args", None))[-1])
        held.append(sorted(systems.held))
    assert seen[0] is seen[1] and seen[2] is None and seen[3] is not seen[0]
    assert len(built) == 2  # one per parametric reform, none for the structural one
    assert held == [["ctc"], [], [], []]  # dropped as its last slice forks
    assert ReformedSystems(tasks, None, reform_system=None).prepare(0, ("a", None)) == ("a", None)
