"""Names and numbers that more than one stage package (or a resource) relies on.

One definition each, so the stage that writes a column and the stages that read it cannot
drift apart, and no stage imports another only for a string. This module imports nothing
from the project: any package (and ``microplex_resources``) may depend on it. The state
table lives in ``microplex_assets.geography.states``.
"""

from __future__ import annotations

# Household column marking fixed-weight records (the top-tail spine): written by the
# candidate stage (``candidate.spine``), carried into the entity bundle
# (``entities.build``), read by calibration (``calibration.fixed_records``).
FIXED_FLAG = "is_fixed_spine"

# policyengine-us's adjusted gross income (a tax-unit variable): the tax-record donors'
# AGI column (``sources.tax_records``), the band variable of the AGI targets the seed's
# local support looks for (``seed.local_support``), the top-tail diagnostics'
# denominator (``calibration.top_tail``).
AGI = "adjusted_gross_income"

# The eCPS method's L0 penalty: so small that almost every gate stays open, but the gates
# give each household a second, multiplicative way to fall to zero. The solver's default
# (``calibration.solver``) and the build setting's default
# (``microplex_resources.build_settings``).
ECPS_L0_LAMBDA = 2.6445e-7

# Households per reform simulation in the stage-9 suite (BuildSettings
# microsim_slice_households): each slice's simulation lives in its own forked child, two
# at a time, so this sets the suite's peak memory; the results do not depend on it.
SUITE_SLICE_HOUSEHOLDS = 5_000
