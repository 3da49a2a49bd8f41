import shutil

import h5py
import numpy as np
import pytest

from microplex_assets.publication.schema_gate import check_h5_schema, check_microsimulation
from microplex_resources.policyengine_runtime import policyengine_microsimulation


def test_good_file_passes(good_h5, pe_system):
    result = check_h5_schema(good_h5, pe_system, 2024)
    assert result.passed, result.failures
    assert result.metrics["household_records"] == 40


def _broken(tmp_path, good_h5, edit):
    path = tmp_path / "broken.h5"
    shutil.copyfile(good_h5, path)
    with h5py.File(path, "r+") as h5:
        edit(h5)
    return path


def _replace(h5, name, values):
    if name in h5:
        del h5[name]
    h5.create_group(name).create_dataset("2024", data=values)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda h5: h5["person_id"]["2024"].__setitem__(1, h5["person_id"]["2024"][0]),
         "person_id: 1 duplicate ids"),
        (lambda h5: h5["person_household_id"]["2024"].__setitem__(0, 10**9),
         "person_household_id: 1 persons point to no household_id"),
        (lambda h5: h5["household_weight"]["2024"].__setitem__(0, -5.0),
         "household_weight: 1 negative or non-finite"),
        (lambda h5: _replace(h5, "tax_unit_role_input",
                             np.full(len(h5["person_id"]["2024"]), b"BOSS")),
         "tax_unit_role_input: values [np.bytes_(b'BOSS')] are not enum members"),
        (lambda h5: _replace(h5, "ssi_reported", np.zeros(len(h5["person_id"]["2024"]))),
         "ssi_reported: reported source column must not be exported"),
        (lambda h5: _replace(h5, "my_column", np.zeros(3)), "my_column: not a policyengine-us"),
        (lambda h5: _replace(h5, "income_tax", np.zeros(len(h5["tax_unit_id"]["2024"]),
                                                        dtype=np.float32)),
         "income_tax: formula variable"),
        (lambda h5: _replace(h5, "age", np.zeros(2)), "age: 2 values, expected"),
        (lambda h5: h5.__delitem__("person_spm_unit_id"), "person_spm_unit_id: required id"),
    ],
)  # fmt: skip
def test_broken_files_fail_with_the_problem_named(tmp_path, good_h5, pe_system, edit, expected):
    result = check_h5_schema(_broken(tmp_path, good_h5, edit), pe_system, 2024)
    assert not result.passed
    assert any(expected in failure for failure in result.failures), result.failures


def test_microsimulation_computes_income_tax_and_net_income(good_h5):
    result = check_microsimulation(good_h5, 2024, policyengine_microsimulation)
    assert result["finite"] is True
    assert result["household_net_income_total_bn"] > 0
    assert np.isfinite(result["income_tax_total_bn"])
