"""The held-out split: whole target groups leave the fit, so the fit can be judged on facts
it never saw.

A group is a whole table or variable (every AGI band of one SOI variable, every state
of one state table): holding out rows inside a group would let the fit learn the group
from its neighbours and flatter the held-out loss. The groups are fixed by the run
profile, and a split must hold out at least one geography (state-level) group and one
income or program (national) group wherever the cell has targets of that level, so both
kinds of overfitting show.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from microplex_assets.calibration.matrix import TargetMatrix


class HoldoutError(ValueError):
    """The requested held-out groups do not make a valid split."""


def split_by_groups(matrix: TargetMatrix, held_out_groups: tuple[str, ...]) -> TargetMatrix:
    """The matrix with ``train`` False for every kept target of the held-out groups.

    Raises HoldoutError naming the groups that have no kept target, or when the split
    lacks a state-level group or a national group, or leaves nothing to train on.
    """
    groups = matrix.groups
    kept_groups = set(groups.tolist())
    absent = [g for g in held_out_groups if g not in kept_groups]
    if absent:
        raise HoldoutError(
            f"held-out groups with no kept target: {absent}; kept groups are e.g. "
            f"{sorted(kept_groups)[:12]}"
        )
    held_out = np.isin(groups, list(held_out_groups))
    national = matrix.is_national
    for level, present in (("state-level", ~national), ("national", national)):
        if present.any() and not (held_out & present).any():
            raise HoldoutError(
                f"held-out groups {list(held_out_groups)} include no {level} group, "
                f"though the cell has {int(present.sum())} {level} targets"
            )
    if held_out.all():
        raise HoldoutError("every kept target is held out: nothing left to fit")
    ledger = matrix.ledger.copy()
    ledger["held_out"] = ledger["group"].isin(held_out_groups) & (ledger["status"] == "kept")
    return replace(matrix, train=~held_out, ledger=ledger)
