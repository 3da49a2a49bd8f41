import pandas as pd
import pytest

from microplex_assets.candidate.backends import SupportError, enforce_support, run_backend
from microplex_assets.entities.build import build_entity_bundle, bundle_integrity
from microplex_assets.entities.bundle import ENTITIES
from microplex_assets.sources.frame import ObservationFrame
from tests.frames import tiny_scaffold


@pytest.fixture(scope="module")
def bundle():
    return build_entity_bundle(run_backend("seed_passthrough", tiny_scaffold(households=120)))


def test_bundle_has_six_entities_with_intact_links(bundle):
    assert set(bundle.tables) == set(ENTITIES)
    failures, metrics = bundle_integrity(bundle)
    assert failures == []
    assert metrics["person_records"] == len(tiny_scaffold(households=120).tables["person"])


def test_spouses_share_a_marital_unit_and_children_have_their_own(bundle):
    person = bundle.person
    couple = person[person["role"].isin(["head", "spouse"])].groupby("marital_unit_id").size()
    assert couple.max() == 2
    children = person[person["role"] == "dependent"]
    assert children["marital_unit_id"].is_unique
    assert not children["marital_unit_id"].isin(couple.index).any()


def test_persons_are_ordered_head_first_within_tax_unit(bundle):
    first = bundle.person.groupby("tax_unit_id")["role"].first()
    assert (first == "head").all()


def test_integrity_names_dangling_links_and_duplicates(bundle):
    broken = build_entity_bundle(run_backend("seed_passthrough", tiny_scaffold(households=20)))
    broken.tables["person"].loc[0, "household_id"] = 99_999
    dup = broken.tables["tax_unit"].iloc[[0]]
    broken.tables["tax_unit"] = broken.tables["tax_unit"].__class__(
        [*broken.tables["tax_unit"].to_dict("records"), *dup.to_dict("records")]
    )
    failures, metrics = bundle_integrity(broken)
    assert any("person.household_id: 1 persons point to no household" in f for f in failures)
    assert any("tax_unit: 1 duplicate tax_unit_id" in f for f in failures)
    assert metrics["person_household_id_dangling"] == 1


def test_support_enforcement_names_missing_states():
    candidate = run_backend("seed_passthrough", tiny_scaffold(households=40, states=(1, 6)))
    report = enforce_support(candidate, [1, 6])
    assert report["states_present"] == 2
    with pytest.raises(SupportError, match="36"):
        enforce_support(candidate, [1, 6, 36])


def test_unknown_backend_is_named():
    with pytest.raises(ValueError, match="unknown synthesis backend 'magic'"):
        run_backend("magic", tiny_scaffold(households=5))


def test_childcare_expenses_move_from_tax_units_to_their_spm_unit():
    frame = tiny_scaffold(households=30)
    frame.tables["tax_unit"]["childcare_expenses_reported"] = 100.0
    bundle = build_entity_bundle(run_backend("seed_passthrough", frame))
    spm = bundle.tables["spm_unit"].set_index("spm_unit_id")[
        "spm_unit_pre_subsidy_childcare_expenses"
    ]
    units_per_spm = bundle.person.groupby("spm_unit_id")["tax_unit_id"].nunique()
    assert (spm == 100.0 * units_per_spm.reindex(spm.index)).all()
    assert spm.sum() == 100.0 * len(frame.tables["tax_unit"])


def test_group_ids_are_dense_so_float32_holds_them_exactly(bundle):
    for entity in ("family", "spm_unit", "marital_unit"):
        ids = bundle.tables[entity][f"{entity}_id"]
        assert ids.tolist() == list(range(1, len(ids) + 1)), entity


