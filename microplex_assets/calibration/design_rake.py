"""Rake the solver's starting weights to the national household count and population by
age before fitting, so the KL pull and the ratio bound hold a demographically right start.

Why: the sampled design weights give 1.41x the Census children aged 0-4 (1.42x aged 5-9)
on the 40k national matrix, and the KL pull towards them held the fitted weights at
1.23x (0-4) and 1.26x (5-9) although the 900 state-by-age targets are fitted: the
population family is one of 19 balanced families, so each of its targets weighs little
against the pull. Too many young children is what made the ARPA child tax credit cost
17% more on our weights than on the eCPS method's. Raking first moves the anchor itself.

The national return counts of chosen filing statuses (SOI, all AGI) may join the margins
(solver setting ``rake_filing_statuses``). The design held 0.84x SOI's head-of-household
returns and 1.22x its joint returns, and raked to age alone the children came off
single parents more than married ones: build 3149d046's weights held 0.65x the
head-of-household returns, 1.12x the joint ones, and children in units without earnings
that made the ARPA child tax credit cost $6.0bn more than on the eCPS method's weights
(which meet SOI's statuses). Raking the start to the head-of-household and joint counts
moved the fit to 0.95x / 1.00x (README, "Calibration a user can trust, measured").

The method is raking calibration (Deville and Saerndal 1992): w_i = s_i exp(a_i . lambda)
for the free households, lambda solved by Newton's method so every margin total is met
exactly; a_i holds household i's contribution to each margin (1 to the household count,
its members of each age group). The fixed spine keeps its own weights and its share of
each margin is taken off first.
"""

from __future__ import annotations

import re

import numpy as np
from scipy import sparse

from microplex_assets.targets.children import CHILDREN_GROUP
from microplex_assets.targets.filing_status import national_returns_target
from microplex_assets.targets.state_tables import NATIONAL_HOUSEHOLDS_TARGET

AGE_BY_STATE_GROUP = "census/population_by_age_by_state"
_AGE_KEY = re.compile(r"/(age_[^/]+)/")


def demographic_margins(
    names: list[str],
    groups: list[str],
    values: np.ndarray,
    matrix: sparse.csr_matrix,
    filing_statuses: tuple[str, ...] = (),
) -> tuple[list[str], sparse.csr_matrix, np.ndarray]:
    """Margin labels, contributions (margins x households) and totals: the national
    household count, per age group the sum of the state-by-age targets, the national
    children under 6 and 6-17 (``targets.children``), and SOI's national return count of
    each of ``filing_statuses`` (``targets.filing_status.STATUS_LABEL`` values) the matrix holds."""
    labels: list[str] = []
    rows: list[sparse.csr_matrix] = []
    totals: list[float] = []
    if NATIONAL_HOUSEHOLDS_TARGET in names:
        index = names.index(NATIONAL_HOUSEHOLDS_TARGET)
        labels.append(NATIONAL_HOUSEHOLDS_TARGET)
        rows.append(matrix[index])
        totals.append(float(values[index]))
    by_age: dict[str, list[int]] = {}
    children: list[int] = []  # under 6 and 6-17: boundaries the 5-year bands lack
    for index, (name, group) in enumerate(zip(names, groups, strict=True)):
        match = _AGE_KEY.search(name)
        if group == AGE_BY_STATE_GROUP and match:
            by_age.setdefault(match.group(1), []).append(index)
        elif group == CHILDREN_GROUP:
            children.append(index)
    for age, indices in sorted(by_age.items()):
        labels.append(f"population {age} (sum of {len(indices)} states)")
        rows.append(sparse.csr_matrix(matrix[indices].sum(axis=0)))
        totals.append(float(np.sum(values[indices])))
    returns = [national_returns_target(status) for status in filing_statuses]
    for index in children + [names.index(name) for name in returns if name in names]:
        labels.append(names[index])
        rows.append(sparse.csr_matrix(matrix[index]))
        totals.append(float(values[index]))
    if not rows:
        return [], sparse.csr_matrix((0, matrix.shape[1])), np.zeros(0)
    return labels, sparse.vstack(rows).tocsr(), np.asarray(totals, dtype=float)


def rake_factors(
    contributions: sparse.csr_matrix,
    totals: np.ndarray,
    start: np.ndarray,
    fixed: np.ndarray,
    tolerance: float = 1e-9,
    max_iterations: int = 100,
) -> np.ndarray:
    """Per-household factor (1 for the fixed spine) that makes the raked start meet every
    margin total. Raises, naming the margin, when a margin's free records cannot reach it
    (no contributions, or a total at or below the fixed records' share)."""
    a = contributions[:, ~fixed].T.tocsr()  # free households x margins
    s = np.asarray(start, dtype=float)[~fixed]
    target = totals - contributions[:, fixed] @ np.asarray(start, dtype=float)[fixed]
    reach = a.T @ s
    bad = np.flatnonzero((reach <= 0) | (target <= 0))
    if bad.size:
        raise ValueError(
            f"cannot rake the design to margin {int(bad[0])}: the free households give "
            f"{reach[bad[0]]:,.0f} and the margin leaves {target[bad[0]]:,.0f}"
        )
    scale = target.copy()  # solve in relative terms: every margin's error is a share
    lam = np.zeros(len(totals))
    for _ in range(max_iterations):
        w = s * np.exp(np.clip(a @ lam, -30, 30))
        error = (a.T @ w - target) / scale
        if np.max(np.abs(error)) < tolerance:
            break
        jacobian = (a.T @ a.multiply(w[:, None])).toarray() / scale[:, None]
        step = np.linalg.lstsq(jacobian, error, rcond=None)[0]
        lam -= step
    else:
        raise ValueError(
            f"raking the design did not converge in {max_iterations} Newton steps "
            f"(largest relative margin error {np.max(np.abs(error)):.3g})"
        )
    factor = np.ones(len(start))
    factor[~fixed] = w / s
    return factor
