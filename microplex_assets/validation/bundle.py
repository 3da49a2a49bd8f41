"""Bundle completeness: a published bundle carries all the evidence a release needs.

Config, source versions, target-set hash, scores, target deltas, record counts, nonzero
weights, effective sample size and the benchmark outputs (national aggregates) must all
be in the bundle folder; each missing piece is named.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REQUIRED_FILES: tuple[str, ...] = (
    "SHA256SUMS",  # written by release.bundle.publish_run_bundle, with RUN.json
    "RUN.json",
    "manifest.json",
    "run_profile.json",
    "loss_record.json",
    "validation/aggregates.json",
    "validation/loss_curves.png",
    "validation/target_wins_losses.md",
    "validation/target_ledger.csv",
)
# (file, dotted path) pairs that must hold a value.
REQUIRED_FIELDS: tuple[tuple[str, str], ...] = (
    ("manifest.json", "config"),
    ("manifest.json", "sources"),
    ("manifest.json", "package_versions"),
    ("manifest.json", "record_counts"),
    ("manifest.json", "h5.sha256"),
    ("manifest.json", "targets.target_set_hash"),
    ("manifest.json", "extensions"),
    ("loss_record.json", "losses.candidate"),
    ("loss_record.json", "losses.ecps_method"),
    ("loss_record.json", "gates"),
    ("loss_record.json", "weight_diagnostics.nonzero_weights"),
    ("loss_record.json", "weight_diagnostics.effective_sample_size"),
)


def _lookup(document: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(document, dict) or part not in document:
            return None
        document = document[part]
    return document


def bundle_completeness(bundle_dir: Path, h5_name: str) -> tuple[list[str], dict[str, Any]]:
    """Missing pieces (each named) and what was found."""
    bundle_dir = Path(bundle_dir)
    missing = [name for name in (h5_name, *REQUIRED_FILES) if not (bundle_dir / name).is_file()]
    manifest = bundle_dir / "manifest.json"
    extensions = (
        json.loads(manifest.read_text()).get("extensions", {}) if manifest.is_file() else {}
    )
    missing += [f"extension {name}" for name in extensions if not (bundle_dir / name).is_file()]
    documents: dict[str, Any] = {}
    for name in {file for file, _ in REQUIRED_FIELDS}:
        path = bundle_dir / name
        if path.is_file():
            documents[name] = json.loads(path.read_text())
    for file, dotted in REQUIRED_FIELDS:
        if file in documents and _lookup(documents[file], dotted) in (None, {}, []):
            missing.append(f"{file}: {dotted}")
    found = sorted(str(p.relative_to(bundle_dir)) for p in bundle_dir.rglob("*") if p.is_file())
    return missing, {"files": found, "required_files": len(REQUIRED_FILES) + 1}
