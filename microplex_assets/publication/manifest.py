"""The bundle manifest: everything needed to trust and reproduce a published H5.

``ecps_columns.json`` is a copy of ``shared/reference/ecps_columns.json`` (the eCPS
export's column set, recorded by the public microplex-us project), shipped inside the
package so the default build never reads ``../shared``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from microplex_assets.files import file_sha256

ECPS_COLUMNS_PATH = Path(__file__).with_name("ecps_columns.json")


@cache
def ecps_columns() -> dict[str, list[str]]:
    return json.loads(ECPS_COLUMNS_PATH.read_text())


def ecps_coverage(exported: list[str]) -> dict[str, Any]:
    """How many of the eCPS's exported input variables this H5 provides, and which not."""
    reference = ecps_columns()["ecps_exported_inputs"]
    provided = sorted(set(reference) & set(exported))
    missing = sorted(set(reference) - set(exported))
    return {
        "ecps_inputs": len(reference),
        "provided": len(provided),
        "missing": missing,
        "missing_reason": "no source for it yet (taxcalc CPS scaffold only; donors come later)",
        "extra_not_in_ecps": sorted(set(exported) - set(reference)),
    }


def build_manifest(
    run_profile: dict[str, Any],
    export: dict[str, Any],
    sources: list[dict[str, Any]],
    package_versions: dict[str, str],
    h5_path: Path,
    weights: pd.Series,
) -> dict[str, Any]:
    """Config, source provenance, versions, counts, weight totals, H5 hash/size, coverage."""
    return {
        "dataset": Path(h5_path).name,
        "config": run_profile,
        "sources": sources,
        "package_versions": package_versions,
        "record_counts": export["record_counts"],
        "weights": {
            "household_weight_total": float(weights.sum()),
            "nonzero_household_weights": int((weights > 0).sum()),
            "calibration_backend": run_profile["calibration_backend"],
            "state_calibrated": run_profile["state_calibrated"],
        },
        "h5": {"sha256": file_sha256(h5_path), "size_bytes": Path(h5_path).stat().st_size},
        "exported_variables": export["exported"],
        "excluded_columns": export["excluded"],
        "ecps_coverage": ecps_coverage(export["exported_variables"]),
    }
