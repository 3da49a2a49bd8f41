"""Decompose PolicyEngine's SPM poverty rate on a small sample of real CPS households.

    python benchmarks/spm_decomposition.py [--households 3000] [--cache PATH]
        [--variants baseline,tenure,household_units] [--out DIR]

Builds the default build path without Dagster (taxcalc CPS uprated with policyengine-us,
the stratified seed sample with its design weights, the SOI-synthesized tax donor, the
SCF-like asset donor, stage 6; no spine, no calibration), writes the H5, runs one
``Microsimulation`` and stores per-SPM-unit and per-person tables (parquet) under ``--out``
with a JSON summary: people-weighted SPM poverty overall / children / 65+, thresholds by
tenure and size, resources and their parts, units with zero or negative resources.

``--variants`` names changes made to the stage-6 bundle before export (``VARIANTS``:
``baseline`` without tenure, ``tenure`` as built, ``household_units`` one SPM unit per
household); the variants' bundles get offset ids and run in one simulation, so each
cause's contribution is measured on the same households at the cost of one simulation.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DAGSTER_HOME", str(ROOT / "dagster_home"))

UNIT_VARIABLES = (
    "spm_unit_weight",
    "spm_unit_size",
    "spm_unit_spm_threshold",
    "spm_unit_net_income",
    "spm_unit_market_income",
    "spm_unit_benefits",
    "spm_unit_taxes",
    "spm_unit_spm_expenses",
    "spm_unit_capped_work_childcare_expenses",
    "spm_unit_medical_out_of_pocket_expenses",
    "spm_unit_health_insurance_premiums",
    "spm_unit_non_premium_medical_out_of_pocket_expenses",
    "child_support_expense",
    "spm_unit_is_in_spm_poverty",
    "spm_unit_tenure_type",
    "spm_unit_federal_tax",
    "spm_unit_state_tax",
    "spm_unit_payroll_tax",
    "spm_unit_self_employment_tax",
    "social_security",
    "ssi",
    "snap",
    "tanf",
    "wic",
    "free_school_meals",
    "reduced_price_school_meals",
    "spm_unit_capped_housing_subsidy",
    "spm_unit_energy_subsidy",
    "total_unemployment_compensation",
    "child_support_received",
)
PERSON_VARIABLES = ("person_weight", "age", "spm_unit_id", "household_id", "person_in_poverty")


def integrated_sample(households: int, cache: Path | None) -> Any:
    """The seed sample with tax and asset donors imputed (the build's stage-4 output)."""
    from microplex_assets.seed.asset_imputation import AssetImputationConfig, impute_assets
    from microplex_assets.seed.donor_integration import DonorIntegrationConfig, integrate_tax_donor
    from microplex_assets.seed.seed import build_seed
    from microplex_assets.sources.assets import record_uprater
    from microplex_assets.sources.cps_taxcalc import load_taxcalc_cps
    from microplex_assets.sources.scf_published import synthesize_asset_donor
    from microplex_assets.sources.synthetic_puf import synthesize_tax_records
    from microplex_resources.build_settings import BuildSettings
    from microplex_resources.policyengine_runtime import policyengine_system

    defaults = {name: f.default for name, f in BuildSettings.model_fields.items()}
    year, seed = defaults["year"], defaults["seed"]
    key = {"households": households, "year": year, "seed": seed}
    stored = pickle.loads(cache.read_bytes()) if cache and cache.is_file() else {}
    if stored.get("key") == key:
        return stored["frame"]
    system = policyengine_system()
    cps = load_taxcalc_cps(year=year, seed=seed, system=system)
    sample, _ = build_seed(cps, households=households, seed=seed + 1)
    del cps
    donor = synthesize_tax_records(year, records=5_000, seed=seed, uprate=record_uprater(system))
    integrated, _ = integrate_tax_donor(
        sample, donor, DonorIntegrationConfig(seed=seed + 1, evidence=False, n_jobs=1)
    )
    assets = synthesize_asset_donor(year, seed=seed, uprate=record_uprater(system))
    frame, _ = impute_assets(integrated, assets, AssetImputationConfig(seed=seed + 1))
    if cache:
        cache.write_bytes(pickle.dumps({"key": key, "frame": frame}))
    return frame


def _no_tenure(bundle: Any) -> None:
    bundle.tables["spm_unit"] = bundle.tables["spm_unit"].drop(
        columns=["spm_unit_tenure_type"], errors="ignore"
    )


def _household_units(bundle: Any) -> None:
    """Upper bound of unit merging: every household one SPM unit."""
    person = bundle.tables["person"]
    person["spm_unit_id"] = person["household_id"].rank(method="dense").astype("int64")
    first = person.groupby("spm_unit_id")["household_id"].first()
    old = bundle.tables["spm_unit"]
    numeric = [c for c in old.columns if c != "spm_unit_id" and old[c].dtype.kind in "fi"]
    flags = [c for c in old.columns if c != "spm_unit_id" and old[c].dtype.kind == "b"]
    spm_household = bundle.meta_spm_household  # set in main
    grouped = old.assign(household_id=spm_household).groupby("household_id")
    new = pd.DataFrame({"spm_unit_id": first.index.to_numpy()})
    hh = first.to_numpy()
    for c in numeric:
        new[c] = grouped[c].sum().reindex(hh).to_numpy()
    for c in flags:
        new[c] = grouped[c].any().reindex(hh).to_numpy()
    for c in [c for c in old.columns if c != "spm_unit_id" and c not in numeric + flags]:
        new[c] = grouped[c].first().reindex(hh).to_numpy()  # household-level (tenure)
    bundle.tables["spm_unit"] = new


VARIANTS: dict[str, Callable[[Any], None]] = {"fixed": lambda bundle: None}
VARIANTS["baseline"] = _no_tenure
VARIANTS["tenure"] = lambda bundle: None
VARIANTS["household_units"] = _household_units


def with_owner_flag(frame: Any) -> Any:
    """The frame with ``home_owner_reported`` on tax units (taxcalc's e18500 > 0 by RECID),
    what the source adds when the seed is rebuilt with it."""
    from microplex_assets.sources.cps_taxcalc import shipped_paths

    tax_unit = frame.tables["tax_unit"]
    if "home_owner_reported" in tax_unit.columns:
        return frame
    cps = pd.read_csv(shipped_paths()[0], usecols=["RECID", "e18500"]).set_index("RECID")
    tax_unit["home_owner_reported"] = (
        tax_unit["source_record_id"].map(cps["e18500"]).to_numpy(float) > 0
    )
    return frame


def concat_bundles(bundles: dict[str, Any]) -> tuple[Any, pd.Series]:
    """One bundle of several variants (ids offset), and each household's variant."""
    from microplex_assets.entities.bundle import ENTITIES, EntityBundle

    tables: dict[str, list[pd.DataFrame]] = {e: [] for e in ENTITIES}
    variant_of: dict[int, str] = {}
    offset = 0
    for name, bundle in bundles.items():
        top = max(int(t[c].max()) for t in bundle.tables.values() for c in t if c.endswith("_id"))
        for entity in ENTITIES:
            table = bundle.tables[entity].copy()
            for column in [c for c in table.columns if c.endswith("_id")]:
                table[column] = table[column].astype("int64") + offset
            tables[entity].append(table)
        for h in bundle.household["household_id"].astype("int64") + offset:
            variant_of[int(h)] = name
        offset += top + 1
    merged = {e: pd.concat(t, ignore_index=True) for e, t in tables.items()}
    first = next(iter(bundles.values()))
    return EntityBundle(year=first.year, tables=merged), pd.Series(variant_of)


def simulate(bundle: Any, year: int) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """Per-SPM-unit and per-person tables from one Microsimulation of the bundle."""
    from policyengine_us import Microsimulation

    from microplex_assets.publication.h5_export import write_policyengine_h5
    from microplex_resources.policyengine_runtime import policyengine_system

    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "sample.h5"
        write_policyengine_h5(bundle, path, policyengine_system())
        tic = time.perf_counter()
        sim = Microsimulation(dataset=str(path))
        variables = sim.tax_benefit_system.variables

        def unit_values(name: str) -> np.ndarray:
            on_unit = variables[name].entity.key == "spm_unit"
            kwargs = {} if on_unit else {"map_to": "spm_unit"}
            return np.asarray(sim.calculate(name, year, **kwargs).values)

        raw = {v: unit_values(v) for v in (*UNIT_VARIABLES, "spm_unit_id")}
        # Group ids asked on persons come back per group: map them to persons.
        raw.update(
            {
                f"person:{v}": sim.calculate(
                    v, year, **({"map_to": "person"} if v.endswith("_id") else {})
                ).values
                for v in PERSON_VARIABLES
            }
        )
        # Kept so a failure after the (slow) simulation loses nothing.
        (Path(tempfile.gettempdir()) / "spm_decomposition_raw.pkl").write_bytes(pickle.dumps(raw))
        units = pd.DataFrame({v: raw[v] for v in (*UNIT_VARIABLES, "spm_unit_id")})
        people = pd.DataFrame({v: np.asarray(raw[f"person:{v}"]) for v in PERSON_VARIABLES})
        seconds = time.perf_counter() - tic
    return units, people, seconds


def rate(people: pd.DataFrame, mask: np.ndarray | None = None) -> float:
    w = people["person_weight"].to_numpy(float)
    poor = people["person_in_poverty"].to_numpy(bool)
    if mask is not None:
        w = w * mask
    return round(float(w @ poor / w.sum()), 4)


# Resource elements: (columns, sign): the rate without a benefit (+1) or expense (-1).
ELEMENTS: dict[str, tuple[tuple[str, ...], int]] = {
    "social_security": (("social_security",), 1),
    "ssi": (("ssi",), 1),
    "snap": (("snap",), 1),
    "housing_subsidy": (("spm_unit_capped_housing_subsidy",), 1),
    "school_meals": (("free_school_meals", "reduced_price_school_meals"), 1),
    "wic": (("wic",), 1),
    "tanf": (("tanf",), 1),
    "unemployment": (("total_unemployment_compensation",), 1),
    "energy_subsidy": (("spm_unit_energy_subsidy",), 1),
    "taxes": (("spm_unit_taxes",), -1),
    "medical_out_of_pocket": (("spm_unit_medical_out_of_pocket_expenses",), -1),
    "work_childcare_expenses": (("spm_unit_capped_work_childcare_expenses",), -1),
}


def rates_without_elements(units: pd.DataFrame, people: pd.DataFrame) -> dict[str, float]:
    """People-weighted SPM rate with each element taken out of resources (Census's
    'rate without' table)."""
    person_unit = people["spm_unit_id"].to_numpy()
    w = people["person_weight"].to_numpy(float)
    out = {}
    for name, (columns, sign) in ELEMENTS.items():
        resources = units["spm_unit_net_income"] - sign * units[list(columns)].sum(axis=1)
        poor = pd.Series(
            (resources < units["spm_unit_spm_threshold"]).to_numpy(), index=units["spm_unit_id"]
        )
        out[name] = round(float(w @ poor.reindex(person_unit).to_numpy(float) / w.sum()), 4)
    return out


def summarise(units: pd.DataFrame, people: pd.DataFrame) -> dict[str, Any]:
    """People-weighted rates and the resources decomposition."""
    age = people["age"].to_numpy(float)
    persons = units["spm_unit_weight"] * units["spm_unit_size"]
    resources = units["spm_unit_net_income"]
    out: dict[str, Any] = {
        "rate_all": rate(people),
        "rate_children": rate(people, age < 18),
        "rate_18_64": rate(people, (age >= 18) & (age < 65)),
        "rate_65_plus": rate(people, age >= 65),
        "people_m": round(float(people["person_weight"].sum() / 1e6), 2),
        "spm_units_m": round(float(units["spm_unit_weight"].sum() / 1e6), 2),
        "mean_unit_size_people_weighted": round(
            float((persons * units["spm_unit_size"]).sum() / persons.sum()), 3
        ),
        "share_people_resources_le_0": round(
            float(persons[resources <= 0].sum() / persons.sum()), 4
        ),
        "share_units_resources_le_0": round(
            float(units["spm_unit_weight"][resources <= 0].sum() / units["spm_unit_weight"].sum()),
            4,
        ),
    }
    totals = {
        c: round(float((units[c] * units["spm_unit_weight"]).sum() / 1e9), 1)
        for c in UNIT_VARIABLES
        if c not in ("spm_unit_weight", "spm_unit_size", "spm_unit_is_in_spm_poverty")
        and units[c].dtype.kind in "fi"
    }
    out["totals_bn"] = totals
    out["rate_without"] = rates_without_elements(units, people)
    kids = (people["age"] < 18).groupby(people["spm_unit_id"]).sum()
    kids = kids.reindex(units["spm_unit_id"]).to_numpy()
    two_two = (units["spm_unit_size"].to_numpy() == 4) & (kids == 2)
    tenure_all = units["spm_unit_tenure_type"].astype(str)
    out["threshold_2a2c_median_by_tenure"] = {
        t: round(float(units.loc[two_two & (tenure_all == t), "spm_unit_spm_threshold"].median()))
        for t in tenure_all[two_two].unique()
    }
    tenure = units["spm_unit_tenure_type"].astype(str)
    out["tenure_share_people"] = {
        t: round(float(persons[tenure == t].sum() / persons.sum()), 4) for t in tenure.unique()
    }
    size = units["spm_unit_size"].clip(upper=7).astype(int)
    out["size_share_people"] = {
        int(s): round(float(persons[size == s].sum() / persons.sum()), 4)
        for s in sorted(size.unique())
    }
    # Threshold of a two-adult two-child renter unit, and medians by size.
    out["threshold_median_by_size"] = {
        int(s): round(float(units.loc[size == s, "spm_unit_spm_threshold"].median()), 0)
        for s in sorted(size.unique())
    }
    out["poverty_by_size_people"] = {
        int(s): round(
            float(
                persons[(size == s) & units["spm_unit_is_in_spm_poverty"]].sum()
                / persons[size == s].sum()
            ),
            4,
        )  # fmt: skip
        for s in sorted(size.unique())
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=3_000)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/spm/seed_3000.pkl"))
    parser.add_argument("--variants", default="baseline", help="comma-separated VARIANTS")
    parser.add_argument("--out", type=Path, default=Path("/tmp/spm"))
    args = parser.parse_args()
    from microplex_assets.entities.build import build_entity_bundle

    args.out.mkdir(parents=True, exist_ok=True)
    frame = with_owner_flag(integrated_sample(args.households, args.cache))
    bundles = {}
    for name in args.variants.split(","):
        bundle = build_entity_bundle(frame, seed=0)
        person = bundle.tables["person"]
        bundle.meta_spm_household = (
            bundle.tables["spm_unit"]["spm_unit_id"]
            .map(person.groupby("spm_unit_id")["household_id"].first())
            .to_numpy()
        )
        VARIANTS[name](bundle)
        bundles[name] = bundle
    merged, variant_of = concat_bundles(bundles)
    spm = merged.tables["spm_unit"]
    if "spm_unit_tenure_type" in spm.columns:
        spm["spm_unit_tenure_type"] = spm["spm_unit_tenure_type"].fillna("RENTER")
    units, people, seconds = simulate(merged, frame.year)
    unit_household = people.groupby("spm_unit_id")["household_id"].first()
    units["variant"] = units["spm_unit_id"].map(unit_household).map(variant_of).to_numpy()
    people["variant"] = people["household_id"].map(variant_of).to_numpy()
    results = {}
    for name in bundles:
        u = units[units["variant"] == name].reset_index(drop=True)
        p = people[people["variant"] == name].reset_index(drop=True)
        u.to_parquet(args.out / f"{name}_units.parquet")
        p.to_parquet(args.out / f"{name}_people.parquet")
        results[name] = summarise(u, p)
    result = {"households": args.households, "seconds": round(seconds), "variants": results}
    tag = args.variants.replace(",", "+")
    (args.out / f"{tag}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
