"""``would_file_taxes_voluntarily``: who files a federal return without having to (stage 6).

policyengine-us 2.68 files a tax unit (``tax_unit_is_filer``) when it must, when it is
eligible for a refundable credit, or when this input is true; it defaults to false and is
left to microdata construction. SOI's return counts include more than 8 million returns a
year filed below the filing threshold, "to obtain a refund of taxes already paid or
because the individual did not understand the tax law" (TIGTA 2007-40-130). Tax is
withheld at source by default from wages (Form W-4) and from periodic pension and annuity
payments (Form W-4P); unemployment compensation, Social Security and investment income are
withheld only on request.

Rule: a tax unit files voluntarily when a member has wages or taxable private pension
income. No published rate by income source was found, so the rule is judged against SOI's
returns by AGI: on 4,000 households of build a2e07cad's H5 (its calibrated weights),
filers rose from 137.1m to 151.2m against SOI's 162.4m, and the $1-5k / $5-10k /
$10-15k bands from 27% / 51% / 51% of SOI's returns to 82% / 91% / 97%
(``benchmarks/filer_counts.py``; README, "Who files"). Wages alone reached 66% / 76% / 78%.

It moves no tax or benefit amount: the EITC and the refundable CTC already count units that
would file for them, and federal income tax was $2,030.02bn under every rule tried. It
changes which units count as filers, so the SOI targets (filer-only) see low-income returns,
and the few programs that read filing (Medicaid's non-filer rules, ACA premium credit
reconciliation).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.entities.takeup import weighted_share

VOLUNTARY_FILING = "would_file_taxes_voluntarily"
# Person amounts withheld at source by default (Form W-4 wages, Form W-4P pensions).
WITHHELD_INCOME: tuple[str, ...] = (
    "employment_income_before_lsr",
    "taxable_private_pension_income",
)


def add_voluntary_filing(
    person: pd.DataFrame, tax_unit: pd.DataFrame, household: pd.DataFrame
) -> dict[str, Any]:
    """Set ``would_file_taxes_voluntarily`` on ``tax_unit`` in place; a summary back.

    A unit files voluntarily when any member has a positive amount of a ``WITHHELD_INCOME``
    column; a column missing from ``person`` counts as zero (the spine's records carry
    only what their source has).
    """
    present = [c for c in WITHHELD_INCOME if c in person.columns]
    withheld = np.zeros(len(person), dtype=bool)
    for column in present:
        withheld |= person[column].fillna(0).to_numpy(dtype=float) > 0
    units = pd.Series(withheld).groupby(person["tax_unit_id"].to_numpy()).any()
    flags = tax_unit["tax_unit_id"].map(units).fillna(False).to_numpy(dtype=bool)
    tax_unit[VOLUNTARY_FILING] = flags
    weight = tax_unit["household_id"].map(household.set_index("household_id")["household_weight"])
    return {
        "rule": f"a member has {' or '.join(present) or 'nothing withheld'} > 0",
        "units": int(flags.sum()),
        "weighted_share": weighted_share(weight.fillna(0).to_numpy(dtype=float), flags),
    }
