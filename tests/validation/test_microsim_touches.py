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
    SSI_CATEGORICAL_VARIABLES,
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


# Each variable a limit reader computes, and the reviewed files that read it. Every one of
# these consumers pays only someone holding a status in SSI_CATEGORICAL_VARIABLES (or sums
# such payments): the basis of ``ssi_categorical_resources_above_limit``.
SSI_TEST_CONSUMERS: dict[str, set[str]] = {
    "meets_ssi_resource_test": {
        "variables/gov/ssa/ssi/is_ssi_eligible.py",
        "variables/gov/states/ca/cdss/state_supplement/ca_state_supplement_eligible_person.py",
        "variables/gov/states/ma/dta/ssp/ma_state_supplement.py",
    },
    "nh_ssp_resources_deemed_from_parents": {"variables/gov/states/nh/dhhs/ssp/nh_ssp_eligible.py"},
    "md_paa_eligible": {
        "variables/gov/states/md/dhs/fia/paa/md_paa.py",
        "variables/gov/states/md/dhs/fia/paa/md_paa_imputed_federal_ssi.py",
        "variables/gov/states/md/dhs/fia/paa/md_paa_personal_needs_allowance.py",
        "variables/gov/states/md/dhs/fia/paa/md_paa_provider_rate.py",
        "variables/gov/states/md/dhs/fia/paa/md_paa_total_cost_of_care.py",
    },
    "nc_sa_eligible": {"variables/gov/states/nc/ncdhhs/sa/nc_sa.py"},
    "va_ag_eligible": {"variables/gov/states/va/dars/ag/va_ag.py"},
}


def test_the_consumers_of_the_ssi_resource_test_are_the_reviewed_ones():
    """A new program reading the SSI resource test in a policyengine-us upgrade may pay
    people outside SSI's categories; it must be reviewed before the rule is trusted."""
    root = _policyengine_us_root()
    sources = {
        path.relative_to(root).as_posix(): path.read_text()
        for path in (root / "variables").rglob("*.py")
    }
    for variable, reviewed in SSI_TEST_CONSUMERS.items():
        readers = {
            name
            for name, text in sources.items()
            if f'"{variable}"' in text and not name.endswith(f"/{variable}.py")
        }
        assert readers == reviewed, variable


def test_ssi_categorical_rule_needs_both_resources_and_a_categorical_member(pe_system):
    household_ids = np.array([10, 20, 30, 40])
    zeros = np.zeros(6)
    person = {
        "household_id": np.array([10, 10, 20, 30, 30, 40]),
        # 10 and 30 hold resources above the floor, 20 and 40 do not.
        "ssi_countable_resources": np.array([3_000.0, 0.0, 100.0, 1_500.0, 1_500.0, 0.0]),
        **{name: zeros.copy() for name in SSI_CATEGORICAL_VARIABLES},
    }
    person["is_ssi_aged_blind_disabled"][1] = 1  # household 10: an aged member
    person["social_security_disability"][2] = 9_000  # household 20: SSDI, few resources
    arrays = _Arrays(pe_system, person, household_ids)
    assert touchable_households("ssi_categorical_resources_above_limit", arrays).tolist() == [10]
    person["receives_ssi"][4] = 12  # household 30: an SSI recipient
    arrays = _Arrays(pe_system, person, household_ids)
    assert touchable_households("ssi_categorical_resources_above_limit", arrays).tolist() == [
        10,
        30,
    ]


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
