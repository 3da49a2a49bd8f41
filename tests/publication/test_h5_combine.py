import shutil

import h5py
import numpy as np
import pytest

from microplex_assets.candidate.backends import run_backend
from microplex_assets.entities.build import build_entity_bundle
from microplex_assets.entities.h5_combine import (
    ID_ON,
    OWN_IDS,
    concatenate_h5,
    restrict_h5,
    restrict_to_sample,
)
from microplex_assets.publication.h5_export import write_policyengine_h5
from microplex_resources.policyengine_runtime import policyengine_microsimulation
from tests.frames import tiny_scaffold

Y = "2024"


def _read(path):
    with h5py.File(path) as h5:
        return {name: h5[name][Y][:] for name in h5}


def _entity_of(system):
    return lambda name: system.variables[name].entity.key


@pytest.fixture()
def second_h5(tmp_path, pe_system):
    """15 other households whose person table lacks taxable_interest_income."""
    other = build_entity_bundle(
        run_backend("seed_passthrough", tiny_scaffold(households=15, seed=1))
    )
    other.tables["person"] = other.person.drop(columns=["taxable_interest_income"])
    path = tmp_path / "second" / "policyengine_us_2024.h5"
    write_policyengine_h5(other, path, pe_system)
    return path


def _assert_aligned(out, src, entity_of):
    """Each variable's value for a record equals the source's value for the same id."""
    for name, values in out.items():
        entity = ID_ON.get(name) or entity_of(name)
        out_ids, src_ids = out[OWN_IDS[entity]], src[OWN_IDS[entity]]
        position = {i: p for p, i in enumerate(src_ids)}
        assert values.tolist() == src[name][[position[i] for i in out_ids]].tolist(), name


def test_restrict_keeps_asked_households_and_aligned_variables(good_h5, tmp_path, pe_system):
    src = _read(good_h5)
    asked = src["household_id"][::3][::-1]  # order of the request does not matter
    path = tmp_path / "slice.h5"
    entity_of = _entity_of(pe_system)
    report = restrict_h5(good_h5, path, asked.tolist(), entity_of=entity_of)
    out = _read(path)
    assert set(out) == set(src)
    assert out["household_id"].tolist() == [h for h in src["household_id"] if h in set(asked)]
    kept = np.isin(src["person_household_id"], asked)
    assert out["person_id"].tolist() == src["person_id"][kept].tolist()
    for entity in ("tax_unit", "spm_unit", "family", "marital_unit"):
        members = src[f"person_{entity}_id"][kept]
        assert set(out[f"{entity}_id"]) == set(members)
        assert set(out[f"person_{entity}_id"]) == set(out[f"{entity}_id"])
    _assert_aligned(out, src, entity_of)
    assert report["households_asked"] == len(asked)
    assert report["record_counts"][Y]["person"] == kept.sum()
    assert report["record_counts"][Y]["household"] == len(asked)
    weights = src["household_weight"][np.isin(src["household_id"], asked)]
    assert report["household_weight_total"][Y] == pytest.approx(float(weights.sum()))
    assert not list(tmp_path.glob(".*")), "temporary file left behind"


def test_restrict_infers_entity_by_length_and_refuses_ambiguity(good_h5, tmp_path):
    path = tmp_path / "slice.h5"
    with h5py.File(good_h5, "a") as h5:  # keep person and household variables only
        units = len(h5["tax_unit_id"][Y])
        for name in [n for n in h5 if n not in ID_ON and len(h5[n][Y]) == units]:
            del h5[name]
    restrict_h5(good_h5, path, [1, 2], year=2024)  # person/household lengths are unique
    assert _read(path)["state_fips"].tolist() == _read(good_h5)["state_fips"][:2].tolist()
    with h5py.File(good_h5, "a") as h5:  # 45 values: tax_unit, spm_unit and family alike
        h5.create_group("spm_unit_pre_subsidy_childcare_expenses").create_dataset(
            Y, data=np.zeros(45, dtype=np.float32)
        )
    with pytest.raises(ValueError, match="spm_unit_pre_subsidy_childcare_expenses.*entity_of"):
        restrict_h5(good_h5, tmp_path / "ambiguous.h5", [1, 2])
    assert not (tmp_path / "ambiguous.h5").exists()


def test_restrict_refuses_unknown_household_and_writes_nothing(good_h5, tmp_path):
    path = tmp_path / "slice.h5"
    with pytest.raises(ValueError, match=rf"{good_h5}.*no household_id \[999\]"):
        restrict_h5(good_h5, path, [1, 999])
    with pytest.raises(ValueError, match="no year 2023"):
        restrict_h5(good_h5, path, [1], year=2023)
    with h5py.File(good_h5, "a") as h5:
        del h5["person_tax_unit_id"]
    with pytest.raises(KeyError, match="lacks id arrays.*person_tax_unit_id"):
        restrict_h5(good_h5, path, [1])
    assert not path.exists() and not list(tmp_path.glob(".*"))


