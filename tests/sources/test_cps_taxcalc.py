"""The taxcalc CPS loader on small files written in the exact cps.csv.gz format.

The small files are whole households cut from taxcalc's shipped file (plus its odd
rows: head-of-household units whose age bands miss a person, spouses aged 0, elderly
dependents), so the tests exercise real records in a second or two.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex_assets.sources.cps_taxcalc import (
    AGE_BANDS,
    HEAD_AMOUNTS,
    PERSON_AMOUNTS,
    SPLIT_AMOUNTS,
    load_taxcalc_cps,
    shipped_paths,
)
from microplex_assets.sources.cps_taxcalc_inputs import PERSON_INPUTS
from microplex_assets.sources.frame import SourceFormatError
from microplex_assets.uprating import uprating_factor, uprating_index
from microplex_resources.policyengine_runtime import is_input_variable

YEAR = 2024
SEED = 7


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False, compression="gzip")
    return path


@pytest.fixture(scope="module")
def shipped() -> tuple[pd.DataFrame, pd.DataFrame]:
    cps_path, weights_path = shipped_paths()
    return pd.read_csv(cps_path), pd.read_csv(weights_path)


@pytest.fixture(scope="module")
def sample(shipped) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Whole households: each survey year's first 120 rows plus odd rows, with their households."""
    cps, weights = shipped
    spouse = cps["MARS"] == 2
    odd = (
        (cps["nu18"] + cps["n1820"] + cps["n21"] != cps["XTOT"])
        | (spouse & (cps["age_spouse"] == 0))
        | (cps["elderly_dependents"] > 0)
        | (cps["age_head"] < 18)
    )
    by_year = [cps.groupby("FLPDYR").head(120), cps[odd].groupby("FLPDYR").head(15)]
    keys = pd.concat([*by_year, cps[spouse & (cps["XTOT"] > 4)].head(20)])
    wanted = set(zip(keys["FLPDYR"], keys["h_seq"], strict=True))
    rows = [k in wanted for k in zip(cps["FLPDYR"], cps["h_seq"], strict=True)]
    return cps[rows].reset_index(drop=True), weights[rows].reset_index(drop=True)


