"""The frozen benchmark manifest: which reforms stage 9 scores on every built dataset.

The manifest is data, not code, so a change to the suite is visible as a change to one
file, and its content hash (SHA-256 of the canonical JSON of the whole document) is
recorded beside every score: numbers from different manifests are never compared by
accident. ``tests/validation/test_microsim_manifest.py`` pins the hash of each version, so
editing the manifest without raising its version fails the tests.

Parameter periods are written for the reform's ``year``; the runner scores each dataset's
own year, so a change meant for every year covers ``year`` onward.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from microplex_assets.validation.microsim.reforms import STRUCTURAL_REFORMS

MANIFEST_PATH = Path(__file__).with_name("benchmark_manifest.json")
EXPLAINED_DELTAS_PATH = Path(__file__).with_name("explained_deltas.json")

KINDS = ("parametric", "structural")
OUTPUTS = (
    "budget_impact",
    "income_tax",
    "benefits",
    "household_net_income",
    "winners_losers",
    "spm_poverty",
    "deciles",
)
# Which households a reform can change; the runner simulates only those.
TOUCHES = (
    "all",
    "ssi_eligible",
    "ssi_resources_above_limit",
    "ssi_categorical_resources_above_limit",
    "has_children",
    "childless_adults",
    "long_term_gains",
)

_TOP_FIELDS = {"version", "description", "reforms"}
_REFORM_FIELDS = {"id", "description", "year", "kind", "outputs", "touches"}
_KIND_FIELDS = {"parametric": "changes", "structural": "structural"}
_CHANGE_FIELDS = {"path", "period", "value"}
_ID = re.compile(r"^[a-z][a-z0-9_]*$")  # reform ids name files in the runner
_PERIOD = re.compile(r"^(\d{4}-\d{2}-\d{2})\.(\d{4}-\d{2}-\d{2})$")


class ManifestError(ValueError):
    """A manifest that breaks a rule; the message names the file, reform and field."""


@dataclass(frozen=True)
class ParameterChange:
    """One parameter value over a bounded period ``"start.stop"`` (ISO dates)."""

    path: str
    period: str
    value: Any


@dataclass(frozen=True)
class BenchmarkReform:
    """One reform of the suite; ``changes`` for parametric, ``structural`` for structural."""

    id: str
    description: str
    year: int
    kind: str
    changes: tuple[ParameterChange, ...]
    structural: str | None
    outputs: tuple[str, ...]
    touches: str


@dataclass(frozen=True)
class BenchmarkManifest:
    version: int
    description: str
    reforms: tuple[BenchmarkReform, ...]
    content_hash: str

    def reform(self, reform_id: str) -> BenchmarkReform:
        for reform in self.reforms:
            if reform.id == reform_id:
                return reform
        raise KeyError(f"no reform '{reform_id}' in benchmark manifest version {self.version}")


def canonical_json(document: Any) -> str:
    """Sorted keys, no whitespace, strict JSON: the bytes the content hash is taken of."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)


def content_hash(document: Any) -> str:
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


