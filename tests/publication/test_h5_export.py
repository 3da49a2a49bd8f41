import h5py
import numpy as np
import pytest

from microplex_assets.entities.bundle import GROUP_ENTITIES
from microplex_assets.publication.h5_export import write_policyengine_h5
from tests.publication.households import YEAR, tiny_bundle


def _read(path, name):
    with h5py.File(path) as h5:
        return h5[name][str(YEAR)][:]


def test_round_trip_keeps_ids_links_and_values(tmp_path, pe_system):
    bundle = tiny_bundle()
    path = tmp_path / "policyengine_us_2024.h5"
    report = write_policyengine_h5(bundle, path, pe_system)
    person, household = bundle.person, bundle.household
    assert np.array_equal(_read(path, "person_id"), person["person_id"])
    for entity in GROUP_ENTITIES:
        assert np.array_equal(_read(path, f"{entity}_id"), bundle.tables[entity][f"{entity}_id"])
        assert np.array_equal(_read(path, f"person_{entity}_id"), person[f"{entity}_id"])
    assert np.array_equal(_read(path, "age"), person["age"])
    assert _read(path, "age").dtype == np.float32  # PolicyEngine's own dtype
    assert np.array_equal(
        _read(path, "employment_income_before_lsr"), person["employment_income_before_lsr"]
    )
    assert _read(path, "is_female").dtype == np.bool_
    assert _read(path, "is_female").tolist() == person["is_female"].tolist()
    fips = _read(path, "state_fips")
    assert fips.dtype.kind == "i" and fips.tolist() == household["state_fips"].tolist()
    assert _read(path, "tenure_type").tolist() == [t.encode() for t in household["tenure_type"]]
    assert _read(path, "tax_unit_role_input")[:3].tolist() == [b"HEAD", b"SPOUSE", b"DEPENDENT"]
    with h5py.File(path) as h5:
        assert all(list(h5[name]) == ["2024"] for name in h5)
    assert report.record_counts == {
        "person": 9, "household": 4, "tax_unit": 5, "spm_unit": 4, "family": 4, "marital_unit": 8
    }  # fmt: skip
    assert report.household_weight_total == 4_500.0
    assert "spm_unit_pre_subsidy_childcare_expenses" in report.exported["spm_unit"]
    assert {"person_id", "person_family_id", "household_weight"} <= set(report.h5_variables)
    assert not list(tmp_path.glob(".*")), "temporary file left behind"


def test_non_inputs_are_left_out_with_reasons(tmp_path, pe_system):
    bundle = tiny_bundle()
    bundle.tables["tax_unit"]["income_tax"] = 1.0  # a formula variable
    bundle.tables["person"]["employment_income"] = 1.0  # computed (adds) in PolicyEngine
    bundle.tables["person"]["made_up_column"] = 1.0
    bundle.tables["person"]["state_fips"] = 6  # a household variable on the person table
    path = tmp_path / "out.h5"
    report = write_policyengine_h5(bundle, path, pe_system)
    excluded = report.excluded
    assert excluded["tax_unit.snap_reported"].startswith("reported source value")
    assert excluded["person.made_up_column"] == "not a policyengine-us variable"
    assert excluded["tax_unit.income_tax"].startswith("formula variable")
    assert excluded["person.employment_income"].startswith("formula variable")
    assert excluded["person.state_fips"].endswith("on entity household, not person")
    assert excluded["person.role"] == "source diagnostic"
    with h5py.File(path) as h5:
        names = set(h5)
    assert not names & {"income_tax", "snap_reported", "made_up_column", "role"}
    assert "employment_income" not in names and "state_fips" in names


@pytest.mark.parametrize(
    ("table", "column", "value", "message"),
    [
        ("household", "tenure_type", "CASTLE", "tenure_type: values ['CASTLE'] are not members"),
        ("person", "age", np.nan, "age: 1 missing values"),
        ("household", "state_fips", 2**40, "state_fips: values do not fit int32"),
    ],
)
def test_invalid_values_are_refused_and_the_old_file_kept(
    tmp_path, pe_system, table, column, value, message
):
    path = tmp_path / "out.h5"
    write_policyengine_h5(tiny_bundle(), path, pe_system)
    before = path.read_bytes()
    bundle = tiny_bundle()
    frame = bundle.tables[table]
    frame[column] = frame[column].astype(object)
    frame.loc[0, column] = value
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        write_policyengine_h5(bundle, path, pe_system)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".*")), "temporary file left behind"


def test_stage6_bundle_exports_its_role_input(tmp_path, bundle, pe_system):
    report = write_policyengine_h5(bundle, tmp_path / "out.h5", pe_system)
    assert {"tax_unit_role_input", "age"} <= set(report.exported["person"])
    assert report.record_counts["household"] == 40


def _income_tax_with(tmp_path, pe_system, column: str) -> dict[str, np.ndarray]:
    """Household 104's head (TX, $60k wages) with $5,000 in ``column``, through the H5."""
    from policyengine_us import Microsimulation

    bundle = tiny_bundle()
    person = bundle.person
    person[column] = np.where(person["person_id"] == 1008, 5_000.0, 0.0)
    path = tmp_path / f"{column}.h5"
    report = write_policyengine_h5(bundle, path, pe_system)
    assert column in report.exported["person"]
    simulation = Microsimulation(dataset=str(path))
    names = ("non_sch_d_capital_gains", "adjusted_gross_income", "net_capital_gain",
             "income_tax")  # fmt: skip
    return {name: np.asarray(simulation.calculate(name, YEAR)) for name in names}


def test_distributions_land_in_non_sch_d_and_are_taxed_as_long_term_gains(tmp_path, pe_system):
    """Capital gain distributions exported as ``non_sch_d_capital_gains`` are what SOI's
    distribution targets read, and PolicyEngine taxes them as the same long-term gain."""
    distributions = _income_tax_with(tmp_path, pe_system, "non_sch_d_capital_gains")
    long_term = _income_tax_with(tmp_path, pe_system, "long_term_capital_gains_before_response")
    assert distributions["non_sch_d_capital_gains"].sum() == 5_000
    assert long_term["non_sch_d_capital_gains"].sum() == 0
    for name in ("adjusted_gross_income", "net_capital_gain", "income_tax"):
        np.testing.assert_allclose(distributions[name], long_term[name], err_msg=name)
    assert distributions["net_capital_gain"].max() == 5_000
