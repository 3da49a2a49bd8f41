"""The benchmark suite on a small real-code dataset, checked against PolicyEngine itself.

- Skipping households a reform cannot touch changes nothing: every reform's per-household
  net income from the suite (subset simulation merged into the baseline) equals a
  simulation of the whole file under the same reform.
- A reform's budget and net-income impact equals a MicroSeries computation done here,
  independently, on two whole-file simulations.
- The benchmark gate fails when the candidate's weights are distorted.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from microplex_assets.candidate.backends import run_backend
from microplex_assets.entities.build import build_entity_bundle
from microplex_assets.files import json_safe
from microplex_assets.publication.capital_gains_lots import build_capital_gains_lots
from microplex_assets.publication.h5_export import write_policyengine_h5
from microplex_assets.validation.microsim.gates import benchmark_deltas, benchmarks_gate
from microplex_assets.validation.microsim.indexation import policyengine_cpi_u
from microplex_assets.validation.microsim.manifest import load_manifest
from microplex_assets.validation.microsim.reforms import STRUCTURAL_REFORMS, parametric_reform
from microplex_assets.validation.microsim.suite import STATE_AGGREGATE_INPUTS, run_suite
from microplex_resources.policyengine_runtime import (
    policyengine_reform_microsimulation,
    policyengine_reform_system,
)
from tests.frames import tiny_scaffold

YEAR = 2024
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def suite_data(tmp_path_factory, pe_system):
    """60 households (children, seniors, SSI and SNAP reporters, long-term gains), weights
    scaled to national size, written by the real stage-6 and stage-8 code."""
    frame = tiny_scaffold(households=60, seed=3)
    person = frame.tables["person"]
    rng = np.random.default_rng(5)
    heads = person["role"].eq("head").to_numpy()
    gains = np.where(heads & (rng.random(len(person)) < 0.4), rng.lognormal(9, 1.5), 0.0)
    person["long_term_capital_gains_before_response"] = gains
    # SSI resource limits: aged heads without earnings holding $5,000 (over today's $2,000,
    # under the reform's $10,000: the reform pays them SSI), $1,500 (under every limit) and
    # $50,000 (over every limit).
    household = person["household_id"].to_numpy()
    for modulus, balance in ((6, 5_000.0), (10, 1_500.0), (14, 50_000.0)):
        chosen = heads & (household % modulus == 0)
        person.loc[chosen, ["age", "employment_income_before_lsr"]] = [70, 0.0]
        person.loc[chosen, "bank_account_assets"] = balance
    person["bank_account_assets"] = person["bank_account_assets"].fillna(0.0)
    frame.tables["household"]["household_weight"] *= 1_000.0
    bundle = build_entity_bundle(run_backend("seed_passthrough", frame))
    folder = tmp_path_factory.mktemp("suite")
    h5 = folder / f"policyengine_us_{YEAR}.h5"
    write_policyengine_h5(bundle, h5, pe_system)
    weights = bundle.household.set_index("household_id")["household_weight"]
    lots = build_capital_gains_lots(bundle, YEAR, seed=7)
    context = {"lots": lots, "cpi": policyengine_cpi_u(pe_system)}
    baseline = policyengine_reform_microsimulation(h5)
    aggregates = {
        name: pd.Series(baseline.calculate(name, YEAR)).to_numpy(dtype=float)
        for name in STATE_AGGREGATE_INPUTS
    }
    suite = run_suite(
        load_manifest(),
        baseline,
        h5,
        YEAR,
        folder / "work",
        policyengine_reform_microsimulation,
        context,
        chunk_households=59,  # 60 households: a reform touching all of them runs in two slices
        # Each parametric reform's system built once and shared by its slices; every
        # comparison below is against policyengine-us's own reform= on the whole file.
        reform_system=policyengine_reform_system,
    )
    return {
        "h5": h5,
        "weights": weights,
        "suite": suite,
        "context": context,
        "baseline": baseline,
        "state_aggregates": aggregates,
        "whole_file": {},
    }


def whole_file(data, reform_id: str, system) -> dict:
    """Every household of the file simulated under one reform (policyengine-us's own
    ``reform=``), no skipping (the state-aggregate Medicaid inputs from the baseline, as
    PolicyEngine's reforms read them): per-household net income and the weighted
    MicroSeries changes against the baseline simulation."""
    if reform_id in data["whole_file"]:
        return data["whole_file"][reform_id]
    reform = load_manifest().reform(reform_id)
    policy = parametric_reform(reform, system) if reform.kind == "parametric" else None
    before = data["baseline"]
    after = policyengine_reform_microsimulation(data["h5"], policy)
    for name, values in data["state_aggregates"].items():
        after.set_input(name, YEAR, values)
    if reform.kind == "structural":
        spec = STRUCTURAL_REFORMS[reform.structural]
        variable = spec["variable"]
        baseline = pd.Series(after.calculate(variable, YEAR)).to_numpy(dtype=float)
        person_ids = pd.Series(after.calculate("person_id", YEAR)).to_numpy()
        after.set_input(variable, YEAR, spec["apply"](baseline, person_ids, data["context"]))
    net = after.calculate("household_net_income", YEAR)
    tax = after.calculate("income_tax", YEAR)
    ids = pd.Series(after.calculate("household_id", YEAR)).to_numpy().astype(np.int64)
    result = {
        "net_income": pd.Series(pd.Series(net).to_numpy(dtype=float), index=ids).sort_index(),
        "net_change": float((net - before.calculate("household_net_income", YEAR)).sum()),
        "tax_change": float((tax - before.calculate("income_tax", YEAR)).sum()),
    }
    data["whole_file"][reform_id] = result
    return result


def test_skipping_untouchable_households_and_slicing_change_nothing(suite_data, pe_system):
    suite = suite_data["suite"]
    for reform in load_manifest().reforms:
        run = suite.runs[reform.id]
        expected = whole_file(suite_data, reform.id, pe_system)["net_income"]
        got = run.results.household["household_net_income"]
        np.testing.assert_allclose(
            got.to_numpy(), expected.reindex(got.index).to_numpy(), rtol=0, atol=0.01,
            err_msg=f"{reform.id}: subset simulation differs from the whole file",
        )  # fmt: skip


def test_every_reform_touches_someone_and_the_broad_one_simulates_all(suite_data):
    suite = suite_data["suite"]
    households = len(suite.baseline.household)
    simulated = {k: run.households_simulated for k, run in suite.runs.items()}
    assert max(simulated.values()) == households  # the broad reform: a full recomputation
    assert min(simulated.values()) < households  # at least one reform skips households
    impacts = suite.impacts({"candidate": suite_data["weights"]})
    moved = {k: abs(v["candidate"]["household_net_income_change_bn"]) for k, v in impacts.items()}
    for reform_id in ("arpa_ctc", "arpa_childless_eitc", "standard_deduction_plus_2000"):
        if reform_id in moved:
            assert moved[reform_id] > 0, reform_id


def test_ssi_rule_simulates_only_households_over_the_resource_limit(suite_data):
    """The SSI reform reaches households whose resources sit between the old and new
    limits, skips the aged without resources, and still moves net income (so the
    subset-equals-whole-file check above is not vacuous for it)."""
    suite = suite_data["suite"]
    run = suite.runs["ssi_asset_limit"]
    assert 0 < run.households_simulated < len(suite.baseline.household)
    change = (
        run.results.household["household_net_income"]
        - suite.baseline.household["household_net_income"]
    )
    assert (change > 1).any()
    assert (change >= -0.01).all()  # a higher limit takes SSI from no one


def test_impacts_equal_an_independent_microseries_computation(suite_data, pe_system):
    """Weighted totals through PolicyEngine's own MicroSeries on two whole-file simulations."""
    whole = whole_file(suite_data, "arpa_ctc", pe_system)
    impacts = suite_data["suite"].impacts({"candidate": suite_data["weights"]})["arpa_ctc"]
    # PolicyEngine holds money as float32: agreement to 1e-6 is agreement.
    assert impacts["candidate"]["household_net_income_change_bn"] == pytest.approx(
        whole["net_change"] / 1e9, rel=1e-6
    )
    assert impacts["candidate"]["income_tax_change_bn"] == pytest.approx(
        whole["tax_change"] / 1e9, rel=1e-6
    )
    assert impacts["candidate"]["income_tax_change_bn"] < 0  # a larger credit costs revenue
    assert impacts["candidate"]["budget_impact_bn"] < 0


def test_benchmark_gate_fails_on_distorted_weights(suite_data):
    weights = suite_data["weights"]
    suite = suite_data["suite"]
    distorted = weights * np.where(np.arange(len(weights)) % 2 == 0, 4.0, 0.25)
    impacts = suite.impacts({"candidate": distorted, "ecps_method": weights})
    gate = benchmarks_gate(benchmark_deltas(impacts, "candidate", "ecps_method", {}))
    assert not gate.passed
    same = suite.impacts({"candidate": weights, "ecps_method": weights})
    assert benchmarks_gate(benchmark_deltas(same, "candidate", "ecps_method", {})).passed


def test_forked_slices_equal_in_process_slices(suite_data):
    """The fixture's suite ran each slice in a forked child (the default on Linux); the
    structural reform (with its cash add-back), simulated in this process instead, gives
    bit-identical results and impacts. (One reform only: each costs a simulation, and the
    fixture's broad reform already ran in two forked slices.)"""
    manifest = load_manifest()
    chosen = ("capital_gains_indexation",)
    in_process = run_suite(
        dataclasses.replace(manifest, reforms=tuple(manifest.reform(r) for r in chosen)),
        policyengine_reform_microsimulation(suite_data["h5"]),
        suite_data["h5"],
        YEAR,
        suite_data["h5"].parent / "work_in_process",
        policyengine_reform_microsimulation,
        suite_data["context"],
        chunk_households=59,
        isolate=False,
    )
    forked = suite_data["suite"]
    pd.testing.assert_frame_equal(in_process.baseline.household, forked.baseline.household)
    assert forked.runs["standard_deduction_plus_2000"].households_simulated == 60
    for reform_id in chosen:
        run, other = forked.runs[reform_id], in_process.runs[reform_id]
        assert other.households_simulated == run.households_simulated
        pd.testing.assert_frame_equal(other.results.household, run.results.household, rtol=0)
        pd.testing.assert_frame_equal(other.results.person, run.results.person, rtol=0)
        if run.cash_add_back is None:
            assert other.cash_add_back is None
        else:
            pd.testing.assert_series_equal(other.cash_add_back, run.cash_add_back, rtol=0)
    weights = {"candidate": suite_data["weights"]}
    impacts = [json_safe(s.impacts(weights)) for s in (in_process, forked)]
    for reform_id in chosen:
        assert json.dumps(impacts[0][reform_id]) == json.dumps(impacts[1][reform_id])


def test_indexation_makes_nobody_poorer_in_spm_terms(suite_data):
    """Indexation only lowers taxable gains (a tax cut; the sale proceeds are unchanged), so
    with the removed gain restored to SPM resources no one may enter SPM poverty. Before the
    fix the flags came from resources that had lost the gain: +0.35 points on 40k builds."""
    suite = suite_data["suite"]
    before = suite.baseline.person["in_poverty"]
    after = suite.runs["capital_gains_indexation"].results.person["in_poverty"]
    entered = after.reindex(before.index).astype(bool) & ~before.astype(bool)
    assert not entered.any(), f"{int(entered.sum())} persons entered SPM poverty"