def load_manifest(path: Path | str = MANIFEST_PATH) -> BenchmarkManifest:
    """Read and validate a manifest; a ManifestError names the file, reform id and field."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(), parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError) as error:
        raise ManifestError(f"{path}: not valid JSON: {error}") from error
    return parse_manifest(document, source=str(path))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not strict JSON")


def parse_manifest(document: Any, source: str = "manifest") -> BenchmarkManifest:
    """Validate a parsed manifest document and build the typed manifest."""

    def fail(message: str) -> ManifestError:
        return ManifestError(f"{source}: {message}")

    if not isinstance(document, dict):
        raise fail("the manifest must be a JSON object")
    missing = sorted(_TOP_FIELDS - set(document))
    if missing:
        raise fail(f"missing field(s) {missing}")
    unknown = sorted(set(document) - _TOP_FIELDS)
    if unknown:
        raise fail(f"unknown field(s) {unknown}")
    version = document["version"]
    if not _is_int(version) or version < 1:
        raise fail(f"field 'version': {version!r} is not a positive integer")
    if not isinstance(document["description"], str):
        raise fail("field 'description' must be a string")
    reforms = document["reforms"]
    if not isinstance(reforms, list) or not reforms:
        raise fail("field 'reforms' must be a non-empty list")

    parsed: list[BenchmarkReform] = []
    seen: set[str] = set()
    for index, entry in enumerate(reforms):
        reform = _parse_reform(entry, index, source)
        if reform.id in seen:
            raise fail(f"reform '{reform.id}': field 'id': duplicate id")
        seen.add(reform.id)
        parsed.append(reform)
    return BenchmarkManifest(
        version=version,
        description=document["description"],
        reforms=tuple(parsed),
        content_hash=content_hash(document),
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_reform(entry: Any, index: int, source: str) -> BenchmarkReform:
    label = f"reform #{index}"
    if isinstance(entry, dict) and isinstance(entry.get("id"), str):
        label = f"reform '{entry['id']}'"

    def fail(field: str, problem: str) -> ManifestError:
        return ManifestError(f"{source}: {label}: field '{field}': {problem}")

    if not isinstance(entry, dict):
        raise ManifestError(f"{source}: {label}: must be a JSON object")
    missing = sorted(_REFORM_FIELDS - set(entry))
    if missing:
        raise fail(missing[0], "missing")
    kind = entry["kind"]
    if kind not in KINDS:
        raise fail("kind", f"unknown kind {kind!r} (expected one of {list(KINDS)})")
    allowed = _REFORM_FIELDS | {_KIND_FIELDS[kind]}
    extra = sorted(set(entry) - allowed)
    if extra:
        raise fail(extra[0], f"not allowed in a {kind} reform")
    if _KIND_FIELDS[kind] not in entry:
        raise fail(_KIND_FIELDS[kind], f"missing (required for a {kind} reform)")

    reform_id = entry["id"]
    if not isinstance(reform_id, str) or not _ID.match(reform_id):
        raise fail("id", f"{reform_id!r} is not lower_snake_case")
    if not isinstance(entry["description"], str) or not entry["description"].strip():
        raise fail("description", "must be a non-empty string")
    year = entry["year"]
    if not _is_int(year) or not 1900 <= year <= 2100:
        raise fail("year", f"{year!r} is not a year")
    outputs = entry["outputs"]
    if not isinstance(outputs, list) or not outputs:
        raise fail("outputs", "must be a non-empty list")
    for output in outputs:
        if output not in OUTPUTS:
            raise fail("outputs", f"unknown output {output!r} (expected from {list(OUTPUTS)})")
    if len(set(outputs)) != len(outputs):
        raise fail("outputs", "repeats an output")
    touches = entry["touches"]
    if touches not in TOUCHES:
        raise fail("touches", f"unknown value {touches!r} (expected one of {list(TOUCHES)})")

    changes: tuple[ParameterChange, ...] = ()
    structural = None
    if kind == "parametric":
        changes = _parse_changes(entry["changes"], year, fail)
    else:
        structural = entry["structural"]
        if structural not in STRUCTURAL_REFORMS:
            raise fail(
                "structural",
                f"{structural!r} is not registered (known: {sorted(STRUCTURAL_REFORMS)})",
            )
    return BenchmarkReform(
        id=reform_id,
        description=entry["description"],
        year=year,
        kind=kind,
        changes=changes,
        structural=structural,
        outputs=tuple(outputs),
        touches=touches,
    )


def _parse_changes(raw: Any, year: int, fail) -> tuple[ParameterChange, ...]:
    if not isinstance(raw, list) or not raw:
        raise fail("changes", "must be a non-empty list")
    changes = []
    seen: set[tuple[str, str]] = set()
    for number, change in enumerate(raw):
        where = f"change #{number}"
        if not isinstance(change, dict) or set(change) != _CHANGE_FIELDS:
            raise fail("changes", f"{where} must have exactly the fields {sorted(_CHANGE_FIELDS)}")
        path, period, value = change["path"], change["period"], change["value"]
        if not isinstance(path, str) or not path.startswith("gov."):
            raise fail("changes", f"{where}: path {path!r} is not a 'gov.' parameter path")
        match = _PERIOD.match(period) if isinstance(period, str) else None
        if match is None:
            raise fail("changes", f"{where} ({path}): period {period!r} is not 'start.stop'")
        try:
            start, stop = (datetime.date.fromisoformat(part) for part in match.groups())
        except ValueError as error:
            raise fail("changes", f"{where} ({path}): period {period!r}: {error}") from error
        if stop < start or start.year < year:
            raise fail(
                "changes",
                f"{where} ({path}): period {period!r} must run forward from the year {year}",
            )
        if not isinstance(value, bool | int | float):
            raise fail("changes", f"{where} ({path}): value {value!r} is not a number or bool")
        if (path, period) in seen:
            raise fail("changes", f"{where}: {path} is set twice for {period}")
        seen.add((path, period))
        changes.append(ParameterChange(path, period, value))
    return tuple(changes)
