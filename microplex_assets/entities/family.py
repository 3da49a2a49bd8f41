"""Family-structure inputs PolicyEngine's own formulas read, derived from the tax units (stage 6).

- ``is_separated`` (person): the head of a married-filing-separately unit (filing status 3,
  taxcalc ``MARS``). ``filing_status`` is a formula in policyengine-us 2.68: a unit files
  separately only when its head or spouse is separated and it is not head-of-household or
  surviving-spouse eligible, so without this input every such unit files single.
- ``own_children_in_household`` (person): on the head and spouse, the unit's dependents under
  18. The scaffolds link dependents to a tax unit, not to a parent, so a dependent grandchild
  or sibling under 18 counts too. With no parent ids in the file, PolicyEngine's
  ``is_parent`` is this count being positive (Medicaid's parent categories, TANF and state
  programs read it); without it nobody is a parent.

Both are computed from ``role``, ``age`` and the tax unit's filing status for every record,
the top-wealth spine's included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

MARRIED_SEPARATELY = 3
CHILD_AGE = 18


def add_family_inputs(person: pd.DataFrame, filing_status: pd.Series) -> dict[str, Any]:
    """Add ``is_separated`` and ``own_children_in_household`` to ``person`` in place.

    ``person`` needs ``tax_unit_id``, ``role`` (head / spouse / dependent) and ``age``;
    ``filing_status`` is the unit's code (1 single, 2 joint, 3 separate, 4 head of household)
    indexed by tax_unit_id. Returns counts for the bundle notes.
    """
    role = person["role"].astype(str).to_numpy()
    unit = person["tax_unit_id"].to_numpy()
    status = filing_status.reindex(unit).to_numpy()
    person["is_separated"] = (role == "head") & (status == MARRIED_SEPARATELY)
    child = (role == "dependent") & (person["age"].to_numpy(dtype=float) < CHILD_AGE)
    children = pd.Series(child).groupby(unit).transform("sum").to_numpy(dtype=np.int64)
    parent = np.isin(role, ["head", "spouse"])
    person["own_children_in_household"] = np.where(parent, children, 0).astype(np.int64)
    return {
        "separated_heads": int(person["is_separated"].sum()),
        "parents": int((person["own_children_in_household"] > 0).sum()),
    }
