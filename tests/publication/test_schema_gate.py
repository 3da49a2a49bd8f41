import shutil
import time

import h5py
import numpy as np
import pandas as pd
import pytest

from microplex_assets.candidate.backends import run_backend
from microplex_assets.entities.build import build_entity_bundle, spm_units
from microplex_assets.geography import assign_counties
from microplex_assets.publication.h5_export import write_policyengine_h5
from microplex_assets.publication.schema_gate import check_h5_schema, check_microsimulation
from tests.entities.test_build import with_minor_families
from tests.publication.households import tiny_bundle


def default_microsimulation(path):
    """``Microsimulation(dataset=path)`` with PolicyEngine's defaults, as users load a file:
    SPM poverty by county, which needs the household's ``county_fips``."""
    from policyengine_us import Microsimulation

    return Microsimulation(dataset=str(path))


@pytest.fixture()
def tiny_h5(tmp_path, pe_system):
    """The hand-built bundle with counties drawn as stage 6 draws them."""
    bundle = tiny_bundle()
    bundle.household["county_fips"] = assign_counties(bundle.household, seed=0)
    path = tmp_path / "policyengine_us_2024.h5"
    write_policyengine_h5(bundle, path, pe_system)
    return path


def test_good_file_passes_with_numbers(tiny_h5, pe_system):
    result = check_h5_schema(tiny_h5, pe_system, 2024)
    assert result.passed, result.failures
    metrics = result.metrics
    assert metrics["person_records"] == 9 and metrics["household_records"] == 4
    assert metrics["tax_unit_records"] == 5 and metrics["marital_unit_records"] == 8
    assert metrics["household_weight_total"] == 4_500.0
    assert metrics["tax_units_with_supplied_roles"] == 5
    assert metrics["failures"] == 0


def test_stage6_bundle_passes(good_h5, pe_system):
    result = check_h5_schema(good_h5, pe_system, 2024)
    assert result.passed, result.failures


def _replace(h5, name, values):
    if name in h5:
        del h5[name]
    h5.create_group(name).create_dataset("2024", data=values)


def _set(name, index, value):
    def edit(h5):
        h5[name]["2024"][index] = value

    return edit


def _with(array, index, value):
    """A copy of a bytes array with one value replaced (wider than the stored width)."""
    array = array.astype(object)
    array[index] = value
    return array.astype("S")


def _remap_family_ids(h5, new_ids):
    for name in ("family_id", "person_family_id"):
        old = h5[name]["2024"][:]
        _replace(h5, name, np.array([new_ids.get(i, i) for i in old], dtype=np.int64))


def _persons(h5):
    return len(h5["person_id"]["2024"])


