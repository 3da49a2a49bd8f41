"""Raking the solver's start to the household count and the population by age: margins
met exactly, the spine untouched, an unreachable margin refused by name; and the solver's
KL pull goes to the anchor it is given, while the ratio bound stays on the design."""

import numpy as np
import pytest
from scipy import sparse

from microplex_assets.calibration.design_rake import (
    AGE_BY_STATE_GROUP,
    demographic_margins,
    rake_factors,
)
from microplex_assets.calibration.solver import calibrate
from microplex_assets.calibration.solver_config import SolverConfig
from microplex_assets.targets.children import CHILDREN_GROUP
from microplex_assets.targets.filing_status import national_returns_target
from microplex_assets.targets.state_tables import NATIONAL_HOUSEHOLDS_TARGET


def _problem(seed: int = 0):
    """60 households in two states (the last 5 a fixed spine) with children and adults;
    targets: the household count and children / adults by state."""
    rng = np.random.default_rng(seed)
    n = 60
    children = rng.integers(0, 4, n).astype(float)
    adults = rng.integers(1, 3, n).astype(float)
    state_a = np.arange(n) % 2 == 0
    rows = [
        np.ones(n),
        children * state_a,
        children * ~state_a,
        adults * state_a,
        adults * ~state_a,
    ]
    names = [
        NATIONAL_HOUSEHOLDS_TARGET,
        "census/population_by_age/age_0_17/state/AA",
        "census/population_by_age/age_0_17/state/BB",
        "census/population_by_age/age_18_plus/state/AA",
        "census/population_by_age/age_18_plus/state/BB",
    ]
    groups = ["census/households"] + [AGE_BY_STATE_GROUP] * 4
    design = rng.uniform(50, 150, n)
    # Truth has 30% fewer children than the design gives, and 10% more households.
    values = np.array([1.1 * design.sum(), *(0.7 * (rows[1:3] @ design)), *(rows[3:] @ design)])
    fixed = np.arange(n) >= n - 5
    return names, groups, values, sparse.csr_matrix(np.vstack(rows)), design, fixed


def test_margins_sum_the_state_rows_by_age_and_the_rake_meets_them():
    names, groups, values, matrix, design, fixed = _problem()
    labels, contributions, totals = demographic_margins(names, groups, values, matrix)
    assert labels[0] == NATIONAL_HOUSEHOLDS_TARGET and len(labels) == 3
    assert totals[1] == pytest.approx(values[1] + values[2])  # age_0_17 over both states
    factor = rake_factors(contributions, totals, design, fixed)
    assert np.all(factor[fixed] == 1.0)
    raked = design * factor
    assert np.allclose(contributions @ raked, totals, rtol=1e-8)
    # Households with more children are scaled down relative to those with none.
    children = np.asarray(matrix[1:3].sum(axis=0)).ravel()
    assert (
        factor[~fixed][children[~fixed] == 3].mean() < factor[~fixed][children[~fixed] == 0].mean()
    )


def test_national_children_are_margins_of_their_own_and_the_rake_meets_them():
    """The under-6 / 6-17 targets (``targets.children``) join the margins unsummed, so the
    raked start holds the children child benefits pay, not only the 5-year bands."""
    names, groups, values, matrix, design, fixed = _problem()
    young = np.asarray(matrix[1:3].sum(axis=0)).ravel()  # every child in this toy is "6-17"
    names = [*names, "census/children/age_6_17/US"]
    groups = [*groups, CHILDREN_GROUP]
    values = np.append(values, 0.7 * (young @ design))  # the same truth as the state rows
    matrix = sparse.vstack([matrix, sparse.csr_matrix(young)]).tocsr()
    labels, contributions, totals = demographic_margins(names, groups, values, matrix)
    assert labels[-1] == "census/children/age_6_17/US" and len(labels) == 4
    assert totals[-1] == values[-1]
    raked = design * rake_factors(contributions, totals, design, fixed)
    assert (young @ raked) == pytest.approx(values[-1], rel=1e-8)
    assert (young @ design) > 1.3 * values[-1]  # the design had far too many


def test_filing_status_returns_join_the_margins_only_when_asked():
    """SOI's national head-of-household return count joins the margins when the solver
    names the status; the raked start then meets it with the other margins, and a status
    the matrix lacks adds nothing while an unknown one is refused by name."""
    names, groups, values, matrix, design, fixed = _problem()
    rng = np.random.default_rng(1)
    hoh = (rng.uniform(size=matrix.shape[1]) < 0.3).astype(float)  # one HoH unit or none
    hoh_name = national_returns_target("head_of_household")
    assert hoh_name == "irs_soi/returns/count/agi_all/head_of_household"
    names = [*names, hoh_name]
    groups = [*groups, "irs_soi/returns"]
    values = np.append(values, 1.4 * (hoh @ design))  # SOI has 40% more than the design
    matrix = sparse.vstack([matrix, sparse.csr_matrix(hoh)]).tocsr()
    plain = demographic_margins(names, groups, values, matrix)[0]
    assert hoh_name not in plain
    labels, contributions, totals = demographic_margins(
        names, groups, values, matrix, ("head_of_household", "separate")
    )
    assert labels == [*plain, hoh_name]  # "separate" is not in this matrix
    raked = design * rake_factors(contributions, totals, design, fixed)
    assert np.allclose(contributions @ raked, totals, rtol=1e-8)
    assert (hoh @ raked) == pytest.approx(values[-1], rel=1e-8)
    with pytest.raises(ValueError, match="'head_of_house'"):
        demographic_margins(names, groups, values, matrix, ("head_of_house",))


def test_an_unreachable_margin_is_refused_naming_it():
    names, groups, values, matrix, design, fixed = _problem()
    values = values.copy()
    values[1] = values[2] = 0.0  # no children at all: the free records cannot reach it
    labels, contributions, totals = demographic_margins(names, groups, values, matrix)
    with pytest.raises(ValueError, match="margin 1"):
        rake_factors(contributions, totals, design, fixed)


def test_no_margins_without_the_groups():
    names, groups, values, matrix, *_ = _problem()
    labels, contributions, totals = demographic_margins(
        ["x"] * len(names), ["y"] * len(groups), values, matrix
    )
    assert labels == [] and contributions.shape == (0, matrix.shape[1]) and totals.size == 0


def test_the_kl_pull_goes_to_the_anchor_and_the_bound_stays_on_the_design():
    # No fitted target can move the weights (one target that they already meet): the KL
    # penalty alone decides, so the fit stays at the anchor, not at the initial weights.
    rng = np.random.default_rng(1)
    initial = rng.uniform(50, 150, 40)
    anchor = initial * rng.uniform(0.5, 2.0, 40)
    matrix = sparse.csr_matrix(np.ones((1, 40)))
    config = SolverConfig(
        epochs=50, l0_lambda=0.0, max_weight_ratio=3.0, kl_penalty=1.0,
        select_by_holdout=False, patience=None,
    )  # fmt: skip
    values = np.array([anchor.sum()])
    result = calibrate(matrix, values, np.array([True]), np.array([True]), initial, config,
                       anchor_weights=anchor)  # fmt: skip
    assert np.allclose(result.weights, anchor, rtol=0.02)
    # An anchor outside the bound is clipped to it: the ratio to the design stays within 3.
    far = initial * 10.0
    clipped = calibrate(matrix, np.array([far.sum()]), np.array([True]), np.array([True]),
                        initial, config, anchor_weights=far)  # fmt: skip
    assert np.max(clipped.weights / initial) <= 3.0 + 1e-6
