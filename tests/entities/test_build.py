import pytest

from microplex_assets.candidate.backends import SupportError, enforce_support, run_backend
from microplex_assets.entities.build import build_entity_bundle, bundle_integrity
from microplex_assets.entities.bundle import ENTITIES
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