@pytest.fixture(scope="module")
def files(sample, tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("cps")
    cps, weights = sample
    return _write(cps, folder / "cps.csv.gz"), _write(weights, folder / "cps_weights.csv.gz")


@pytest.fixture(scope="module")
def frame(files, pe_system):
    return load_taxcalc_cps(YEAR, SEED, pe_system, *files)


@pytest.fixture(scope="module")
def units(frame, sample) -> pd.DataFrame:
    """The sample's rows keyed by tax_unit_id (through RECID)."""
    cps, _ = sample
    tax_unit = frame.tables["tax_unit"]
    ids = dict(zip(tax_unit["source_record_id"], tax_unit["tax_unit_id"], strict=True))
    return cps.assign(tax_unit_id=cps["RECID"].map(ids)).set_index("tax_unit_id")


def _factor(system, variable: str, source_year: int) -> float:
    """The factor the loader must use: the variable's index (``uprating_index``: PolicyEngine's
    own, or the SOI totals where those override it)."""
    return uprating_factor(system, uprating_index(system, variable).path, source_year, YEAR)


def test_person_count_equals_xtot(frame, units):
    person = frame.tables["person"]
    counts = person.groupby("tax_unit_id").size()
    assert (counts.reindex(units.index) == units["XTOT"]).all()
    assert len(person) == units["XTOT"].sum()
    assert frame.provenance["records"] == len(units)


def test_links_resolve(frame):
    report = frame.link_report()
    assert set(report) == {"person->household", "person->tax_unit", "tax_unit->household"}
    assert all(entry["unresolved"] == 0 for entry in report.values())
    person = frame.tables["person"]
    unit_household = frame.tables["tax_unit"].set_index("tax_unit_id")["household_id"]
    assert (person["tax_unit_id"].map(unit_household) == person["household_id"]).all()


def test_household_table(frame, sample):
    cps, _ = sample
    household = frame.tables["household"]
    keys = cps[["FLPDYR", "h_seq"]].drop_duplicates().sort_values(["FLPDYR", "h_seq"])
    assert household["household_id"].tolist() == list(range(1, len(keys) + 1))
    assert household["source_year"].tolist() == keys["FLPDYR"].tolist()
    assert household["h_seq"].tolist() == keys["h_seq"].tolist()
    fips = cps.groupby(["FLPDYR", "h_seq"])["fips"].first()
    index = pd.MultiIndex.from_frame(keys)
    assert household["state_fips"].tolist() == fips.loc[index].tolist()
    assert household["household_id"].dtype == np.int64


def test_roles_lines_and_head_spouse_ages(frame, units):
    person = frame.tables["person"].set_index("tax_unit_id")
    heads = person[person["role"] == "head"]
    spouses = person[person["role"] == "spouse"]
    assert (heads["line_in_tax_unit"] == 0).all() and (spouses["line_in_tax_unit"] == 1).all()
    assert (person.loc[person["role"] == "dependent", "line_in_tax_unit"] >= 2).all()
    assert heads.index.is_unique and len(heads) == len(units)
    assert (heads["age"] == units.loc[heads.index, "age_head"]).all()
    assert set(spouses.index) == set(units.index[units["MARS"] == 2])
    assert (spouses["age"] == units.loc[spouses.index, "age_spouse"]).all()
    assert (heads["is_blind"] == (units.loc[heads.index, "blind_head"] > 0)).all()
    assert (spouses["is_blind"] == (units.loc[spouses.index, "blind_spouse"] > 0)).all()
    assert (heads["family_position"] == units.loc[heads.index, "ffpos"]).all()


def test_dependent_ages_fall_in_file_bands(frame, units):
    """For units whose bands add up, dependents per band equal the file's counts."""
    person = frame.tables["person"]
    dependents = person[person["role"] == "dependent"]
    edges = [low for low, _ in AGE_BANDS] + [AGE_BANDS[-1][1]]
    band = pd.cut(dependents["age"], bins=edges, right=False, labels=False)
    drawn = pd.crosstab(dependents["tax_unit_id"], band).reindex(
        index=units.index, columns=range(len(AGE_BANDS)), fill_value=0
    )
    spouse = (units["MARS"] == 2) & (units["age_spouse"] > 0)

    def head_spouse(low: int, high: int) -> pd.Series:
        head = units["age_head"].between(low, high - 1)
        return head.astype(int) + (spouse & units["age_spouse"].between(low, high - 1))

    consistent = (units["nu18"] + units["n1820"] + units["n21"] == units["XTOT"]) | (
        (units["MARS"] == 2) & (units["age_spouse"] == 0)
    )
    expected = pd.DataFrame(
        {
            0: units["nu06"],
            1: units["nu13"] - units["nu06"],
            2: units["n24"] - units["nu13"],
            3: units["nu18"] - head_spouse(0, 18) - units["n24"],
            4: units["n1820"] - head_spouse(18, 21),
            5: units["n21"] - head_spouse(21, 200) - units["elderly_dependents"],
            6: units["elderly_dependents"],
        }
    )
    assert consistent.sum() > 300
    assert (expected[consistent] >= 0).all().all()
    pd.testing.assert_frame_equal(drawn[consistent], expected[consistent], check_names=False)
    # Units whose bands miss people: the extra dependents are adults aged 21-64.
    short = ~consistent
    assert short.any()
    assert frame.provenance["age_band_adjusted_rows"] == int(short.sum())
    assert (drawn[short][5] == expected[short][5] + 1).all()
    assert (dependents["age"] >= 0).all() and (dependents["age"] < 86).all()


def test_split_incomes_follow_head_and_spouse(frame, units, pe_system):
    person = frame.tables["person"].set_index("tax_unit_id")
    heads = person[person["role"] == "head"]
    spouses = person[person["role"] == "spouse"]
    for variable, (head_column, spouse_column) in SPLIT_AMOUNTS.items():
        factor = units["FLPDYR"].map(lambda y, v=variable: _factor(pe_system, v, y))
        np.testing.assert_allclose(
            heads[variable], (units[head_column] * factor).loc[heads.index], rtol=1e-12
        )
        np.testing.assert_allclose(
            spouses[variable], (units[spouse_column] * factor).loc[spouses.index], rtol=1e-12
        )
        assert (person.loc[person["role"] == "dependent", variable] == 0).all()
    wages = units["e00200p"] > 0
    ratio = (
        heads.loc[wages[wages].index, "employment_income_before_lsr"]
        / units.loc[wages, "e00200p"].to_numpy()
    )
    expected = units.loc[wages, "FLPDYR"].map(
        lambda y: _factor(pe_system, "employment_income_before_lsr", y)
    )
    np.testing.assert_allclose(ratio, expected, rtol=1e-12)
    assert (expected > 1).all()


def test_tax_unit_amounts_go_to_head(frame, units, pe_system):
    person = frame.tables["person"]
    heads = person[person["role"] == "head"].set_index("tax_unit_id")
    others = person[person["role"] != "head"]
    for variable, (column, minus) in HEAD_AMOUNTS.items():
        raw = units[column] - (units[minus] if minus else 0)
        factor = units["FLPDYR"].map(lambda y, v=variable: _factor(pe_system, v, y))
        np.testing.assert_allclose(heads[variable], (raw * factor).loc[heads.index], rtol=1e-12)
        assert (others[variable] == 0).all()


def test_social_security_split_by_age(frame, units, pe_system):
    person = frame.tables["person"]
    adults = person[person["role"] != "dependent"]
    total = adults["social_security_retirement"] + adults["social_security_disability"]
    received = total.groupby(adults["tax_unit_id"]).sum()
    factor = units["FLPDYR"].map(lambda y: _factor(pe_system, "social_security_retirement", y))
    np.testing.assert_allclose(received.loc[units.index], units["e02400"] * factor, rtol=1e-12)
    assert (adults.loc[adults["age"] < 62, "social_security_retirement"] == 0).all()
    assert (adults.loc[adults["age"] >= 62, "social_security_disability"] == 0).all()
    couples = adults[adults["tax_unit_id"].isin(units.index[units["e02400"] > 0])]
    shares = total.loc[couples.index].groupby(couples["tax_unit_id"]).agg(["min", "max", "size"])
    pairs = shares[shares["size"] == 2]
    assert len(pairs) and np.allclose(pairs["min"], pairs["max"])


def test_weights_and_household_weight_total(frame, sample):
    cps, weights = sample
    tax_unit = frame.tables["tax_unit"].set_index("source_record_id")
    expected = pd.Series(weights[f"WT{YEAR}"].to_numpy() / 100, index=cps["RECID"])
    np.testing.assert_allclose(tax_unit["tax_unit_weight"], expected.loc[tax_unit.index])
    assert frame.provenance["weight_column"] == f"WT{YEAR}"
    household = frame.tables["household"].set_index("household_id")
    units_per_household = frame.tables["tax_unit"].groupby("household_id").size()
    weighted = (household["household_weight"] * units_per_household).sum()
    assert weighted == pytest.approx(tax_unit["tax_unit_weight"].sum(), rel=1e-12)


def test_s006_used_before_weights_file_years_only_when_allowed(files, sample, pe_system):
    cps, _ = sample
    with pytest.raises(SourceFormatError, match="no column 'WT2013'.*cps_weights_allow_s006"):
        load_taxcalc_cps(2013, SEED, pe_system, *files)
    frame = load_taxcalc_cps(2013, SEED, pe_system, *files, allow_s006=True)
    assert frame.provenance["weight_column"] == "s006"
    assert "no WT2013" in frame.provenance["weight_fallback"]
    tax_unit = frame.tables["tax_unit"].set_index("source_record_id")
    expected = pd.Series(cps["s006"].to_numpy() / 100, index=cps["RECID"])
    np.testing.assert_allclose(tax_unit["tax_unit_weight"], expected.loc[tax_unit.index])


def test_same_seed_same_frame_other_seed_other_ages(frame, files, pe_system):
    again = load_taxcalc_cps(YEAR, SEED, pe_system, *files)
    for entity, table in frame.tables.items():
        pd.testing.assert_frame_equal(table, again.tables[entity])
    other = load_taxcalc_cps(YEAR, SEED + 1, pe_system, *files).tables["person"]
    person = frame.tables["person"]
    dependent = person["role"] == "dependent"
    assert (person.loc[dependent, "age"] != other.loc[dependent, "age"]).any()
    assert (person.loc[~dependent, "age"] == other.loc[~dependent, "age"]).all()


def test_columns_and_names(frame, pe_system):
    person = frame.tables["person"]
    assert list(person.columns[:8]) == [
        "person_id",
        "household_id",
        "tax_unit_id",
        "family_position",
        "role",
        "line_in_tax_unit",
        "age",
        "is_blind",
    ]
    assert set(person.columns[8:]) == set(PERSON_AMOUNTS) | set(PERSON_INPUTS)
    for name in (*PERSON_AMOUNTS, *PERSON_INPUTS, "age", "is_blind"):
        assert is_input_variable(pe_system, name, "person"), name
    tax_unit = frame.tables["tax_unit"]
    assert {"snap_reported", "ssi_reported", "medicare_reported", "eitc_children"} <= set(
        tax_unit.columns
    )
    childcare = "tax_unit_childcare_expenses"
    expected = (
        childcare
        if is_input_variable(pe_system, childcare, "tax_unit")
        else "childcare_expenses_reported"
    )
    assert expected in tax_unit.columns
    assert list(frame.tables["household"].columns) == [
        "household_id",
        "state_fips",
        "household_weight",
        "source_year",
        "h_seq",
    ]
    provenance = frame.provenance
    assert provenance["kind"] == "real" and provenance["package"] == "taxcalc"
    assert len(provenance["sha256"]["file"]) == 64
    wages = provenance["uprating"]["employment_income_before_lsr"]
    assert set(wages["factors"]) == {"2012", "2013", "2014"}
    assert wages["index"] == "calibration.gov.irs.soi.employment_income_per_capita"


def _hand_made(columns: list[str], rows: list[dict[str, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(0, index=range(len(rows)), columns=columns)
    for i, row in enumerate(rows):
        for key, value in row.items():
            frame.loc[i, key] = value
    return frame


def test_band_fill_and_trim_on_hand_made_rows(shipped, tmp_path, pe_system):
    columns = list(shipped[0].columns)
    base = {"FLPDYR": 2014, "fips": 6, "s006": 10000, "ffpos": 1}
    rows = [
        # Head of household, XTOT=3 but bands count 2: one dependent missing -> adult.
        {**base, "RECID": 1, "h_seq": 1, "a_lineno": 1, "MARS": 4, "XTOT": 3, "age_head": 40}
        | {"nu18": 1, "nu13": 1, "n24": 1, "n21": 1},
        # Single, XTOT=2 but bands count 3 under-6s: one too many, trimmed.
        {**base, "RECID": 2, "h_seq": 2, "a_lineno": 1, "MARS": 1, "XTOT": 2, "age_head": 30}
        | {"nu06": 2, "nu13": 2, "n24": 2, "nu18": 2, "n21": 1},
        # Joint, consistent: spouse 38, children 3 and 17.
        {**base, "RECID": 3, "h_seq": 3, "a_lineno": 1, "MARS": 2, "XTOT": 4, "age_head": 40}
        | {"age_spouse": 38, "nu06": 1, "nu13": 1, "n24": 1, "nu18": 2, "n21": 2},
    ]
    cps = _hand_made(columns, rows)
    weights = pd.DataFrame({f"WT{y}": [10000, 20000, 30000] for y in range(2014, 2037)})
    paths = _write(cps, tmp_path / "cps.csv.gz"), _write(weights, tmp_path / "w.csv.gz")
    frame = load_taxcalc_cps(YEAR, SEED, pe_system, *paths)
    person = frame.tables["person"]
    ages = person.groupby("tax_unit_id")["age"].apply(list)
    assert len(ages[1]) == 3 and 6 <= ages[1][2] < 13 and 21 <= ages[1][1] < 65
    assert len(ages[2]) == 2 and ages[2][1] < 6
    assert ages[3][:2] == [40, 38] and ages[3][2] == 17 and ages[3][3] < 6
    assert frame.provenance["age_band_adjusted_rows"] == 2
    assert frame.tables["household"]["household_weight"].tolist() == [100.0, 200.0, 300.0]


# Malformed files: each error names the file and the column or problem.


def test_missing_files(files, pe_system, tmp_path):
    cps_path, weights_path = files
    absent = tmp_path / "nope" / "cps.csv.gz"
    with pytest.raises(SourceFormatError, match="not found") as error:
        load_taxcalc_cps(YEAR, SEED, pe_system, absent, weights_path)
    assert str(absent) in str(error.value)
    with pytest.raises(SourceFormatError, match="weights file not found") as error:
        load_taxcalc_cps(YEAR, SEED, pe_system, cps_path, absent)
    assert str(absent) in str(error.value)


def test_missing_column(sample, files, pe_system, tmp_path):
    cps, _ = sample
    path = _write(cps.drop(columns=["e00300"]), tmp_path / "cps.csv.gz")
    with pytest.raises(SourceFormatError, match="e00300") as error:
        load_taxcalc_cps(YEAR, SEED, pe_system, path, files[1])
    assert str(path) in str(error.value) and "expected" in str(error.value)


def test_non_numeric_column(sample, files, pe_system, tmp_path):
    cps, _ = sample
    broken = cps.astype({"e00200p": object})
    broken.loc[5, "e00200p"] = "abc"
    path = _write(broken, tmp_path / "cps.csv.gz")
    with pytest.raises(SourceFormatError, match="'e00200p' expected numeric") as error:
        load_taxcalc_cps(YEAR, SEED, pe_system, path, files[1])
    assert str(path) in str(error.value) and "'abc'" in str(error.value)


def test_weights_row_mismatch(sample, files, pe_system, tmp_path):
    _, weights = sample
    path = _write(weights.iloc[:-1], tmp_path / "cps_weights.csv.gz")
    with pytest.raises(SourceFormatError, match="weight rows") as error:
        load_taxcalc_cps(YEAR, SEED, pe_system, files[0], path)
    message = str(error.value)
    assert str(path) in message and str(files[0]) in message
    assert f"{len(weights) - 1} weight rows" in message


def test_negative_weight(sample, files, pe_system, tmp_path):
    _, weights = sample
    path = _write(weights.assign(WT2024=-weights["WT2024"]), tmp_path / "cps_weights.csv.gz")
    with pytest.raises(SourceFormatError, match="'WT2024' has .* negative weights") as error:
        load_taxcalc_cps(YEAR, SEED, pe_system, files[0], path)
    assert str(path) in str(error.value)


def test_fips_split_within_household(sample, files, pe_system, tmp_path):
    cps, _ = sample
    sizes = cps.groupby(["FLPDYR", "h_seq"])["RECID"].transform("size")
    row = int(np.flatnonzero(sizes.to_numpy() > 1)[0])
    other = 6 if cps.loc[row, "fips"] != 6 else 36
    path = _write(cps.assign(fips=cps["fips"].mask(cps.index == row, other)), tmp_path / "c.csv.gz")
    with pytest.raises(SourceFormatError, match="'fips' differs within 1 household") as error:
        load_taxcalc_cps(YEAR, SEED, pe_system, path, files[1])
    assert str(path) in str(error.value) and f"h_seq={cps.loc[row, 'h_seq']}" in str(error.value)


def test_invalid_fips(sample, files, pe_system, tmp_path):
    cps, _ = sample
    path = _write(cps.assign(fips=cps["fips"].mask(cps.index < 3, 3)), tmp_path / "c.csv.gz")
    with pytest.raises(SourceFormatError, match="'fips' has .* not a state FIPS") as error:
        load_taxcalc_cps(YEAR, SEED, pe_system, path, files[1])
    assert str(path) in str(error.value)


@pytest.mark.slow
def test_full_shipped_file(pe_system, shipped):
    cps, _ = shipped
    started = time.perf_counter()
    frame = load_taxcalc_cps(YEAR, 1456, pe_system)
    seconds = time.perf_counter() - started
    print(f"\nfull taxcalc CPS loaded in {seconds:.1f}s: {frame.provenance['persons']:,} persons")
    assert len(frame.tables["tax_unit"]) == 280_005
    assert len(frame.tables["household"]) == 200_576
    assert len(frame.tables["person"]) == cps["XTOT"].sum()
    assert frame.provenance["weight_column"] == "WT2024"
    assert frame.provenance["xtot_below_head_and_spouse_rows"] == 0
    assert seconds < 60
