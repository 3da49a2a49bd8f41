"""The published H5's baseline simulated in slices of whole states equals a whole-file
``Microsimulation``: every value its readers read (the schema gate's totals and SPM
poverty, the stage-9 aggregates, the suite's baseline results and inputs, Medicaid's
state-wide per-enrollee cost included), on a small real-code dataset of four states."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex_assets.calibration.simulation_arrays import SimulationArrays
from microplex_assets.candidate.backends import run_backend
from microplex_assets.entities.build import build_entity_bundle
from microplex_assets.publication.capital_gains_lots import build_capital_gains_lots
from microplex_assets.publication.h5_export import write_policyengine_h5
from microplex_assets.publication.schema_gate import check_microsimulation
from microplex_assets.validation.aggregates import national_aggregates
from microplex_assets.validation.baseline_pass import published_baseline, release_baselines
from microplex_assets.validation.microsim.indexation import policyengine_cpi_u
from microplex_assets.validation.microsim.manifest import load_manifest
from microplex_assets.validation.microsim.suite import baseline_inputs, simulation_results
from microplex_resources.policyengine_runtime import PolicyEngineRuntime
from tests.frames import tiny_scaffold

YEAR = 2024
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def baselines(tmp_path_factory, pe_system):
    """60 households in four states (15 each), simulated whole and in two slices."""
    frame = tiny_scaffold(households=60, seed=3)
    frame.tables["household"]["household_weight"] *= 1_000.0
    bundle = build_entity_bundle(run_backend("seed_passthrough", frame))
    folder = tmp_path_factory.mktemp("baseline_pass")
    h5 = folder / f"policyengine_us_{YEAR}.h5"
    write_policyengine_h5(bundle, h5, pe_system)
    context = {
        "lots": build_capital_gains_lots(bundle, YEAR, seed=7),
        "cpi": policyengine_cpi_u(pe_system),
    }
    runtime = PolicyEngineRuntime()
    release_baselines()
    messages: list[str] = []
    sliced = published_baseline(h5, YEAR, runtime, context, folder / "slices", 30, messages.append)
    whole = runtime.reform_microsimulation(h5)
    yield whole, sliced, context, messages, h5, runtime
    release_baselines()


def test_two_slices_of_two_whole_states_each(baselines):
    _, sliced, _, messages, _, _ = baselines
    assert [s["households"] for s in sliced.slices] == [30, 30]
    assert sorted(code for s in sliced.slices for code in s["states"]) == [1, 6, 36, 48]
    assert len([m for m in messages if m.startswith("sliced simulation")]) == 2
    assert not sliced.errors and not sliced.reader_errors


def test_every_value_read_equals_the_whole_file_simulation(baselines):
    whole, sliced, _, _, _, _ = baselines
    read = [key for key in sliced.values if not key[0].endswith("_weight")]
    assert ("medicaid_slcsp_state_denominator", None) in sliced.values
    assert ("person_in_poverty", None) in sliced.values
    assert len(read) > 20
    for variable, map_to in read:
        expected = pd.Series(whole.calculate(variable, YEAR, map_to=map_to)).to_numpy()
        got = sliced.values[(variable, map_to)]
        if expected.dtype.kind in "fi":
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9, err_msg=variable)
        else:
            assert np.array_equal(got, expected), variable


def test_the_readers_get_the_whole_file_results(baselines):
    whole, sliced, context, _, h5, _ = baselines
    gate_whole = check_microsimulation(h5, YEAR, lambda _: whole)
    gate_sliced = check_microsimulation(h5, YEAR, lambda _: sliced)
    assert gate_sliced["finite"] and gate_whole["finite"]
    for name in ("income_tax_total", "household_net_income_total", "spm_poverty_rate"):
        assert gate_sliced[name] == pytest.approx(gate_whole[name], rel=1e-12), name
    pd.testing.assert_frame_equal(
        national_aggregates(sliced, YEAR), national_aggregates(whole, YEAR), rtol=1e-12
    )
    manifest = load_manifest()
    arrays = {"whole": SimulationArrays(whole, YEAR), "sliced": SimulationArrays(sliced, YEAR)}
    results = {k: simulation_results(a) for k, a in arrays.items()}
    pd.testing.assert_frame_equal(results["sliced"].household, results["whole"].household)
    pd.testing.assert_frame_equal(results["sliced"].person, results["whole"].person)
    inputs = {k: baseline_inputs(manifest, a, context) for k, a in arrays.items()}
    for reform_id, touched in inputs["whole"].touched.items():
        assert np.array_equal(inputs["sliced"].touched[reform_id], touched), reform_id
    for name, values in inputs["whole"].state_aggregates.items():
        np.testing.assert_allclose(inputs["sliced"].state_aggregates[name], values, rtol=1e-12)


def test_the_same_file_is_simulated_once_per_process(baselines):
    _, sliced, context, _, h5, runtime = baselines
    messages: list[str] = []
    again = published_baseline(h5, YEAR, runtime, context, h5.parent, 30, messages.append)
    assert again is sliced
    assert messages == [f"baseline of {h5.name}: the sliced simulation already run"]
