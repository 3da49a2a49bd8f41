"""Unpartitioned inputs a run reads from storage must be the ones its profile asks for.

The source frames and the target registry are unpartitioned: a backfill (``make
backfill``, the UI's backfill, ``build_cell(reuse_unpartitioned=True)``) builds them once
and every shard loads the stored copy. A copy built for another year, seed or donor would
otherwise flow into the shard without a word; each partitioned stage that first reads
them calls these checks, so the run stops there naming the asset, what it was built for
and what this run expects.
"""

from __future__ import annotations

from typing import Any

from microplex_assets.sources.frame import ObservationFrame
from microplex_assets.targets.model import TargetSet

REBUILD_HINT = (
    "rebuild the unpartitioned assets with this run's settings (materialize them in the "
    "UI, or build_cell(..., reuse_unpartitioned=False))"
)


class StaleUpstreamError(ValueError):
    """A stored unpartitioned asset was built for another year, seed or source."""


def _refuse(asset: str, field: str, found: Any, expected: Any) -> StaleUpstreamError:
    return StaleUpstreamError(
        f"{asset}: stored copy was built with {field}={found!r} but this run expects "
        f"{field}={expected!r}; {REBUILD_HINT}"
    )


def check_frame(
    asset: str, frame: ObservationFrame, run_profile: dict[str, Any], seeded: bool = False
) -> None:
    """The frame's year is the run profile's, and so is its seed when ``seeded`` (the
    frame's draws come from the build seed: the CPS rebuild, the synthetic donor, the
    top-wealth list's imputed states and SCF income donors)."""
    year = int(run_profile["year"])
    if int(frame.year) != year:
        raise _refuse(asset, "year", int(frame.year), year)
    seed = frame.provenance.get("seed") if seeded else None
    expected_seed = int(run_profile["seeds"]["reconstruction"])
    if seed is not None and int(seed) != expected_seed:
        raise _refuse(asset, "seed", int(seed), expected_seed)


def check_source_frames(
    run_profile: dict[str, Any],
    cps: ObservationFrame,
    tax_donor: ObservationFrame,
    top_wealth: ObservationFrame,
    surveys: dict[str, ObservationFrame],
) -> None:
    """Every stored source frame matches the run profile: year, seed, the donor's kind
    (a real PUF configured but a synthetic donor stored, or the reverse) and the surveys."""
    check_frame("cps_source_frame", cps, run_profile, seeded=True)
    check_frame("tax_donor_frame", tax_donor, run_profile, seeded=True)
    check_frame("top_wealth_frame", top_wealth, run_profile, seeded=True)
    for name, frame in surveys.items():
        check_frame(f"survey_source_frames[{name}]", frame, run_profile)
    providers = run_profile["providers"]
    donor = next(p for p in providers if p["role"] == "donor")
    if tax_donor.source != donor["source"]:
        raise _refuse("tax_donor_frame", "source", tax_donor.source, donor["source"])
    wanted = sorted(p["source"] for p in providers if p["role"].startswith("donor ("))
    if sorted(surveys) != wanted:
        raise _refuse("survey_source_frames", "survey_files", sorted(surveys), wanted)


def check_targets(targets: TargetSet, run_profile: dict[str, Any]) -> None:
    """The stored target registry is resolved to the run's year."""
    year = int(run_profile["year"])
    periods = sorted({int(t.period) for t in targets})
    if periods and periods != [year]:
        found = periods[0] if len(periods) == 1 else periods
        raise _refuse("calibration_targets", "year", found, year)
