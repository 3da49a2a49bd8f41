"""The target matrix from the candidate simulated in slices of whole states equals the one
from a whole-file simulation: every target's household contributions, the ledger (kept,
dropped and why), the top-tail arrays. Real registry targets, four states."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex_assets.calibration.candidate_simulation import candidate_simulation
from microplex_assets.calibration.matrix import materialize_targets
from microplex_assets.calibration.simulation_arrays import SimulationArrays
from microplex_assets.candidate.backends import run_backend
from microplex_assets.entities.build import build_entity_bundle
from microplex_assets.publication.h5_export import write_policyengine_h5
from microplex_assets.targets.model import TargetSet
from microplex_assets.targets.registry import resolve_targets_with_report
from microplex_resources.policyengine_runtime import policyengine_reform_microsimulation
from tests.frames import tiny_scaffold

YEAR = 2024
pytestmark = pytest.mark.slow


def test_sliced_matrix_equals_the_whole_file_matrix(tmp_path, pe_system):
    frame = tiny_scaffold(households=60, seed=4)
    bundle = build_entity_bundle(run_backend("seed_passthrough", frame))
    h5 = tmp_path / f"candidate_{YEAR}.h5"
    write_policyengine_h5(bundle, h5, pe_system)
    targets, _ = resolve_targets_with_report(YEAR, pe_system)
    states = {"CA", "NY", "TX", "AL", "US"}
    cell = TargetSet(tuple(t for t in targets if t.geography in states))
    national = TargetSet(tuple(t for t in targets if t.geography == "US"))
    messages: list[str] = []
    sliced = candidate_simulation(
        h5, YEAR, pe_system, {"targets": cell, "national": national},
        policyengine_reform_microsimulation, tmp_path / "slices", 20, messages.append,
    )  # fmt: skip
    assert len(sliced.slices) == 4  # 15 households per state, at most 20 per slice
    assert not sliced.errors and not sliced.reader_errors
    whole = SimulationArrays(policyengine_reform_microsimulation(h5), YEAR)
    for target_set in (cell, national):
        expected = materialize_targets(whole, target_set)
        got = materialize_targets(SimulationArrays(sliced, YEAR), target_set)
        assert (expected.ledger["status"] == "kept").sum() > 50
        pd.testing.assert_frame_equal(got.ledger, expected.ledger)
        assert np.array_equal(got.household_ids, expected.household_ids)
        difference = abs(got.matrix - expected.matrix)
        assert difference.max() <= 1e-9 * max(1.0, abs(expected.matrix).max())
        np.testing.assert_allclose(got.top_tail.tax_unit_agi, expected.top_tail.tax_unit_agi)