def test_restrict_to_sample_draws_the_same_households_for_a_seed(good_h5, tmp_path, pe_system):
    chosen = restrict_to_sample(good_h5, tmp_path / "a.h5", 5, 2024, _entity_of(pe_system), 3)
    again = restrict_to_sample(good_h5, tmp_path / "b.h5", 5, 2024, _entity_of(pe_system), 3)
    ids = _read(good_h5)["household_id"]
    assert len(set(chosen)) == 5 and set(chosen) <= set(ids) and (chosen == again).all()
    assert sorted(_read(tmp_path / "a.h5")["household_id"]) == chosen.tolist()
    with pytest.raises(ValueError, match="households asked"):
        restrict_to_sample(good_h5, tmp_path / "c.h5", ids.size + 1, 2024)


def test_concatenate_offsets_ids_keeps_memberships_and_fills_missing(
    good_h5, second_h5, tmp_path, pe_system
):
    first, second = _read(good_h5), _read(second_h5)
    path = tmp_path / "national.h5"
    report = concatenate_h5([good_h5, second_h5], path, _entity_of(pe_system), labels=["a", "b"])
    out = _read(path)
    for entity, own in OWN_IDS.items():
        n1, n2 = len(first[own]), len(second[own])
        assert len(out[own]) == n1 + n2 == report["record_counts"][Y][entity]
        assert len(np.unique(out[own])) == n1 + n2, f"{own} not unique"
        assert out[own][:n1].tolist() == first[own].tolist()  # first source unchanged
        offset = report["sources"]["b"]["id_offsets"][entity]
        assert offset == first[own].max() + 1
        assert out[own][n1:].tolist() == (second[own] + offset).tolist()
        if entity != "person":
            assert np.isin(out[f"person_{entity}_id"], out[own]).all()
    # Each person's household weight, through its membership, is the one it had.
    weight_of = dict(zip(out["household_id"], out["household_weight"], strict=True))
    expected = []
    for source in (first, second):
        own = dict(zip(source["household_id"], source["household_weight"], strict=True))
        expected += [own[h] for h in source["person_household_id"]]
    assert [weight_of[h] for h in out["person_household_id"]] == expected
    assert out["age"].tolist() == [*first["age"], *second["age"]]
    n1 = len(first["person_id"])
    assert out["taxable_interest_income"][:n1].tolist() == first["taxable_interest_income"].tolist()
    assert not out["taxable_interest_income"][n1:].any()
    assert out["taxable_interest_income"].dtype == first["taxable_interest_income"].dtype
    assert report["filled"] == {"taxable_interest_income": ["b"]}
    assert report["sources"]["a"]["record_counts"][Y]["household"] == 40
    assert report["sources"]["b"]["record_counts"][Y]["household"] == 15
    total = first["household_weight"].sum(dtype=np.float64) + second["household_weight"].sum(
        dtype=np.float64
    )
    assert report["household_weight_total"][Y] == pytest.approx(total)
    simulation = policyengine_microsimulation(path)  # PolicyEngine itself reads the result
    loaded = simulation.calculate("household_weight", 2024).to_numpy(dtype=np.float64)
    assert loaded.size == 55 and loaded.sum() == pytest.approx(total, rel=1e-6)
    assert simulation.calculate("person_id", 2024).size == len(out["person_id"])


def test_concatenate_refuses_non_numeric_gap_and_unshared_year(
    good_h5, second_h5, tmp_path, pe_system
):
    entity_of = _entity_of(pe_system)
    path = tmp_path / "national.h5"
    with h5py.File(second_h5, "a") as h5:
        del h5["tax_unit_role_input"]
    with pytest.raises(ValueError, match="tax_unit_role_input .* missing from source b"):
        concatenate_h5([good_h5, second_h5], path, entity_of, labels=["a", "b"])
    shifted = tmp_path / "shifted.h5"
    shutil.copy(good_h5, shifted)
    with h5py.File(shifted, "a") as h5:
        for name in h5:
            h5[name].move(Y, "2025")
    with pytest.raises(ValueError, match=r"year 2024 is in some sources but not in \['s'\]"):
        concatenate_h5([good_h5, shifted], path, entity_of, labels=["g", "s"])
    assert not path.exists() and not list(tmp_path.glob(".*"))
