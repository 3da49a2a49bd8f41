"""The three-way split: whole target groups leave the fit, so the fit can be judged on facts
it never saw.

- train: fitted;
- validation: held out, chooses the solver's epoch (and any tuning), so it is not a claim;
- test: held out and never shown to a solver (``fixed_records.residual_problem`` withholds
  its rows): the claim the held-out gates judge.

A group is a whole table or variable (every AGI band of one SOI variable, every state
of one state table): holding out rows inside a group would let the fit learn the group
from its neighbours and flatter the held-out loss. The groups are fixed by the run
profile, and a split must hold out at least one geography (state-level) group and one
income or program (national) group wherever the cell has targets of that level, so both
kinds of overfitting show.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pandas as pd

from microplex_assets.calibration.matrix import TargetMatrix
from microplex_assets.sources.soi_bands import SOI_NEEDED

# The SOI tables the synthetic PUF-like donor reproduces (Publication 1304 Tables 1.1, 1.2,
# 1.4 and 2.1; 1.4A and the by-size-of-AGI tables are the same Table 1.4 facts).
DONOR_TABLE_PATTERN = re.compile(
    r"Table (?:1\.1|1\.2|1\.4A?|2\.1)\b|Individual Statistical Tables by Size of Adjusted"
)


class HoldoutError(ValueError):
    """The requested held-out groups do not make a valid split."""


def donor_built_families(targets: pd.DataFrame) -> set[str]:
    """Families with a group the synthetic donor was synthesized from (an SOI column it
    reproduces, ``count`` being the returns group, or a group from its SOI tables): a test
    split must hold none, or the donor's fit would pass for generalisation."""
    columns = {"returns" if c == "count" else c for c in SOI_NEEDED}
    by_column = targets["group"].str.removeprefix("irs_soi/").isin(columns)
    by_table = targets["table"].fillna("").astype(str).str.contains(DONOR_TABLE_PATTERN)
    return set(targets.loc[by_column | by_table, "family"])


def _groups_mask(
    matrix: TargetMatrix, chosen: tuple[str, ...], role: str, require_levels: bool
) -> np.ndarray:
    groups = matrix.groups
    kept_groups = set(groups.tolist())
    absent = [g for g in chosen if g not in kept_groups]
    if absent:
        raise HoldoutError(
            f"{role} groups with no kept target: {absent}; kept groups are e.g. "
            f"{sorted(kept_groups)[:12]}"
        )
    mask = np.isin(groups, list(chosen))
    national = matrix.is_national
    for level, present in (("state-level", ~national), ("national", national)):
        if require_levels and present.any() and not (mask & present).any():
            raise HoldoutError(
                f"{role} groups {list(chosen)} include no {level} group, "
                f"though the cell has {int(present.sum())} {level} targets"
            )
    return mask


def split_by_groups(
    matrix: TargetMatrix,
    held_out_groups: tuple[str, ...],
    test_groups: tuple[str, ...] = (),
) -> TargetMatrix:
    """The matrix with ``train`` False for every kept target of the validation
    (``held_out_groups``) and test groups, and ``test`` True for the test groups.

    Raises HoldoutError naming the groups that have no kept target, a group in both
    splits, a split (validation; test when given) without a state-level or a national
    group, or a split that leaves nothing to train on.
    """
    both = sorted(set(held_out_groups) & set(test_groups))
    if both:
        raise HoldoutError(f"groups {both} are both validation and test groups")
    validation = _groups_mask(matrix, held_out_groups, "validation", require_levels=True)
    test = (
        _groups_mask(matrix, test_groups, "test", require_levels=True)
        if test_groups
        else np.zeros(len(validation), dtype=bool)
    )
    if test.any():
        frame = matrix.targets.to_frame()
        test_families = set(frame.loc[test, "family"])
        leaking = sorted(test_families & donor_built_families(frame))
        if leaking:
            raise HoldoutError(
                f"test groups {list(test_groups)} lie in families {leaking}, which the "
                "synthetic tax donor was built from; a test split must not hold them"
            )
        shared = sorted(test_families & set(frame.loc[~test, "family"]))
        if shared:
            raise HoldoutError(
                f"test families {shared} also have train or validation groups: test holds "
                "whole families"
            )
    held_out = validation | test
    if held_out.all():
        raise HoldoutError("every kept target is held out: nothing left to fit")
    ledger = matrix.ledger.copy()
    kept = ledger["status"] == "kept"
    ledger["held_out"] = ledger["group"].isin([*held_out_groups, *test_groups]) & kept
    ledger["split"] = np.where(
        ~kept,
        "",
        np.where(
            ledger["group"].isin(test_groups),
            "test",
            np.where(ledger["group"].isin(held_out_groups), "validation", "train"),
        ),
    )
    return replace(matrix, train=~held_out, test=test, ledger=ledger)
