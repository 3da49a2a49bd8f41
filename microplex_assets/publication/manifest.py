"""The bundle manifest: everything needed to trust and reproduce a published H5.

``ecps_columns.json`` beside this module is an unchanged copy of
``shared/reference/ecps_columns.json`` (the eCPS baseline H5's column set, as recorded
by the public microplex-us project). It ships inside the package so the default build
never reads ``../shared``. Its ``ecps_exported_inputs`` (235 variables) are what a
drop-in eCPS replacement should provide; the manifest says how many our H5 provides
and why each missing one is missing, in a table with each provided one's source and
kind (``coverage.py``); a variable written as one value on every record is not counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from microplex_assets.files import file_sha256
from microplex_assets.publication.coverage import LEFT_OUT, coverage_table
from microplex_assets.publication.missing_reasons import NO_SOURCE
from microplex_resources.policyengine_runtime import is_input_variable

ECPS_COLUMNS_PATH = Path(__file__).with_name("ecps_columns.json")
MANIFEST_SCHEMA_VERSION = 1
DEFAULT_PACKAGES: tuple[str, ...] = (
    "policyengine-us",
    "policyengine-core",
    "microdf-python",
    "h5py",
    "numpy",
    "pandas",
    "dagster",
)


def package_versions(names: Iterable[str] = DEFAULT_PACKAGES) -> dict[str, str]:
    """Installed versions by distribution name, read from metadata (imports nothing)."""
    versions = {}
    for name in names:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@cache
def ecps_columns() -> dict[str, list[str]]:
    """The shipped eCPS column reference (see the module docstring for its origin)."""
    return json.loads(ECPS_COLUMNS_PATH.read_text())


def missing_reason(
    name: str,
    system: Any | None,
    excluded: Mapping[str, str],
    left_out: Mapping[str, str],
    constant: Mapping[str, Any] | None = None,
) -> str:
    """Why an eCPS input is not provided: one value on every record, dropped at export,
    absent from or computed by this policyengine-us, deliberately left out, or no source
    for it yet (with what could supply it, ``missing_reasons.py``)."""
    if constant and name in constant:
        return (
            f"constant fill: exported with one value ({constant[name]!r}) on every record, not data"
        )
    dropped = [
        f"{column}: {why}" for column, why in excluded.items() if column.split(".")[-1] == name
    ]
    if dropped:
        return "in the bundle but not exported (" + "; ".join(dropped) + ")"
    if system is not None:
        variable = system.variables.get(name)
        if variable is None:
            return "not a variable in this policyengine-us (eCPS was built on another version)"
        if not is_input_variable(system, name, variable.entity.key):
            return "computed by this policyengine-us (formula variable)"
    if name in left_out:
        return f"deliberately left out: {left_out[name]}"
    if name in NO_SOURCE:
        return f"no source yet: {NO_SOURCE[name]}"
    return "no source for it yet"


def ecps_coverage(
    h5_variables: Iterable[str],
    system: Any | None = None,
    excluded: Mapping[str, str] | None = None,
    left_out: Mapping[str, str] | None = None,
    constant: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """How many of the eCPS's exported inputs this H5 provides (not counting constant
    fills); each missing one with why; the table of all of them (``coverage.py``).

    ``left_out`` adds to ``coverage.LEFT_OUT`` (inputs omitted on purpose); ``constant``
    maps H5 variables holding one value on every record to that value.
    """
    reference = ecps_columns()["ecps_exported_inputs"]
    ours = set(h5_variables)
    constant = {n: v for n, v in (constant or {}).items() if n in ours}
    provided = [n for n in reference if n in ours and n not in constant]
    missing = sorted(set(reference) - set(provided))
    left = {**LEFT_OUT, **(left_out or {})}
    reasons = {n: missing_reason(n, system, excluded or {}, left, constant) for n in missing}
    by_reason: dict[str, int] = {}
    for reason in reasons.values():
        key = reason.split(" (")[0].split(":")[0]
        by_reason[key] = by_reason.get(key, 0) + 1
    entities = {
        n: system.variables[n].entity.key
        for n in reference
        if system is not None and n in system.variables
    }
    table = coverage_table(reference, ours, constant, reasons, entities)
    by_kind: dict[str, int] = {}
    for row in table:
        if row["status"] == "provided":
            by_kind[row["kind"]] = by_kind.get(row["kind"], 0) + 1
    return {
        "ecps_inputs": len(reference),
        "provided": len(provided),
        "provided_share": round(len(provided) / len(reference), 4),
        "provided_by_kind": by_kind,
        "constant_fills": {n: constant[n] for n in reference if n in constant},
        "missing": reasons,
        "missing_by_reason": by_reason,
        "extra_not_in_ecps": sorted(ours - set(reference)),
        "table": table,
    }


def build_manifest(
    run_profile: Mapping[str, Any],
    export: Mapping[str, Any],
    sources: list[Mapping[str, Any]],
    package_versions: Mapping[str, str],
    h5_path: Path,
    weights: pd.Series | None = None,
    system: Any | None = None,
    left_out: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Config, source provenance, versions, counts, weight totals, H5 hash/size, coverage.

    ``export`` is ``ExportReport.as_dict()``; ``weights`` the calibrated household
    weights (the H5's own total is in ``export``); ``system`` lets coverage say which
    missing eCPS inputs this policyengine-us does not have or computes; ``left_out``
    names inputs omitted on purpose, with the reason.
    """
    h5_path = Path(h5_path)
    h5_variables = export.get("h5_variables") or [
        *export.get("id_variables", []),
        *export["exported_variables"],
    ]
    weight_block: dict[str, Any] = {
        "household_weight_total": float(export.get("household_weight_total", 0.0))
    }
    if weights is not None:
        weight_block.update(
            calibrated_weight_total=float(weights.sum()),
            nonzero_household_weights=int((weights > 0).sum()),
            households=int(len(weights)),
        )
    for key in ("calibration_backend", "state_calibrated"):
        if key in run_profile:
            weight_block[key] = run_profile[key]
    return {
        "manifest_schema_version": MANIFEST_SCHEMA_VERSION,
        "dataset": h5_path.name,
        "year": export.get("year", run_profile.get("year")),
        "config": dict(run_profile),
        "sources": [dict(source) for source in sources],
        "package_versions": dict(package_versions),
        "record_counts": dict(export["record_counts"]),
        "weights": weight_block,
        "h5": {"sha256": file_sha256(h5_path), "size_bytes": h5_path.stat().st_size},
        "exported_variables": export["exported"],
        "excluded_columns": export["excluded"],
        "ecps_coverage": ecps_coverage(
            h5_variables, system, export["excluded"], left_out, export.get("constant")
        ),
    }
