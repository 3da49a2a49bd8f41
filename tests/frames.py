"""Small hand-built ObservationFrames in the CPS scaffold's shape, for stage tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from microplex_assets.sources.frame import ObservationFrame


def tiny_scaffold(
    households: int = 300, seed: int = 0, states: tuple[int, ...] = (1, 6, 36, 48)
) -> ObservationFrame:
    """Households of one or two tax units (head, maybe spouse, 0-2 children) across states."""
    rng = np.random.default_rng(seed)
    hh_rows, tu_rows, person_rows = [], [], []
    person_id = tax_unit_id = 0
    for h in range(1, households + 1):
        units = 1 + int(rng.random() < 0.2)
        weight = float(rng.uniform(200, 2000))
        hh_rows.append(
            {"household_id": h, "state_fips": states[h % len(states)], "household_weight": weight}
        )
        for unit in range(units):
            tax_unit_id += 1
            married = rng.random() < 0.5
            children = int(rng.integers(0, 3))
            wage = float(rng.lognormal(10.5, 1.2)) if h % 50 else 5e6  # a few very rich
            tu_rows.append(
                {
                    "tax_unit_id": tax_unit_id,
                    "household_id": h,
                    "filing_status": 2 if married else 1,
                    "ssi_reported": 9000.0 if h % 37 == 0 else 0.0,
                    "snap_reported": 2000.0 if h % 9 == 0 else 0.0,
                }
            )
            roles = ["head"] + (["spouse"] if married else []) + ["dependent"] * children
            for line, role in enumerate(roles):
                person_id += 1
                person_rows.append(
                    {
                        "person_id": person_id,
                        "household_id": h,
                        "tax_unit_id": tax_unit_id,
                        "family_position": unit + 1,
                        "role": role,
                        "line_in_tax_unit": line,
                        "age": int(rng.integers(25, 80))
                        if role != "dependent"
                        else int(rng.integers(0, 18)),
                        "is_blind": False,
                        "employment_income_before_lsr": wage if role == "head" else 0.0,
                        "taxable_interest_income": 100.0 if role == "head" else 0.0,
                    }
                )
    return ObservationFrame(
        source="tiny",
        year=2024,
        tables={
            "household": pd.DataFrame(hh_rows),
            "tax_unit": pd.DataFrame(tu_rows),
            "person": pd.DataFrame(person_rows),
        },
        links={"person": ["household", "tax_unit"], "tax_unit": ["household"]},
        provenance={"kind": "synthetic", "note": "test fixture"},
    )
