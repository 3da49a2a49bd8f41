"""Stage 5 as one function: backend, support enforcement, then the fixed spine.

The candidate asset and the donor ablation (calibration) both call it, so the
population scored "before donor integration" is made exactly like the real one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from microplex_assets.candidate.backends import enforce_support, run_backend
from microplex_assets.candidate.spine import append_spine
from microplex_assets.sources.frame import ObservationFrame


def state_list(top_wealth: ObservationFrame, state_fips: int | None) -> ObservationFrame | None:
    """The list restricted to one state (None when that state has no entry)."""
    if state_fips is None:
        return top_wealth
    household = top_wealth.tables["household"]
    in_state = household[household["state_fips"] == state_fips]
    if in_state.empty:
        return None
    return ObservationFrame(
        top_wealth.source, top_wealth.year, {"household": in_state}, {}, top_wealth.provenance
    )


def make_candidate(
    seed: ObservationFrame,
    backend: str,
    random_seed: int,
    required_state_fips: Iterable[int],
    top_wealth: ObservationFrame | None = None,
    state_fips: int | None = None,
) -> tuple[ObservationFrame, dict[str, Any]]:
    """The candidate population and its stage report (backend, support, spine)."""
    candidate = run_backend(backend, seed, random_seed=random_seed)
    support = enforce_support(candidate, required_state_fips, borrow=True)
    report: dict[str, Any] = {"backend": backend, "support_enforcement": support}
    spine_list = None if top_wealth is None else state_list(top_wealth, state_fips)
    if spine_list is None:
        report["spine"] = {"records": 0, "reason": "spine off or no list entry in this state"}
        return candidate, report
    candidate, report["spine"] = append_spine(candidate, spine_list)
    return candidate, report
