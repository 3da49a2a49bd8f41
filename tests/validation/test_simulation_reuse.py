"""One simulation for H5 files that differ only in weights, and nothing left alive after a
release (the shared runtime's two memory promises)."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex_assets.publication.h5_export import write_policyengine_h5
from microplex_assets.publication.weighting import weighted_bundle
from microplex_resources import policyengine_runtime as runtime
from microplex_resources.simulation_reuse import records_digest

YEAR = 2024
# Weight-free per-record values and weighted totals the schema gate and the suite read;
# household_net_income includes the Medicaid value, whose per-enrollee cost reads weights.
CHECKED = ("income_tax", "household_net_income", "snap", "spm_unit_is_in_spm_poverty")


def _write(bundle, path: Path, seed: int, pe_system) -> Path:
    ids = bundle.household["household_id"]
    rng = np.random.default_rng(seed)
    weights = pd.Series(rng.uniform(50, 5_000, len(ids)), index=ids.to_numpy())
    write_policyengine_h5(weighted_bundle(bundle, weights), path, pe_system)
    return path


def _readings(simulation) -> dict[str, tuple[np.ndarray, float]]:
    out = {}
    for name in CHECKED:
        series = simulation.calculate(name, YEAR)
        out[name] = (np.asarray(series, dtype=float), float(series.sum()))
    return out


def _alive_simulations() -> int:
    from policyengine_core.simulations import Simulation

    gc.collect()
    return sum(isinstance(o, Simulation) for o in gc.get_objects())


@pytest.fixture()
def pair(tmp_path: Path, bundle, pe_system) -> tuple[Path, Path]:
    first = _write(bundle, tmp_path / "candidate_2024.h5", 1, pe_system)
    (tmp_path / "published").mkdir()
    second = _write(bundle, tmp_path / "published" / "policyengine_us_2024.h5", 2, pe_system)
    return first, second


def test_records_digest_ignores_weights_only(pair, tmp_path: Path, bundle, pe_system) -> None:
    first, second = pair
    assert runtime.file_sha256(first) != runtime.file_sha256(second)
    assert records_digest(first) == records_digest(second)
    other = bundle.household.copy()
    other.loc[other.index[0], "state_fips"] = 2 if other["state_fips"].iloc[0] != 2 else 4
    changed = type(bundle)(year=bundle.year, tables={**bundle.tables, "household": other})
    path = tmp_path / "changed.h5"
    write_policyengine_h5(changed, path, pe_system)
    assert records_digest(path) != records_digest(first)


def test_reweighted_simulation_equals_a_fresh_one_and_release_frees_it(pair) -> None:
    first, second = pair
    runtime.release_simulations()
    fresh = _readings(runtime.policyengine_microsimulation(second))
    runtime.release_simulations()
    assert _alive_simulations() == 0, "a released simulation is still referenced"

    candidate = runtime.policyengine_microsimulation(first)
    candidate.calculate("income_tax", YEAR)  # what the target matrix computes first
    reused = runtime.policyengine_microsimulation(second)
    assert reused is candidate
    assert runtime.SIMULATION_EVENTS[-1] == ("reweighted", str(second))
    for name, (values, total) in _readings(reused).items():
        np.testing.assert_allclose(values, fresh[name][0], err_msg=name)
        assert total == pytest.approx(fresh[name][1], rel=1e-9), name
    del candidate, reused
    runtime.release_simulations()
    assert _alive_simulations() == 0


def test_a_weight_reading_value_already_computed_forbids_reuse(pair) -> None:
    first, second = pair
    runtime.release_simulations()
    candidate = runtime.policyengine_microsimulation(first)
    candidate.calculate("medicaid_slcsp_state_denominator", YEAR)
    rebuilt = runtime.policyengine_microsimulation(second)
    assert rebuilt is not candidate
    events = [event for event, _ in runtime.SIMULATION_EVENTS[-2:]]
    assert events[0].startswith("not reweighted") and "medicaid_slcsp" in events[0]
    assert events[1] == "built"
    runtime.release_simulations()
