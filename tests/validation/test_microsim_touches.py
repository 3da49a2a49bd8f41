"""The benchmark suite's touch rules, fast: their inputs and the proof they rest on.

The end-to-end property (a subset simulation equals the whole file's) is proved in
``test_microsim_suite.py``; these tests pin what that proof assumes about policyengine-us.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex_assets.validation.microsim.touches import (
    SSI_LIMIT_READERS,
    ssi_resource_floor,
    touchable_households,
)

YEAR = 2024


def _policyengine_us_root() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("policyengine_us")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent


def test_the_ssi_limit_readers_are_the_reviewed_ones():
    """``ssi_resources_above_limit`` is safe because each reader of the SSI resource limits
    compares household members' countable resources with them; a new reader in a
    policyengine-us upgrade must be reviewed (and added) before the rule is trusted."""
    root = _policyengine_us_root()
    readers = {
        path.relative_to(root).as_posix()
        for path in (root / "variables").rglob("*.py")
        if "ssa.ssi" in (text := path.read_text())
        and re.search(r"resources\s*\.\s*limit|resources\s*$", text, re.MULTILINE)
    }
    assert readers == set(SSI_LIMIT_READERS)
    for reader in SSI_LIMIT_READERS:
        text = (root / reader).read_text()
        assert "ssi_countable_resources" in text or "ssi_resources_for_deeming" in text, reader


def test_the_ssi_floor_is_the_current_law_individual_limit(pe_system):
    assert ssi_resource_floor(pe_system, YEAR) == 2_000


class _Arrays:
    """The slice of ``SimulationArrays`` the touch rules read, on hand-made records."""

    def __init__(self, system, person: dict[str, np.ndarray], household_ids: np.ndarray):
        self.system, self.year = system, YEAR
        self.person, self.household_ids = person, household_ids

    def values(self, name: str, entity: str) -> np.ndarray:
        assert entity == "person", entity
        return self.person[name]

    def household_position(self, entity: str) -> np.ndarray:
        return np.searchsorted(self.household_ids, self.person["household_id"])


def test_ssi_rule_keeps_households_whose_resources_pass_the_floor(pe_system):
    household_ids = np.array([10, 20, 30, 40, 50])
    arrays = _Arrays(
        pe_system,
        {
            "household_id": np.array([10, 10, 20, 30, 30, 40, 50, 50]),
            # 10: 1,500 + 1,000 together pass $2,000; 20: exactly the floor; 30: a negative
            # balance must not hide the other member's 2,500; 40: none; 50: 1,999 in all.
            "ssi_countable_resources": np.array(
                [1_500.0, 1_000.0, 2_000.0, -5_000.0, 2_500.0, 0.0, 999.0, 1_000.0]
            ),
        },
        household_ids,
    )
    touched = touchable_households("ssi_resources_above_limit", arrays)
    assert touched.tolist() == [10, 30]


def test_unknown_rule_is_refused(pe_system):
    arrays = _Arrays(pe_system, {"household_id": np.array([1])}, np.array([1]))
    with pytest.raises(ValueError, match="retirees"):
        touchable_households("retirees", arrays)


def test_indexation_impacts_add_back_the_untouched_cash():
    """Indexation lowers the taxable gain, not the proceeds: the impacts read net income
    with the lowered input added back, while ``results`` keep PolicyEngine's values."""
    from microplex_assets.validation.microsim.outputs import SimulationResults
    from microplex_assets.validation.microsim.reforms import STRUCTURAL_REFORMS
    from microplex_assets.validation.microsim.suite import ReformRun

    household = pd.DataFrame(
        {"household_net_income": [50_000.0, 900_000.0], "people": [1.0, 2.0]},
        index=pd.Index([1, 2], name="household_id"),
    )
    person = pd.DataFrame({"household_id": [1, 2, 2], "age": [40, 60, 58], "in_poverty": False})
    results = SimulationResults(household=household, person=person)
    run = ReformRun("capital_gains_indexation", 1, 1.0, results, pd.Series({2: 30_000.0}))
    adjusted = run.impact_results().household["household_net_income"]
    assert adjusted.tolist() == [50_000.0, 930_000.0]
    assert results.household["household_net_income"].tolist() == [50_000.0, 900_000.0]
    assert ReformRun("x", 0, 0.0, results).impact_results() is results
    assert STRUCTURAL_REFORMS["capital_gains_indexation"]["cash_unchanged"] is True
