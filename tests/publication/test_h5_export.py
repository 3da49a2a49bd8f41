import h5py
import numpy as np

from microplex_assets.publication.h5_export import write_policyengine_h5


def test_round_trip_keeps_ids_links_and_values(tmp_path, bundle, pe_system):
    path = tmp_path / "out.h5"
    report = write_policyengine_h5(bundle, path, pe_system)
    person = bundle.person
    with h5py.File(path) as h5:
        assert np.array_equal(h5["person_id"]["2024"][:], person["person_id"])
        for entity in ("household", "tax_unit", "spm_unit", "family", "marital_unit"):
            assert np.array_equal(h5[f"person_{entity}_id"]["2024"][:], person[f"{entity}_id"])
            assert len(h5[f"{entity}_id"]["2024"]) == len(bundle.tables[entity])
        wages = h5["employment_income_before_lsr"]["2024"][:]
        assert np.allclose(wages, person["employment_income_before_lsr"], rtol=1e-6)
        assert h5["state_fips"]["2024"].dtype.kind == "i"
        assert set(h5["tax_unit_role_input"]["2024"][:]) <= {b"HEAD", b"SPOUSE", b"DEPENDENT"}
    assert report.household_weight_total == bundle.household["household_weight"].sum()
    assert not list(tmp_path.glob(".*.tmp")), "temporary file left behind"


def test_non_inputs_are_left_out_with_reasons(tmp_path, bundle, pe_system):
    bundle.tables["tax_unit"]["income_tax"] = 1.0  # a formula variable
    bundle.tables["person"]["made_up_column"] = 1.0
    report = write_policyengine_h5(bundle, tmp_path / "out.h5", pe_system)
    assert report.excluded["tax_unit.snap_reported"].startswith("reported source value")
    assert report.excluded["person.made_up_column"] == "not a policyengine-us variable"
    assert report.excluded["tax_unit.income_tax"].startswith("formula variable")
    assert report.excluded["person.role"] == "source diagnostic"
    with h5py.File(tmp_path / "out.h5") as h5:
        assert "income_tax" not in h5 and "snap_reported" not in h5