BROKEN = {
    "duplicate person_id": (_set("person_id", 1, 1001), "person_id: 1 duplicate ids"),
    "dangling link": (
        _set("person_household_id", 0, 999),
        "person_household_id: 1 persons point to no household_id",
    ),
    "empty household": (_set("household_id", 0, 777), "household_id: 1 household units have no"),
    "negative weight": (
        _set("household_weight", 0, -5.0),
        "household_weight: 1 negative or non-finite weights",
    ),
    "nan weight": (_set("household_weight", 1, np.nan), "household_weight: 1 negative"),
    "invalid enum": (
        _set("tenure_type", 0, b"CASTLE"),
        "tenure_type: values ['CASTLE'] are not members of TenureType",
    ),
    "reported column": (
        lambda h5: _replace(h5, "snap_reported", np.zeros(5, dtype=np.float32)),
        "snap_reported: reported source column must not be exported",
    ),
    "non-PE column": (
        lambda h5: _replace(h5, "my_column", np.zeros(3)),
        "my_column: not a policyengine-us variable",
    ),
    "formula variable": (
        lambda h5: _replace(h5, "income_tax", np.zeros(5, dtype=np.float32)),
        "income_tax: formula variable",
    ),
    "wrong length": (lambda h5: _replace(h5, "age", np.zeros(2)), "age: 2 values, expected 9"),
    "wrong dtype": (
        lambda h5: _replace(h5, "is_female", np.zeros(_persons(h5))),
        "is_female: dtype float64, expected bool",
    ),
    "enum as integers": (
        lambda h5: _replace(h5, "tenure_type", np.zeros(4, dtype=np.int16)),
        "tenure_type: dtype int16, expected enum names as bytes",
    ),
    "missing id": (
        lambda h5: h5.__delitem__("person_spm_unit_id"),
        "person_spm_unit_id: required id variable missing",
    ),
    "missing weight": (
        lambda h5: h5.__delitem__("household_weight"),
        "household_weight: missing",
    ),
    "wrong year": (
        lambda h5: h5["age"].move("2024", "2023"),
        "age: no dataset for year 2024",
    ),
    "bare dataset": (
        lambda h5: h5.create_dataset("is_blind", data=np.zeros(9, dtype=bool)),
        "is_blind: a bare dataset",
    ),
    "two heads": (
        _set("tax_unit_role_input", 1, b"HEAD"),
        "tax_unit_role_input: 1 tax units lack exactly one HEAD",
    ),
    "partial roles": (
        lambda h5: _replace(
            h5,
            "tax_unit_role_input",
            _with(h5["tax_unit_role_input"]["2024"][:], 3, b"UNSPECIFIED"),
        ),
        "tax_unit_role_input: 1 tax units supply roles for some members only",
    ),
    "tax unit across households": (
        _set("person_household_id", 1, 102),  # the spouse of household 101
        "tax_unit: 1 units span more than one household",
    ),
    "id beyond int32": (
        lambda h5: _replace(h5, "household_id", h5["household_id"]["2024"][:] + np.int64(2**33)),
        "household_id: 4 ids change and 0 collide when PolicyEngine casts them to int32",
    ),
    # The stage-6 scheme household_id * 100 + family_position past household 167,772:
    # float32 (PolicyEngine's family_id dtype) is exact only below 2**24.
    "family id beyond float32": (
        lambda h5: _remap_family_ids(h5, {1041: 20_022_803, 1031: 20_022_804}),
        "family_id: 1 ids change and 1 collide when PolicyEngine casts them to float32",
    ),
    "not HDF5": (lambda h5: None, "broken.h5: does not open as HDF5"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_files_fail_with_the_problem_named(tmp_path, tiny_h5, pe_system, case):
    edit, expected = BROKEN[case]
    path = tmp_path / "broken.h5"
    shutil.copyfile(tiny_h5, path)
    if case == "not HDF5":
        path.write_bytes(b"not an HDF5 file")
    else:
        with h5py.File(path, "r+") as h5:
            edit(h5)
    result = check_h5_schema(path, pe_system, 2024)
    assert not result.passed
    assert any(expected in failure for failure in result.failures), result.failures
    assert result.metrics["failures"] == len(result.failures)


def test_microsimulation_computes_finite_income_tax_and_net_income(tiny_h5, pe_system):
    started = time.perf_counter()
    result = check_microsimulation(tiny_h5, 2024, default_microsimulation)
    print(f"tiny microsimulation: {time.perf_counter() - started:.1f}s")
    assert result["finite"] is True, result.get("spm_poverty_error")
    assert result["income_tax_records"] == 5 and result["household_net_income_records"] == 4
    assert np.isfinite(result["income_tax_total"])
    # Weighted market income is $263.3m (wages, Social Security, interest); net income
    # is that less taxes plus benefits, so within a plausible band of it.
    assert 0.7 * 263.3e6 < result["household_net_income_total"] < 1.2 * 263.3e6
    assert result["spm_geography"] == "county" and result["spm_unit_records"] == 4
    assert 0.0 <= result["spm_poverty_rate"] <= 1.0


@pytest.fixture()
def minor_family_bundle():
    """Stage-6 output for households holding families of minors only (see test_build)."""
    return build_entity_bundle(run_backend("seed_passthrough", with_minor_families(8)))


def test_families_of_minors_compute_spm_poverty(tmp_path, minor_family_bundle, pe_system):
    path = tmp_path / "policyengine_us_2024.h5"
    write_policyengine_h5(minor_family_bundle, path, pe_system)
    assert check_h5_schema(path, pe_system, 2024).passed
    result = check_microsimulation(path, 2024, default_microsimulation)
    assert "spm_poverty_error" not in result
    assert result["finite"] is True
    assert result["spm_unit_records"] == len(minor_family_bundle.tables["spm_unit"])
    assert 0.0 <= result["spm_poverty_rate"] <= 1.0


def test_spm_unit_without_a_classified_adult_fails_the_gate(
    tmp_path, minor_family_bundle, pe_system
):
    """The old grouping (SPM unit = CPS family, no household head) written on purpose."""
    person = minor_family_bundle.tables["person"]
    person["spm_unit_id"] = person["family_id"]
    person.drop(columns="is_household_head", inplace=True)
    tax_unit = minor_family_bundle.tables["tax_unit"]
    minor_family_bundle.tables["spm_unit"] = spm_units(person, tax_unit)
    path = tmp_path / "policyengine_us_2024.h5"
    write_policyengine_h5(minor_family_bundle, path, pe_system)
    assert check_h5_schema(path, pe_system, 2024).passed  # structurally valid
    result = check_microsimulation(path, 2024, default_microsimulation)
    assert result["finite"] is False
    assert "spm_poverty_rate" not in result
    error = result["spm_poverty_error"]
    assert error.startswith("SPMInputError SPM_COMPOSITION_REQUIRED")
    assert "no classified adult" in error


def test_a_file_without_county_fips_fails_the_gate(tmp_path, tiny_h5, pe_system):
    """County is PolicyEngine's default SPM geography (the one ``Microsimulation(dataset=
    path)`` and so ``policyengine_microsimulation`` use): a file without ``county_fips``
    is structurally valid but cannot compute SPM poverty."""
    path = tmp_path / "no_county.h5"
    shutil.copyfile(tiny_h5, path)
    with h5py.File(path, "r+") as h5:
        del h5["county_fips"]
    assert check_h5_schema(path, pe_system, 2024).passed
    result = check_microsimulation(path, 2024, default_microsimulation)
    assert result["finite"] is False and result["spm_geography"] == "county"
    assert "SPM_GEOGRAPHY_REQUIRED" in result["spm_poverty_error"]


def test_stage6_file_computes_spm_poverty_in_a_plain_microsimulation(good_h5, bundle):
    """What users do: ``Microsimulation(dataset=path)``, no geography override."""
    from policyengine_us import Microsimulation

    started = time.perf_counter()
    simulation = Microsimulation(dataset=str(good_h5))
    in_poverty = simulation.calculate("spm_unit_is_in_spm_poverty", 2024)
    print(f"plain microsimulation SPM poverty: {time.perf_counter() - started:.1f}s")
    assert len(in_poverty) == len(bundle.tables["spm_unit"])
    assert simulation.spm_config["geography_kind"] == "county"
    with h5py.File(good_h5, "r") as h5:  # a str variable is written as bytes
        assert h5["county_fips"]["2024"].dtype.kind == "S"
    counties = [
        c.decode() if isinstance(c, bytes) else str(c)
        for c in pd.Series(simulation.calculate("county_fips", 2024)).to_numpy()
    ]
    household_ids = pd.Series(simulation.calculate("household_id", 2024)).to_numpy(dtype=int)
    expected = bundle.household.set_index("household_id")["county_fips"]
    assert counties == expected.reindex(household_ids).tolist()
    heads = pd.Series(simulation.calculate("is_household_head", 2024)).to_numpy()
    assert heads.sum() == len(bundle.household)
