import copy
import json
import math

import pytest

from microplex_assets.validation.microsim.manifest import (
    EXPLAINED_DELTAS_PATH,
    MANIFEST_PATH,
    OUTPUTS,
    ManifestError,
    content_hash,
    load_manifest,
    parse_manifest,
)
from microplex_assets.validation.microsim.reforms import (
    STRUCTURAL_REFORMS,
    check_paths,
    parametric_reform,
)
from microplex_resources.policyengine_runtime import is_input_variable

# Hash of each manifest version. Changing benchmark_manifest.json means a new version:
# raise "version" in the file and add its hash here (never edit an old entry).
FROZEN = {
    1: "33f7bfcad4027d787a1442646e50c0821b3bc80e99628497703cd62f887d20fa",
    # v2: ssi_asset_limit touches "ssi_resources_above_limit" (was "ssi_eligible")
    2: "f15c5b7c2f8adf33a16899eb2cd6ce4839ae18515a04741e438304243f3690bf",
    # v3: ssi_asset_limit touches "ssi_categorical_resources_above_limit" (resources above
    # the floor *and* a member a reader of the SSI resource test could admit)
    3: "c5a87f207a693c2372c0409b29dd5fda75807dd7c5f9f51c97a2e288b0e4ad8e",
}
YEAR = 2024


def test_the_manifest_is_frozen():
    manifest = load_manifest()
    assert manifest.version in FROZEN, "manifest changed: raise its version and add the new hash"
    assert FROZEN[manifest.version] == manifest.content_hash, (
        "manifest changed: raise its version and add the new hash"
    )


def test_the_manifest_holds_the_suite():
    manifest = load_manifest(MANIFEST_PATH)
    touches = {reform.id: reform.touches for reform in manifest.reforms}
    assert touches == {
        "ssi_asset_limit": "ssi_categorical_resources_above_limit",
        "arpa_ctc": "has_children",
        "arpa_childless_eitc": "childless_adults",
        "capital_gains_indexation": "long_term_gains",
        "standard_deduction_plus_2000": "all",
    }
    assert all(reform.year == YEAR for reform in manifest.reforms)
    indexation = manifest.reform("capital_gains_indexation")
    assert (indexation.kind, indexation.structural, indexation.changes) == (
        "structural",
        "capital_gains_indexation",
        (),
    )
    assert set(manifest.reform("arpa_ctc").outputs) == set(OUTPUTS)


def test_every_path_is_a_leaf_parameter(pe_system):
    manifest = load_manifest()
    assert check_paths(manifest, pe_system) == []
    document = json.loads(MANIFEST_PATH.read_text())
    changes = document["reforms"][0]["changes"]
    changes.append({"path": "gov.irs.made_up.rate", "period": "2024-01-01.2100-12-31", "value": 1})
    changes.append(
        {
            "path": "gov.irs.deductions.standard.amount",
            "period": "2024-01-01.2100-12-31",
            "value": 1,
        }
    )
    problems = check_paths(parse_manifest(document), pe_system)
    assert len(problems) == 2
    assert "ssi_asset_limit: gov.irs.made_up.rate not found" in problems
    assert "gov.irs.deductions.standard.amount is a ParameterNode" in problems[1]
    with pytest.raises(ValueError, match="made_up"):
        parametric_reform(parse_manifest(document).reforms[0], pe_system)
    with pytest.raises(ValueError, match="not parametric"):
        parametric_reform(manifest.reform("capital_gains_indexation"), pe_system)


def test_arpa_values_are_the_2021_law(pe_system):
    """The ARPA reforms carry the parameter history's 2021 values (age max: .inf -> 999)."""
    manifest = load_manifest()
    for reform_id in ("arpa_ctc", "arpa_childless_eitc"):
        for change in manifest.reform(reform_id).changes:
            in_2021 = pe_system.parameters.get_child(change.path)("2021-01-01")
            in_2024 = pe_system.parameters.get_child(change.path)("2024-01-01")
            assert in_2021 != in_2024, change.path  # each change restores a 2021-only value
            if isinstance(in_2021, bool):
                assert change.value is in_2021, change.path
            elif math.isinf(in_2021):
                assert change.value == 999, change.path
            else:
                assert change.value == pytest.approx(in_2021), change.path


def test_standard_deduction_is_current_law_plus_2000_each_year(pe_system):
    reform = load_manifest().reform("standard_deduction_plus_2000")
    node = pe_system.parameters.get_child("gov.irs.deductions.standard.amount")
    written = {(change.path, change.period): change.value for change in reform.changes}
    expected = {
        (f"gov.irs.deductions.standard.amount.{status}", f"{year}-01-01.{year}-12-31"): (
            node.children[status](f"{year}-01-01") + 2_000
        )
        for status in node.children
        for year in range(2024, 2036)
    }
    assert written == expected
    assert len(node.children) == 5


