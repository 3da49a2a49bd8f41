"""Small synthetic calibration problems with a known truth, for holdout and gate tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from microplex_assets.calibration.matrix import LEDGER_COLUMNS, TargetMatrix
from microplex_assets.targets.model import Target, TargetSet

SOURCE = {"agency": "test", "table": "synthetic", "year": 2024}
# family, group, geography, number of targets
LAYOUT = (
    ("wages", "irs_soi/employment_income", "US", 6),
    ("ssi", "ssa/ssi", "US", 2),
    ("snap", "usda/snap_state", "CA", 1),
    ("snap", "usda/snap_state", "TX", 1),
    ("agi", "irs_soi/agi_by_state", "CA", 3),
    ("agi", "irs_soi/agi_by_state", "TX", 3),
    ("partnership_s_corp", "irs_soi/partnership_s_corp_income", "US", 4),
)


def synthetic_matrix(households: int = 200, seed: int = 0) -> tuple[TargetMatrix, np.ndarray]:
    """A matrix whose targets the returned truth weights hit exactly."""
    rng = np.random.default_rng(seed)
    targets, rows = [], []
    truth = rng.uniform(50, 150, households)
    for family, group, geography, count in LAYOUT:
        for i in range(count):
            row = rng.lognormal(8, 1, households) * (rng.random(households) < 0.4)
            targets.append(
                Target(
                    name=f"{group}/{geography}/{i}",
                    value=float(row @ truth),
                    period=2024,
                    variable="employment_income",
                    aggregation="sum",
                    entity="person",
                    scope="population",
                    geography=geography,
                    family=family,
                    group=group,
                    source=SOURCE,
                )
            )
            rows.append(row)
    ledger = pd.DataFrame(
        [
            {
                "name": t.name,
                "family": t.family,
                "group": t.group,
                "geography": t.geography,
                "value": t.value,
                "status": "kept",
                "reason": "",
                "supporting_households": 1,
            }
            for t in targets
        ],
        columns=list(LEDGER_COLUMNS),
    )
    ledger["held_out"] = False
    matrix = TargetMatrix(
        matrix=sparse.csr_matrix(np.vstack(rows)),
        targets=TargetSet(tuple(targets)),
        household_ids=np.arange(1, households + 1),
        ledger=ledger,
        train=np.ones(len(targets), dtype=bool),
    )
    return matrix, truth
