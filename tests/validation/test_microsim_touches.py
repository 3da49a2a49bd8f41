"""The benchmark suite's touch rules, fast: their inputs and the proof they rest on.

The end-to-end property (a subset simulation equals the whole file's) is proved in
``test_microsim_suite.py``; these tests pin what that proof assumes about policyengine-us.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
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