def test_structural_reforms_rewrite_a_person_input(pe_system):
    for name, spec in STRUCTURAL_REFORMS.items():
        assert is_input_variable(pe_system, spec["variable"], spec["entity"]), name


def test_explained_deltas_are_bounded_and_name_the_current_manifest():
    """Every tracked explanation covers a bounded delta and was seen under this manifest."""
    document = json.loads(EXPLAINED_DELTAS_PATH.read_text())
    assert document["version"] == 1 and "reason" in document["about"]
    current = load_manifest().content_hash
    for entry in document["explained"]:
        assert entry["up_to_bn"] > 0, entry["reform"]
        assert entry["manifest_hash"] == current, entry["reform"]


# --- validation of bad manifests -------------------------------------------------------------

CHANGE = {"path": "gov.ssa.ssi.amount.individual", "period": "2024-01-01.2100-12-31", "value": 1}
GOOD = {
    "version": 3,
    "description": "small",
    "reforms": [
        {
            "id": "param",
            "description": "a parametric reform",
            "year": 2024,
            "kind": "parametric",
            "changes": [CHANGE],
            "outputs": ["budget_impact", "deciles"],
            "touches": "all",
        },
        {
            "id": "struct",
            "description": "a structural reform",
            "year": 2024,
            "kind": "structural",
            "structural": "capital_gains_indexation",
            "outputs": ["income_tax"],
            "touches": "long_term_gains",
        },
    ],
}


def write(tmp_path, document, **dump):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(document, **dump))
    return path


def test_a_small_manifest_loads_and_hashes_its_canonical_form(tmp_path):
    manifest = load_manifest(write(tmp_path, GOOD))
    assert manifest.version == 3
    assert [reform.id for reform in manifest.reforms] == ["param", "struct"]
    assert manifest.reforms[0].changes[0].value == 1
    assert manifest.content_hash == content_hash(GOOD)
    reordered = json.loads(json.dumps(GOOD, sort_keys=True))
    again = load_manifest(write(tmp_path, reordered, indent=4))
    assert again.content_hash == manifest.content_hash  # formatting is not content
    changed = copy.deepcopy(GOOD)
    changed["reforms"][0]["changes"][0]["value"] = 2
    assert load_manifest(write(tmp_path, changed)).content_hash != manifest.content_hash
    bumped = dict(GOOD, version=4)  # the version is content too
    assert load_manifest(write(tmp_path, bumped)).content_hash != manifest.content_hash


def _set(index, field, value):
    def mutate(document):
        document["reforms"][index][field] = value

    return mutate


