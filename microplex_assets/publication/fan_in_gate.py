"""The schema gate for the local|US H5, before it is published.

Every published H5 passes the blocking schema gate; national|US and each shard in its own
run, on a Microsimulation of the whole file. local|US concatenates the 51 shard H5s (ids
offset, weights replaced by the joint fit), about 104,000 households: a whole-file
simulation would take the baseline's 8.8 GB at 40,400 households to about 20 GB, more than
this machine has. The concatenation changes only ids, links and weights, and households
are independent in PolicyEngine, so the gate checks the whole file's structure (ids,
links, weights, dtypes, enum values, variable set: ``check_h5_schema``), loads the whole
file in a Microsimulation and checks that its weights are the published ones, and computes
income tax, household net income and SPM poverty on a sample of every state's households
(each shard's own run computed all of its records).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from microplex_assets.entities.h5_combine import restrict_h5
from microplex_assets.publication.schema_gate import check_h5_schema, check_microsimulation

# Households per state simulated by the gate: the lowest ids of each state (deterministic),
# about 200 households for 51 states (a 51-state simulation pays each state's programs).
SAMPLE_PER_STATE = 4


class FanInSchemaError(ValueError):
    """The local|US H5 failed its schema gate: nothing is published."""


def sample_households(h5_path: Path, year: int, per_state: int = SAMPLE_PER_STATE) -> np.ndarray:
    """The ``per_state`` lowest household ids of every state in the file."""
    if per_state < 1:
        raise ValueError(f"per_state must be at least 1, got {per_state}")
    period = str(int(year))
    with h5py.File(h5_path, "r") as h5:
        ids = h5["household_id"][period][:].astype(np.int64)
        states = h5["state_fips"][period][:].astype(np.int64)
    frame = pd.DataFrame({"household_id": ids, "state": states}).sort_values("household_id")
    return np.sort(frame.groupby("state").head(per_state)["household_id"].to_numpy())


def fan_in_schema_gate(
    h5_path: Path, year: int, policyengine: Any, work_dir: Path, weight_total: float
) -> dict[str, Any]:
    """Check the local|US H5 (see the module docstring); its metrics, or FanInSchemaError
    naming the file and every failure."""
    started = time.perf_counter()
    system = policyengine.system()
    static = check_h5_schema(h5_path, system, year)
    failures = list(static.failures)
    metrics: dict[str, Any] = dict(static.metrics)
    if not failures:
        whole = policyengine.reform_microsimulation(h5_path)
        loaded = float(pd.Series(whole.calculate("household_weight", year)).to_numpy().sum())
        metrics["whole_file_weight_total"] = loaded
        if not np.isclose(loaded, weight_total, rtol=1e-6):
            failures.append(
                f"household_weight: the Microsimulation sums {loaded:,.0f}, the joint fit "
                f"published {weight_total:,.0f}"
            )
        del whole
    if not failures:
        sample = sample_households(h5_path, year)
        sample_path = work_dir / "schema_gate_sample.h5"
        restrict_h5(
            h5_path,
            sample_path,
            sample,
            year,
            entity_of=lambda name: system.variables[name].entity.key,
        )
        computed = check_microsimulation(sample_path, year, policyengine.reform_microsimulation)
        sample_path.unlink(missing_ok=True)
        metrics["sample_households"] = int(len(sample))
        metrics.update({f"sample_{k}": v for k, v in computed.items()})
        if not computed.get("finite", False):
            failures.append(
                "sample simulation: non-finite income tax or household net income, or SPM "
                f"poverty did not compute ({computed.get('spm_poverty_error')})"
            )
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    if failures:
        shown = "\n  - ".join(failures[:20])
        raise FanInSchemaError(
            f"local|US H5 {h5_path} fails the schema gate ({len(failures)} failures); "
            f"nothing published:\n  - {shown}"
        )
    return metrics
