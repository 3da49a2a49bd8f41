"""What imputed assets do to SSI and SNAP resource tests, on a small stage-6 sample.

    python benchmarks/asset_resource_tests.py [--households 1000] [--cache PATH] [--out PATH]

Builds a national seed sample the way the build does, without Dagster (taxcalc CPS
scaffold uprated with policyengine-us, ``--households`` households, the synthetic PUF-like
tax donor, the SCF-like asset donor), runs ``impute_assets``, turns it into the stage-6
entity bundle (no spine, design weights: no calibration) and writes two H5s: *before*
(bank, stock and bond assets zeroed, as the build was) and *after* (imputed). One
policyengine-us simulation each, plus the benchmark suite's SSI asset-limit reform
($10,000 / $20,000) on each. Reports, weighted: SSI-aged/blind/disabled persons failing
the SSI resource test in January, SPM units failing SNAP's asset test, SSI and SNAP
spending, and the reform's SSI change. Prints JSON and writes it to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DAGSTER_HOME", str(ROOT / "dagster_home"))

from microplex_assets.files import json_safe, write_json_atomic  # noqa: E402
from microplex_resources.build_settings import BuildSettings  # noqa: E402

DEFAULTS = {name: field.default for name, field in BuildSettings.model_fields.items()}
ASSETS = ("bank_account_assets", "stock_assets", "bond_assets")
REFORM = {
    "gov.ssa.ssi.eligibility.resources.limit.individual": 10_000,
    "gov.ssa.ssi.eligibility.resources.limit.couple": 20_000,
}


def build_bundles(households: int, cache: Path | None) -> tuple[Any, Any, dict[str, Any]]:
    """Entity bundles before (assets zero) and after (imputed), and the imputation totals."""
    from microplex_assets.entities.build import build_entity_bundle
    from microplex_assets.seed.asset_imputation import AssetImputationConfig, impute_assets
    from microplex_assets.seed.donor_integration import DonorIntegrationConfig, integrate_tax_donor
    from microplex_assets.seed.seed import build_seed
    from microplex_assets.sources.assets import record_uprater
    from microplex_assets.sources.cps_taxcalc import load_taxcalc_cps
    from microplex_assets.sources.scf_published import synthesize_asset_donor
    from microplex_assets.sources.synthetic_puf import synthesize_tax_records
    from microplex_resources.policyengine_runtime import policyengine_system

    year, seed = DEFAULTS["year"], DEFAULTS["seed"]
    system = policyengine_system()
    key = {"households": households, "year": year, "seed": seed}
    stored = pickle.loads(cache.read_bytes()) if cache and cache.is_file() else {}
    if stored.get("key") == key:
        integrated = stored["integrated"]
    else:
        cps = load_taxcalc_cps(year=year, seed=seed, system=system)
        sample, _ = build_seed(cps, households=households, seed=seed + 1)
        del cps
        tax_donor = synthesize_tax_records(
            year, records=5_000, seed=seed, uprate=record_uprater(system)
        )
        config = DonorIntegrationConfig(seed=seed + 1, evidence=False, n_jobs=1)
        integrated, _ = integrate_tax_donor(sample, tax_donor, config)
        if cache:
            cache.write_bytes(pickle.dumps({"key": key, "integrated": integrated}))
    asset_donor = synthesize_asset_donor(year, seed=seed, uprate=record_uprater(system))
    after, report = impute_assets(integrated, asset_donor, AssetImputationConfig(seed=seed + 1))
    before = after.tables["person"].copy()
    before[list(ASSETS)] = 0.0
    before_frame = type(after)(after.source, after.year, {**after.tables, "person": before},
                               after.links, after.provenance)  # fmt: skip
    summary = {
        "totals": report.totals,
        "evidence_all": report.evidence.query("group == 'all'").to_dict("records"),
        "ssi_households_restricted": report.ssi_households_restricted,
        "ssi_households_scaled": report.ssi_households_scaled,
    }
    return (
        build_entity_bundle(before_frame, seed=seed),
        build_entity_bundle(after, seed=seed),
        summary,
    )


def measure(path: Path, year: int) -> dict[str, float]:
    """Weighted resource-test failures and spending, baseline and SSI asset-limit reform."""
    from policyengine_core.reforms import Reform
    from policyengine_us import Microsimulation

    month = f"{year}-01"
    out: dict[str, float] = {}
    sim = Microsimulation(dataset=str(path))
    person_weight = sim.calculate("person_weight", year).values
    abd = sim.calculate("is_ssi_aged_blind_disabled", year).values.astype(bool)
    fails = ~sim.calculate("meets_ssi_resource_test", month).values.astype(bool)
    out["ssi_abd_persons_m"] = float(person_weight[abd].sum() / 1e6)
    out["ssi_abd_failing_resource_test_share"] = float(
        person_weight[abd & fails].sum() / person_weight[abd].sum()
    )
    spm_weight = sim.calculate("spm_unit_weight", year).values
    snap_fail = ~sim.calculate("meets_snap_asset_test", month).values.astype(bool)
    out["spm_units_failing_snap_asset_test_share"] = float(
        spm_weight[snap_fail].sum() / spm_weight.sum()
    )
    out["ssi_bn"] = float(sim.calculate("ssi", year).sum() / 1e9)
    out["snap_bn"] = float(sim.calculate("snap", year).sum() / 1e9)
    out["ssi_recipients_m"] = float(
        person_weight[sim.calculate("ssi", year).values > 0].sum() / 1e6
    )
    reform = Reform.from_dict({k: {f"{year}-01-01.2100-12-31": v} for k, v in REFORM.items()},
                              country_id="us", name="ssi_asset_limit")  # fmt: skip
    reformed = Microsimulation(dataset=str(path), reform=reform)
    out["reform_ssi_bn"] = float(reformed.calculate("ssi", year).sum() / 1e9)
    out["reform_ssi_change_bn"] = out["reform_ssi_bn"] - out["ssi_bn"]
    out["seconds"] = 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1_000)
    parser.add_argument(
        "--cache", type=Path, default=None, help="pickle of the tax-integrated seed"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/asset_resource_tests.json"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    from microplex_assets.publication.h5_export import write_policyengine_h5
    from microplex_resources.policyengine_runtime import policyengine_system

    before, after, summary = build_bundles(args.households, args.cache)
    results: dict[str, Any] = {"households": args.households, "imputation": summary}
    with tempfile.TemporaryDirectory() as work:
        for name, bundle in (("before", before), ("after", after)):
            path = Path(work) / f"{name}.h5"
            write_policyengine_h5(bundle, path, policyengine_system())
            tic = time.perf_counter()
            results[name] = measure(path, DEFAULTS["year"])
            results[name]["seconds"] = round(time.perf_counter() - tic, 1)
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["peak_rss_gb"] = _peak_rss_gb()
    write_json_atomic(args.out, json_safe(results))
    import json

    print(json.dumps(json_safe(results), indent=2))


def _peak_rss_gb() -> float:
    import resource

    return float(np.round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2))


if __name__ == "__main__":
    main()