def _delete(index, field):
    def mutate(document):
        del document["reforms"][index][field]

    return mutate


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (_set(0, "kind", "magic"), ["reform 'param'", "field 'kind'", "magic"]),
        (_delete(0, "touches"), ["reform 'param'", "field 'touches'", "missing"]),
        (_delete(1, "year"), ["reform 'struct'", "field 'year'", "missing"]),
        (_set(0, "outputs", ["deciles", "gdp"]), ["reform 'param'", "field 'outputs'", "'gdp'"]),
        (_set(1, "touches", "retirees"), ["reform 'struct'", "field 'touches'", "retirees"]),
        (_set(1, "id", "param"), ["reform 'param'", "field 'id'", "duplicate"]),
        (_set(1, "structural", "wealth_tax"), ["field 'structural'", "wealth_tax", "registered"]),
        (_delete(0, "changes"), ["reform 'param'", "field 'changes'", "missing"]),
        (_set(1, "changes", [CHANGE]), ["reform 'struct'", "field 'changes'", "not allowed"]),
        (
            _set(0, "changes", [dict(CHANGE, period="2024")]),
            ["reform 'param'", "field 'changes'", "'2024'"],
        ),
        (
            _set(0, "changes", [CHANGE, CHANGE]),
            ["reform 'param'", "field 'changes'", "set twice"],
        ),
        (_set(0, "id", "Has Spaces"), ["field 'id'", "lower_snake_case"]),
    ],
)
def test_bad_manifests_name_file_reform_and_field(tmp_path, mutate, expected):
    document = copy.deepcopy(GOOD)
    mutate(document)
    path = write(tmp_path, document)
    with pytest.raises(ManifestError) as error:
        load_manifest(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ")
    for part in expected:
        assert part in message


def test_non_strict_json_is_refused(tmp_path):
    document = copy.deepcopy(GOOD)
    document["reforms"][0]["changes"][0]["value"] = math.inf
    path = write(tmp_path, document)  # json.dumps writes Infinity
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_manifest(path)
    with pytest.raises(ManifestError, match="version"):
        load_manifest(write(tmp_path, dict(GOOD, version="1")))


# --- each parametric reform changes what it should (tiny households) ------------------------


def situation(*units: dict[str, dict[str, object]], married: tuple[str, ...] = ()) -> dict:
    """Each unit its own household (Texas: no state income tax); ``married`` share a
    marital unit, everyone else is alone in one."""
    people, groups = {}, {"tax_units": {}, "spm_units": {}, "families": {}, "households": {}}
    for number, unit in enumerate(units):
        for name, values in unit.items():
            people[name] = {variable: {YEAR: value} for variable, value in values.items()}
        for group in groups:
            groups[group][f"{group}_{number}"] = {"members": list(unit)}
        groups["households"][f"households_{number}"]["state_code"] = {YEAR: "TX"}
    marital = {f"alone_{name}": {"members": [name]} for name in people if name not in married}
    if married:
        marital["couple"] = {"members": list(married)}
    return {"people": people, **groups, "marital_units": marital}


def simulations(pe_system, reform_id: str, case: dict):
    from policyengine_us import Simulation

    reform = parametric_reform(load_manifest().reform(reform_id), pe_system)
    return Simulation(situation=case), Simulation(situation=case, reform=reform)


def test_arpa_ctc_gives_the_arpa_amounts_fully_refundable(pe_system):
    case = situation(
        {
            "parent": {"age": 30, "employment_income": 20_000},
            "toddler": {"age": 4},
            "teen": {"age": 17},
        }
    )
    baseline, reform = simulations(pe_system, "arpa_ctc", case)
    assert baseline.calculate("ctc_qualifying_child", YEAR).tolist() == [False, True, False]
    assert baseline.calculate("refundable_ctc", YEAR).tolist() == [1_700]  # 2024 cap
    assert reform.calculate("ctc_qualifying_child", YEAR).tolist() == [False, True, True]
    arpa = reform.calculate("ctc_child_individual_maximum_arpa", YEAR).tolist()
    assert arpa == [0, 3_600, 3_000]
    assert reform.calculate("ctc", YEAR).tolist() == [6_600]
    assert reform.calculate("refundable_ctc", YEAR).tolist() == [6_600]  # fully refundable


def test_arpa_childless_eitc_doubles_the_phase_in_and_widens_ages(pe_system):
    case = situation(
        {"worker": {"age": 30, "employment_income": 8_000}},
        {"young": {"age": 22, "employment_income": 8_000}},
        {"older": {"age": 67, "employment_income": 8_000}},
    )
    baseline, reform = simulations(pe_system, "arpa_childless_eitc", case)
    # 2024 law: 7.65% of 8,000 = 612 for the 30-year-old; 22 and 67 are outside 25-64.
    assert baseline.calculate("eitc", YEAR).tolist() == pytest.approx([612, 0, 0])
    # ARPA: 15.3% of 8,000 = 1,224 (below the 1,502 maximum) at every age from 19.
    assert reform.calculate("eitc", YEAR).tolist() == pytest.approx([1_224] * 3)
    assert reform.calculate("eitc_maximum", YEAR).tolist() == [1_502] * 3


def test_standard_deduction_rises_by_2000_for_every_filer(pe_system):
    case = situation(
        {"single": {"age": 40, "employment_income": 50_000}},
        {"spouse_a": {"age": 40, "employment_income": 60_000}, "spouse_b": {"age": 40}},
        married=("spouse_a", "spouse_b"),
    )
    baseline, reform = simulations(pe_system, "standard_deduction_plus_2000", case)
    for year in (2024, 2025):
        before = baseline.calculate("standard_deduction", year)
        after = reform.calculate("standard_deduction", year)
        assert (after - before).tolist() == [2_000, 2_000], year
    assert baseline.calculate("standard_deduction", YEAR).tolist() == [14_600, 29_200]
    assert (reform.calculate("income_tax", YEAR) < baseline.calculate("income_tax", YEAR)).all()


def test_ssi_asset_limit_admits_a_pensioner_with_5000_in_the_bank(pe_system):
    # SSI countable resources add bank_account_assets, stock_assets and bond_assets.
    case = situation({"pensioner": {"age": 70, "bank_account_assets": 5_000}})
    baseline, reform = simulations(pe_system, "ssi_asset_limit", case)
    assert baseline.calculate("ssi_countable_resources", YEAR).tolist() == [5_000]
    assert baseline.calculate("is_ssi_eligible", f"{YEAR}-01").tolist() == [False]
    assert baseline.calculate("ssi", YEAR).tolist() == [0]
    assert reform.calculate("is_ssi_eligible", f"{YEAR}-01").tolist() == [True]
    assert reform.calculate("ssi", YEAR).tolist() == [943 * 12]  # 2024 federal benefit rate
