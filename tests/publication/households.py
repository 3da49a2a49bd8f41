"""A hand-built four-household EntityBundle whose every id and link is known.

- household 101 (CA): married couple with two children, both earning wages;
- household 102 (FL): a single retiree with Social Security and interest;
- household 103 (NY): a single parent with one child;
- household 104 (TX): a parent and an adult child who files alone (two tax units).

Ids are deliberately not 0..n-1 and not in the same order as the rows of the group
tables, so a writer that relied on positions would fail the round trip. The bundle
also carries columns that must not be exported: a source diagnostic (``role``), a
reported benefit (``snap_reported``) and a household variable on the wrong table.
"""

from __future__ import annotations

import pandas as pd

from microplex_assets.entities.bundle import EntityBundle

YEAR = 2024

# person_id, household, tax unit, family, spm unit, marital unit, role, age, female,
# wages, social security retirement, interest, household head
PEOPLE = [
    (1001, 101, 501, 1011, 1012, 9001, "HEAD", 40, False, 85_000.0, 0.0, 200.0, True),
    (1002, 101, 501, 1011, 1012, 9001, "SPOUSE", 38, True, 30_000.0, 0.0, 0.0, False),
    (1003, 101, 501, 1011, 1012, 9002, "DEPENDENT", 10, False, 0.0, 0.0, 0.0, False),
    (1004, 101, 501, 1011, 1012, 9003, "DEPENDENT", 7, True, 0.0, 0.0, 0.0, False),
    (1005, 102, 502, 1021, 1022, 9004, "HEAD", 72, True, 0.0, 22_000.0, 1_500.0, True),
    (1006, 103, 503, 1031, 1032, 9005, "HEAD", 29, True, 24_000.0, 0.0, 0.0, True),
    (1007, 103, 503, 1031, 1032, 9006, "DEPENDENT", 3, False, 0.0, 0.0, 0.0, False),
    (1008, 104, 504, 1041, 1042, 9007, "HEAD", 55, False, 60_000.0, 0.0, 50.0, True),
    (1009, 104, 505, 1041, 1042, 9008, "HEAD", 24, True, 18_000.0, 0.0, 0.0, False),
]
HOUSEHOLDS = {  # household_id: (state_fips, tenure, weight)
    104: (48, "OWNED_WITH_MORTGAGE", 1_200.0),
    101: (6, "RENTED", 1_000.0),
    102: (12, "OWNED_OUTRIGHT", 1_500.0),
    103: (36, "RENTED", 800.0),
}


def tiny_bundle() -> EntityBundle:
    """Nine people in four households, five tax units, four families and SPM units."""
    person = pd.DataFrame(
        PEOPLE,
        columns=[
            "person_id",
            "household_id",
            "tax_unit_id",
            "family_id",
            "spm_unit_id",
            "marital_unit_id",
            "tax_unit_role_input",
            "age",
            "is_female",
            "employment_income_before_lsr",
            "social_security_retirement",
            "taxable_interest_income",
            "is_household_head",
        ],
    )
    person["age"] = person["age"].astype(float)
    person["role"] = person["tax_unit_role_input"].str.lower()  # a source diagnostic
    household = pd.DataFrame(
        [(hid, fips, tenure, weight) for hid, (fips, tenure, weight) in HOUSEHOLDS.items()],
        columns=["household_id", "state_fips", "tenure_type", "household_weight"],
    )
    tax_unit = pd.DataFrame(
        {
            "tax_unit_id": [505, 504, 503, 502, 501],
            "snap_reported": [0.0, 0.0, 2_400.0, 0.0, 0.0],
        }
    )
    spm_unit = pd.DataFrame(
        {
            "spm_unit_id": [1042, 1032, 1022, 1012],
            "spm_unit_pre_subsidy_childcare_expenses": [0.0, 6_000.0, 0.0, 4_000.0],
        }
    )
    family = pd.DataFrame({"family_id": [1041, 1031, 1021, 1011]})
    marital_unit = pd.DataFrame({"marital_unit_id": sorted(person["marital_unit_id"].unique())})
    return EntityBundle(
        year=YEAR,
        tables={
            "person": person,
            "household": household,
            "tax_unit": tax_unit,
            "spm_unit": spm_unit,
            "family": family,
            "marital_unit": marital_unit,
        },
    )


def weighted_people(bundle: EntityBundle) -> float:
    """Sum over persons of their household's weight: the weighted population."""
    weight = bundle.household.set_index("household_id")["household_weight"]
    return float(bundle.person["household_id"].map(weight).sum())
