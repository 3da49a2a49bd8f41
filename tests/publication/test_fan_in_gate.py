"""The local|US H5's schema gate: structure of the whole file, the whole file loaded with
the published weights, and a sample of every state's households simulated."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from microplex_assets.publication.fan_in_gate import (
    FanInSchemaError,
    fan_in_schema_gate,
    sample_households,
)
from microplex_resources.policyengine_runtime import PolicyEngineRuntime

YEAR = 2024


def weight_total(path: Path) -> float:
    with h5py.File(path, "r") as h5:
        return float(h5["household_weight"][str(YEAR)][:].sum())


def test_the_sample_is_the_lowest_ids_of_every_state(tmp_path):
    path = tmp_path / "ids.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("household_id/2024", data=np.array([9, 3, 7, 1, 5, 8, 2]))
        h5.create_dataset("state_fips/2024", data=np.array([6, 6, 6, 36, 36, 36, 1]))
    assert sample_households(path, YEAR, per_state=2).tolist() == [1, 2, 3, 5, 7]
    with pytest.raises(ValueError, match="per_state"):
        sample_households(path, YEAR, per_state=0)


def test_a_good_file_passes_with_its_sample_computed(good_h5, tmp_path):
    metrics = fan_in_schema_gate(
        good_h5, YEAR, PolicyEngineRuntime(), tmp_path, weight_total(good_h5)
    )
    assert metrics["sample_households"] == len(sample_households(good_h5, YEAR))
    assert metrics["sample_finite"] and 0 <= metrics["sample_spm_poverty_rate"] <= 1
    assert metrics["whole_file_weight_total"] == pytest.approx(weight_total(good_h5))
    assert not (tmp_path / "schema_gate_sample.h5").exists()


def test_weights_other_than_the_published_ones_are_refused(good_h5, tmp_path):
    with pytest.raises(FanInSchemaError, match="household_weight: the Microsimulation sums"):
        fan_in_schema_gate(
            good_h5, YEAR, PolicyEngineRuntime(), tmp_path, 2 * weight_total(good_h5)
        )


class NoSimulation:
    """A runtime whose simulations must never be reached."""

    def __init__(self, system):
        self._system = system

    def system(self):
        return self._system

    def reform_microsimulation(self, *args, **kwargs):
        raise AssertionError("a file failing the structural checks was simulated")


def test_a_broken_file_is_refused_by_name_before_any_simulation(good_h5, pe_system, tmp_path):
    broken = tmp_path / "broken.h5"
    shutil.copy(good_h5, broken)
    with h5py.File(broken, "a") as h5:
        ids = h5["person_household_id"]["2024"]
        ids[0] = ids[:].max() + 1_000  # a person in a household that does not exist
    with pytest.raises(FanInSchemaError, match=f"local\\|US H5 {broken} fails the schema gate"):
        fan_in_schema_gate(broken, YEAR, NoSimulation(pe_system), tmp_path, 1.0)
