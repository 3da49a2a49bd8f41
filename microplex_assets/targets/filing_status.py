"""SOI's filing statuses: PolicyEngine's enum names per SOI row label, the labels target
names use, and the name of the national return count of one status (which the raking
margins of ``calibration.design_rake`` look up)."""

from __future__ import annotations

import math

from microplex_assets.targets.common import band_label

FILING_STATUS: dict[str, tuple[str, ...] | None] = {
    "All": None,
    "Single": ("SINGLE",),
    "Married Filing Jointly/Surviving Spouse": ("JOINT", "SURVIVING_SPOUSE"),
    "Married Filing Separately": ("SEPARATE",),
    "Head of Household": ("HEAD_OF_HOUSEHOLD",),
}
STATUS_LABEL = {
    "All": "all_statuses",
    "Single": "single",
    "Married Filing Jointly/Surviving Spouse": "joint_or_surviving_spouse",
    "Married Filing Separately": "separate",
    "Head of Household": "head_of_household",
}


def national_returns_target(status_label: str) -> str:
    """The name of SOI's national all-AGI return count for one ``STATUS_LABEL`` value
    (e.g. ``head_of_household``): the raking margins of ``calibration.design_rake`` name
    their targets through this."""
    if status_label not in STATUS_LABEL.values():
        raise ValueError(
            f"unknown filing status {status_label!r}; known: {sorted(STATUS_LABEL.values())}"
        )
    return f"irs_soi/returns/count/{band_label(-math.inf, math.inf)}/{status_label}"