def with_minor_families(households: int = 12) -> ObservationFrame:
    """A tiny scaffold plus two CPS shapes PolicyEngine cannot measure as SPM units:
    - household 1 gains a family of minors only: a 16-year-old tax-unit head and a
      12-year-old sibling (family position 9, beside household 1's adult families);
    - a new household of minors only: a 17-year-old and a 14-year-old, each heading a
      tax unit in a family of their own."""
    frame = tiny_scaffold(households=households)
    tables = {name: table.copy() for name, table in frame.tables.items()}
    person, tax_unit = tables["person"], tables["tax_unit"]
    template = person.iloc[0].to_dict()
    minors_only = int(tables["household"]["household_id"].max()) + 1
    next_unit = int(tax_unit["tax_unit_id"].max())
    next_person = int(person["person_id"].max())
    people = []
    # (household, tax unit offset, family position, role, line, age)
    for household, offset, position, role, line, age in [
        (1, 1, 9, "head", 0, 16),
        (1, 1, 9, "dependent", 1, 12),
        (minors_only, 2, 1, "head", 0, 17),
        (minors_only, 3, 2, "head", 0, 14),
    ]:
        next_person += 1
        people.append(
            {
                **template,
                "person_id": next_person,
                "household_id": household,
                "tax_unit_id": next_unit + offset,
                "family_position": position,
                "role": role,
                "line_in_tax_unit": line,
                "age": age,
                "employment_income_before_lsr": 3_000.0 if role == "head" else 0.0,
                "taxable_interest_income": 0.0,
            }
        )
    units = [
        {**tax_unit.iloc[0].to_dict(), "tax_unit_id": next_unit + offset, "household_id": h}
        for h, offset in [(1, 1), (minors_only, 2), (minors_only, 3)]
    ]
    for unit in units:
        unit.update(filing_status=1, ssi_reported=0.0, snap_reported=0.0)
    household = tables["household"]
    new_household = {**household.iloc[0].to_dict(), "household_id": minors_only}
    tables["person"] = pd.concat([person, pd.DataFrame(people)], ignore_index=True)
    tables["tax_unit"] = pd.concat([tax_unit, pd.DataFrame(units)], ignore_index=True)
    tables["household"] = pd.concat([household, pd.DataFrame([new_household])], ignore_index=True)
    return ObservationFrame(
        source=frame.source,
        year=frame.year,
        tables=tables,
        links=frame.links,
        provenance=frame.provenance,
    )


def test_every_spm_unit_holds_an_adult_policyengine_counts():
    bundle = build_entity_bundle(run_backend("seed_passthrough", with_minor_families()))
    failures, metrics = bundle_integrity(bundle)
    assert failures == []
    assert metrics["spm_units_without_classified_adult"] == 0
    assert metrics["spm_units_folded"] == 2  # household 1's minors; the 14-year-old
    person = bundle.person
    adult = (person["age"] >= 18) | ((person["age"] >= 15) & person["is_household_head"])
    assert adult.groupby(person["spm_unit_id"]).any().all()
    # The family id is untouched: the minors keep their own family.
    assert person["family_id"].nunique() == len(bundle.tables["family"])
    assert bundle.tables["spm_unit"]["spm_unit_id"].tolist() == list(
        range(1, person["spm_unit_id"].nunique() + 1)
    )


def test_minor_family_joins_the_households_primary_family():
    bundle = build_entity_bundle(run_backend("seed_passthrough", with_minor_families()))
    person = bundle.person
    household = person[person["household_id"] == 1]
    minors = household[household["family_position"] == 9]
    primary = household[household["family_position"] == 1]
    assert len(minors) == 2 and minors["family_id"].nunique() == 1
    assert set(minors["spm_unit_id"]) == set(primary["spm_unit_id"])
    assert minors["family_id"].iloc[0] != primary["family_id"].iloc[0]
    # The householder heads the primary family, not the 16-year-old of family 9.
    head = household[household["is_household_head"]]
    assert len(head) == 1 and head["family_position"].item() == 1
    assert head["role"].item() == "head" and not minors["is_household_head"].any()


def test_household_of_minors_is_one_unit_headed_by_its_oldest():
    bundle = build_entity_bundle(run_backend("seed_passthrough", with_minor_families()))
    person = bundle.person
    minors = person[person["household_id"] == person["household_id"].max()]
    assert sorted(minors["age"]) == [14, 17]
    assert minors["spm_unit_id"].nunique() == 1 and minors["family_id"].nunique() == 2
    assert minors.set_index("age")["is_household_head"].to_dict() == {17: True, 14: False}
    assert "1 households of minors only" in bundle.notes["spm_unit"]


