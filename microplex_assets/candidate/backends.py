"""Stage 5: synthesis backends and support enforcement.

A backend turns the seed into the candidate population. ``seed_passthrough`` keeps the
seed records as they are; later backends (bootstrap, synthesis) plug in here by name.
Support enforcement then checks that every geography the product must represent has
records, and fails naming the geographies that have none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from microplex_assets.sources.frame import ObservationFrame


def seed_passthrough(seed: ObservationFrame) -> ObservationFrame:
    """The seed itself: no synthetic records."""
    return ObservationFrame(
        source=f"candidate<{seed.source}>",
        year=seed.year,
        tables={entity: table.copy() for entity, table in seed.tables.items()},
        links=seed.links,
        provenance={**seed.provenance, "backend": "seed_passthrough"},
    )


BACKENDS: dict[str, Callable[[ObservationFrame], ObservationFrame]] = {
    "seed_passthrough": seed_passthrough,
}


def run_backend(name: str, seed: ObservationFrame) -> ObservationFrame:
    """Run a named backend; an unknown name lists the known ones."""
    if name not in BACKENDS:
        raise ValueError(f"unknown synthesis backend '{name}'; expected one of {list(BACKENDS)}")
    return BACKENDS[name](seed)


class SupportError(ValueError):
    """A geography the product must represent has no records."""


def enforce_support(
    candidate: ObservationFrame, required_state_fips: Iterable[int], min_households: int = 1
) -> dict[str, Any]:
    """Check every required state has at least ``min_households`` records; report per state."""
    household = candidate.tables["household"]
    counts = household["state_fips"].value_counts()
    required = sorted(set(required_state_fips))
    short = {
        fips: int(counts.get(fips, 0)) for fips in required if counts.get(fips, 0) < min_households
    }
    if short:
        raise SupportError(
            f"states without support (fips: households, need {min_households}): {short}"
        )
    present = counts.reindex(required, fill_value=0)
    return {
        "required_states": len(required),
        "states_present": int((present > 0).sum()),
        "min_households_per_state": int(present.min()) if len(present) else 0,
        "median_households_per_state": float(present.median()) if len(present) else 0.0,
        "records_added": 0,
    }
