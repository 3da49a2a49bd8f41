"""Household and SPM-unit tenure (``entities/tenure.py``) from hand-made cps.csv.gz rows,
followed into the H5 and read back by PolicyEngine."""

from __future__ import annotations

import h5py
import pandas as pd
import pytest

from microplex_assets.candidate.backends import run_backend
from microplex_assets.entities.build import build_entity_bundle
from microplex_assets.publication.h5_export import write_policyengine_h5
from microplex_assets.sources.cps_taxcalc import REQUIRED_COLUMNS, load_taxcalc_cps

OWNERS = {"OWNED_OUTRIGHT", "OWNED_WITH_MORTGAGE"}


BASE = {"FLPDYR": 2014, "fips": 6, "a_lineno": 1, "ffpos": 1, "s006": 10_000, "agi_bin": 5,
        "MARS": 1, "age_head": 45, "XTOT": 1, "n21": 1}  # fmt: skip
# Household 1: an owner unit and a second (non-owner-flagged dependent filer) unit; 2: renter.
ROWS = [
    {"h_seq": 1, "e18500": 2_000, "e19200": 6_000},
    {"h_seq": 1, "a_lineno": 2, "DSI": 1, "age_head": 19},
    {"h_seq": 2, "housing_ben": 5_000},
]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, pe_system):
    folder = tmp_path_factory.mktemp("cps_tenure")
    cps = pd.DataFrame(0, index=range(len(ROWS)), columns=list(REQUIRED_COLUMNS))
    for i, row in enumerate(ROWS):
        for key, value in {**BASE, **row, "RECID": i + 1}.items():
            cps.loc[i, key] = value
    cps_path, weights_path = folder / "cps.csv.gz", folder / "cps_weights.csv.gz"
    cps.to_csv(cps_path, index=False, compression="gzip")
    pd.DataFrame({"WT2024": [10_000] * len(ROWS)}).to_csv(
        weights_path, index=False, compression="gzip"
    )
    frame = load_taxcalc_cps(2024, 3, pe_system, cps_path, weights_path)
    assert frame.tables["tax_unit"]["home_owner_reported"].tolist() == [True, False, False]
    return build_entity_bundle(run_backend("seed_passthrough", frame), seed=1)


def test_tenure_reaches_policyengine(bundle, tmp_path, pe_system):
    from policyengine_us import Microsimulation

    path = tmp_path / "tenure.h5"
    report = write_policyengine_h5(bundle, path, pe_system)
    assert "tenure_type" in report.exported["household"]
    assert "spm_unit_tenure_type" in report.exported["spm_unit"]
    with h5py.File(path, "r") as h5:
        stored = [v.decode() for v in h5["tenure_type"]["2024"][:]]
    assert stored[0] in OWNERS and stored[1] == "RENTED"
    sim = Microsimulation(dataset=str(path))
    household = sim.calculate("tenure_type", 2024).values.tolist()
    assert household == stored
    spm = sim.calculate("spm_unit_tenure_type", 2024).values.tolist()
    mortgaged = stored[0] == "OWNED_WITH_MORTGAGE"
    owner_spm = "OWNER_WITH_MORTGAGE" if mortgaged else "OWNER_WITHOUT_MORTGAGE"
    assert spm[0] == owner_spm and spm[-1] == "RENTER"
