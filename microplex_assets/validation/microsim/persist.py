"""Per-record suite results on disk, so any weight vector can be scored without PolicyEngine.

Why: a reform's result per record does not depend on the weights, and the suite is most
of a build's cost (about 20 of 27 minutes at 40k). A calibration experiment that asks
"what would this reform cost on these weights?" should cost a parquet read, not a
simulation. ``save_suite`` writes the baseline's and every reform's per-record results
(the values the impacts read: net income with any cash add-back restored) beside the
report; ``load_suite`` reads them back into a ``SuiteRun`` whose ``impacts`` and
``levels`` equal the build's for the same weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from microplex_assets.files import atomic_target, write_json_atomic
from microplex_assets.validation.microsim.outputs import SimulationResults
from microplex_assets.validation.microsim.suite import ReformRun, SuiteRun

SUITE_RESULTS = "suite_results"  # folder under the report's work folder
BASELINE = "baseline"


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    with atomic_target(path) as tmp:
        frame.to_parquet(tmp)


def save_suite(suite: SuiteRun, folder: Path) -> Path:
    """Write ``suite`` under ``folder/suite_results``: one household and one person parquet
    per run (the baseline and each reform) and ``suite.json`` (manifest hash and version,
    households simulated and seconds per reform). Returns the folder."""
    out = Path(folder) / SUITE_RESULTS
    out.mkdir(parents=True, exist_ok=True)
    runs = {BASELINE: suite.baseline} | {
        reform_id: run.impact_results() for reform_id, run in suite.runs.items()
    }
    for name, results in runs.items():
        _write_parquet(results.household, out / f"{name}_household.parquet")
        _write_parquet(results.person, out / f"{name}_person.parquet")
    write_json_atomic(
        out / "suite.json",
        {
            "manifest_hash": suite.manifest_hash,
            "manifest_version": suite.manifest_version,
            "reforms": {
                reform_id: {
                    "households_simulated": run.households_simulated,
                    "seconds": run.seconds,
                }
                for reform_id, run in suite.runs.items()
            },
        },
    )
    return out


def load_suite(folder: Path) -> SuiteRun:
    """The ``SuiteRun`` ``save_suite`` wrote under ``folder`` (or ``folder/suite_results``);
    reform results already include their cash add-back. Raises naming a missing file."""
    folder = Path(folder)
    if (folder / SUITE_RESULTS).is_dir():
        folder = folder / SUITE_RESULTS
    meta_path = folder / "suite.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path}: no saved suite results (run a build's suite)")
    meta = json.loads(meta_path.read_text())

    def read(name: str) -> SimulationResults:
        paths = [folder / f"{name}_{kind}.parquet" for kind in ("household", "person")]
        for path in paths:
            if not path.is_file():
                raise FileNotFoundError(f"{path}: missing from the saved suite results")
        return SimulationResults(pd.read_parquet(paths[0]), pd.read_parquet(paths[1]))

    suite = SuiteRun(meta["manifest_hash"], int(meta["manifest_version"]), read(BASELINE))
    for reform_id, info in meta["reforms"].items():
        suite.runs[reform_id] = ReformRun(
            reform_id, int(info["households_simulated"]), float(info["seconds"]), read(reform_id)
        )
    return suite
