"""Stage 3: choose the scaffold among the loaded sources and map variable coverage.

The scaffold is the source whose households become the seed; every other source is a
donor for the variables the scaffold lacks. Scoring is explicit so the reason for a
choice is readable in the plan, not buried in code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from microplex_assets.sources.frame import ObservationFrame

SCAFFOLD_REQUIREMENTS: dict[str, str] = {
    "household table": "needs households to carry weights and geography",
    "person table": "needs persons to build PolicyEngine entities",
    "tax_unit table": "needs tax units: the seed stage samples and imputes on them",
    "household_weight": "needs survey weights to represent the population",
    "state_fips": "needs state geography for national and local products",
    "person columns": "needs person.household_id, tax_unit_id, role (head/spouse/dependent) "
    "and age: the seed stage's canonical features read them",
}
# What the seed stage reads from the scaffold's persons (seed/canonical.py): a source
# without them (a national ACS PUMS file: households and persons, no tax units or roles)
# is refused here, by name, instead of outranking the CPS and failing in the seed stage.
SEED_PERSON_COLUMNS: tuple[str, ...] = ("household_id", "tax_unit_id", "role", "age")


@dataclass
class SourcePlan:
    """The scaffold, the donors, the coverage map and the reasons behind the choice."""

    scaffold: str
    donors: list[str]
    reasons: list[str]
    rejected: dict[str, list[str]]
    coverage: pd.DataFrame
    scores: dict[str, float] = field(default_factory=dict)
    spine: list[str] = field(default_factory=list)  # fixed records: never scaffold or donor

    def summary(self) -> dict[str, Any]:
        return {
            "scaffold": self.scaffold,
            "donors": self.donors,
            "spine": self.spine,
            "reasons": self.reasons,
            "rejected": self.rejected,
            "scores": self.scores,
        }


def scaffold_shortfalls(frame: ObservationFrame) -> list[str]:
    """What a frame lacks to serve as scaffold (empty when it qualifies)."""
    missing = [f"{table} table" for table in ("household", "person", "tax_unit")
               if table not in frame.tables]  # fmt: skip
    household = frame.tables.get("household", pd.DataFrame())
    for column in ("household_weight", "state_fips"):
        if column not in household.columns:
            missing.append(column)
    if "person" in frame.tables:
        person = frame.tables["person"].columns
        missing += [f"person.{c}" for c in SEED_PERSON_COLUMNS if c not in person]
    return missing


def scaffold_score(frame: ObservationFrame) -> float:
    """Prefer real data, then more households, then more person-level variables."""
    real = 1.0 if frame.provenance.get("kind") == "real" else 0.0
    households = len(frame.tables["household"])
    variables = frame.tables["person"].shape[1]
    return real * 1e9 + households + variables * 1e-3


def coverage_map(frames: dict[str, ObservationFrame]) -> pd.DataFrame:
    """Variable x source matrix of the share of nonzero values (NaN where absent)."""
    pieces = []
    for name, frame in frames.items():
        cov = frame.coverage()
        cov["source"] = name
        pieces.append(cov)
    long = pd.concat(pieces, ignore_index=True)
    wide = long.pivot_table(
        index=["entity", "variable"], columns="source", values="nonzero_share", aggfunc="first"
    )
    return wide.reset_index()


def plan_sources(
    frames: dict[str, ObservationFrame], spine_sources: frozenset[str] = frozenset()
) -> SourcePlan:
    """Pick the highest-scoring qualified scaffold; other sources become donors, except the
    spine's, whose records are appended with fixed weights and never donate."""
    if not frames:
        raise ValueError("no source frames loaded: the run profile lists no providers")
    rejected = {name: scaffold_shortfalls(f) for name, f in frames.items()}
    for name in spine_sources & set(rejected):
        rejected[name] = [*rejected[name], "spine source (fixed records, never the scaffold)"]
    qualified = {name: f for name, f in frames.items() if not rejected[name]}
    if not qualified:
        details = "; ".join(f"{n}: lacks {', '.join(m)}" for n, m in rejected.items())
        raise ValueError(f"no source can serve as scaffold ({details})")
    scores = {name: scaffold_score(f) for name, f in qualified.items()}
    scaffold = max(scores, key=scores.__getitem__)
    chosen = qualified[scaffold]
    reasons = [f"{scaffold}: {why}" for why in SCAFFOLD_REQUIREMENTS.values()]
    reasons.append(
        f"{scaffold}: kind={chosen.provenance.get('kind')}, "
        f"{len(chosen.tables['household']):,} households, highest score of "
        f"{len(qualified)} qualified source(s)"
    )
    return SourcePlan(
        scaffold=scaffold,
        donors=[name for name in frames if name != scaffold and name not in spine_sources],
        spine=[name for name in frames if name in spine_sources],
        reasons=reasons,
        rejected={n: m for n, m in rejected.items() if m},
        coverage=coverage_map(frames),
        scores=scores,
    )