def test_household_with_nobody_over_14_fails_integrity():
    frame = with_minor_families()
    person = frame.tables["person"]
    person.loc[person["household_id"] == person["household_id"].max(), "age"] = [13, 12]
    bundle = build_entity_bundle(run_backend("seed_passthrough", frame))
    failures, metrics = bundle_integrity(bundle)
    # Nobody to head the household, so nothing to fold into: both families stay unmeasurable.
    assert metrics["spm_units_without_classified_adult"] == 2
    assert any("spm_unit: 2 units have no member PolicyEngine counts" in f for f in failures)


def test_every_household_has_one_head_and_a_county_in_its_state(bundle):
    person, household = bundle.person, bundle.household
    heads = person.groupby("household_id")["is_household_head"].sum()
    assert (heads.reindex(household["household_id"]) == 1).all()
    # The head is the CPS householder: the first person of the first family's first unit.
    first = person.sort_values(["household_id", "family_position", "tax_unit_id"])
    first = first.groupby("household_id").head(1)
    assert first["is_household_head"].all() and (first["role"] == "head").all()
    county = household["county_fips"]
    assert county.map(type).eq(str).all() and county.str.fullmatch(r"\d{5}").all()
    assert (county.str[:2] == household["state_fips"].map("{:02d}".format)).all()
    assert "assigned, not observed" in bundle.notes["county_fips"]
    _, metrics = bundle_integrity(bundle)
    assert metrics["households_without_one_head"] == 0
    assert metrics["county_fips_outside_state"] == 0


def test_county_draw_follows_the_seed():
    frame = tiny_scaffold(households=120)
    one = build_entity_bundle(run_backend("seed_passthrough", frame), seed=3).household
    again = build_entity_bundle(run_backend("seed_passthrough", frame), seed=3).household
    other = build_entity_bundle(run_backend("seed_passthrough", frame), seed=4).household
    assert one["county_fips"].equals(again["county_fips"])
    assert not one["county_fips"].equals(other["county_fips"])


def test_integrity_names_two_heads_and_a_county_outside_the_state(bundle):
    person = bundle.person.copy()
    household = bundle.household.copy()
    second = person.index[~person["is_household_head"]][0]
    person.loc[second, "is_household_head"] = True
    household.loc[household["state_fips"] == 6, "county_fips"] = "36061"
    broken = type(bundle)(
        year=bundle.year, tables={**bundle.tables, "person": person, "household": household}
    )
    failures, metrics = bundle_integrity(broken)
    assert "household: 1 households without exactly one head" in failures
    assert metrics["county_fips_outside_state"] == int((household["state_fips"] == 6).sum())
    assert any(f.startswith("household.county_fips:") for f in failures)


def test_a_scaffolds_own_spm_units_are_kept_over_families():
    """A scaffold with the Census SPM unit (CPS ASEC SPM_ID) keeps it: a second family that
    the Census puts in the householder's unit (a cohabiting partner) is not a unit of its own."""
    frame = tiny_scaffold(households=40)
    person = frame.tables["person"]
    two_families = person.groupby("household_id")["family_position"].nunique() > 1
    assert two_families.any()
    by_family = build_entity_bundle(run_backend("seed_passthrough", frame))
    person["spm_unit_id"] = person["household_id"] * 10 + 1  # one Census unit per household
    by_census = build_entity_bundle(run_backend("seed_passthrough", frame))
    assert len(by_family.tables["spm_unit"]) == len(by_family.tables["family"]) > 40
    assert len(by_census.tables["spm_unit"]) == 40
    assert "SPM_ID" in by_census.notes["spm_unit"]
    assert bundle_integrity(by_census)[0] == []
    # an incomplete column is not trusted: back to families
    person.loc[person.index[0], "spm_unit_id"] = None
    partial = build_entity_bundle(run_backend("seed_passthrough", frame))
    assert len(partial.tables["spm_unit"]) == len(by_family.tables["spm_unit"])
