"""Top-tail placement (stage 4) measured on the default national seed: placement off vs on.

    python benchmarks/top_tail_placement.py [--households N] [--cache PATH] [--out PATH]

Builds the inputs the way the build does, without Dagster: the taxcalc CPS scaffold
uprated with policyengine-us (``cps_source_frame``), the synthetic PUF-like donor
(``tax_donor_frame``), and the national seed sample (``seed_frame``: ``national_households``
households, sampling seed = build seed + 1 as in ``run_profile``). ``--cache`` pickles
those frames so a rerun skips the ~2 minutes of policyengine-us import and CPS load.
Then runs ``integrate_tax_donor`` (evidence off, one core) with ``top_tail_placement``
off and on; the forest is fitted once (its cache key ignores placement).

Each tax unit's AGI is recomputed from the *integrated frames* (the unit's person
amounts that enter AGI, net capital losses limited to $3,000; Social Security and
above-the-line deductions left out), so the numbers check the written records, not the
placement's own bookkeeping. Design weights only (no calibration). Per state and SOI
band ($1m+, $500k-$1m): SOI returns and AGI, the targets (SOI state share x the sample's
national total), weighted units and AGI off / on, and the weighted units whose own
scaffold income alone puts them in the band (placement cannot move them). Summary per
band: mean over states of the squared relative error (units, AGI), worst state, the five
worst states before, and Delaware. Prints markdown tables and writes JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pickle
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DAGSTER_HOME", str(ROOT / "dagster_home"))

from microplex_assets.files import json_safe, write_json_atomic  # noqa: E402
from microplex_assets.seed.donor_integration import (  # noqa: E402
    DonorIntegrationConfig,
    integrate_tax_donor,
)
from microplex_assets.seed.top_tail_placement import (  # noqa: E402
    AGI_INCOME,
    CAPITAL_GAINS,
    CAPITAL_LOSS_LIMIT,
    band_label,
    soi_bands,
    split_income,
    unit_states,
)
from microplex_resources.build_settings import BuildSettings  # noqa: E402

DEFAULTS = {name: field.default for name, field in BuildSettings.model_fields.items()}
FOCUS = "DE"


def load_frames(households: int, cache: Path | None) -> dict[str, Any]:
    """CPS scaffold -> national seed sample, and the synthetic donor (cached if asked)."""
    key = {"households": households, "year": DEFAULTS["year"], "seed": DEFAULTS["seed"],
           "donor_records": DEFAULTS["synthetic_donor_records"]}  # fmt: skip
    if cache is not None and cache.is_file():
        stored = pickle.loads(cache.read_bytes())
        if stored["key"] == key:
            return stored
    from microplex_assets.seed.seed import build_seed
    from microplex_assets.sources.assets import record_uprater
    from microplex_assets.sources.cps_taxcalc import load_taxcalc_cps
    from microplex_assets.sources.synthetic_puf import synthesize_tax_records
    from microplex_resources.policyengine_runtime import policyengine_system

    system = policyengine_system()
    cps = load_taxcalc_cps(year=key["year"], seed=key["seed"], system=system)
    donor = synthesize_tax_records(
        key["year"], records=key["donor_records"], seed=key["seed"], uprate=record_uprater(system)
    )
    seed, _ = build_seed(cps, households=households, seed=key["seed"] + 1)
    frames = {"key": key, "seed": seed, "donor": donor}
    if cache is not None:
        cache.write_bytes(pickle.dumps(frames))
    return frames


def unit_table(frame: Any, states: np.ndarray) -> pd.DataFrame:
    """Per tax unit: state, design weight and AGI from the frame's person amounts."""
    person, unit = frame.tables["person"], frame.tables["tax_unit"]
    columns = [c for c in (*AGI_INCOME, *CAPITAL_GAINS) if c in person.columns]
    summed = person.groupby("tax_unit_id")[columns].sum().reindex(unit["tax_unit_id"]).fillna(0)
    plain, gain = split_income(summed)
    weight = unit["household_id"].map(
        frame.tables["household"].set_index("household_id")["household_weight"]
    )
    return pd.DataFrame(
        {"state": states, "weight": weight.to_numpy(dtype=float),
         "agi": plain + np.maximum(gain, -CAPITAL_LOSS_LIMIT)}
    )  # fmt: skip


def by_state(units: pd.DataFrame, low: float, high: float) -> pd.DataFrame:
    inside = (units["agi"] >= low) & (units["agi"] < high)
    grouped = units.assign(n=units["weight"] * inside, a=units["weight"] * units["agi"] * inside)
    return grouped.groupby("state")[["n", "a"]].sum()


def compare(off: pd.DataFrame, on: pd.DataFrame, own: pd.DataFrame, soi: Any) -> pd.DataFrame:
    """Per state x band: SOI, targets, off / on units and AGI, and units whose own
    (non-imputed) income alone is in the band."""
    rows = []
    for (low, high), group in soi.table.groupby(["low", "high"], sort=False):
        group = group.set_index("state").reindex(sorted(off["state"].unique()))
        before, after, fixed = by_state(off, low, high), by_state(on, low, high), by_state(
            own, low, high)  # fmt: skip
        table = pd.DataFrame(
            {
                "band": band_label(low, high),
                "soi_returns": group["returns"],
                "target_units": group["returns"] / group["returns"].sum() * before["n"].sum(),
                "units_off": before["n"],
                "units_on": after["n"],
                "units_own_income_in_band": fixed["n"],
                "soi_agi_bn": group["agi"] / 1e9,
                "target_agi_bn": group["agi"] / group["agi"].sum() * before["a"].sum() / 1e9,
                "agi_off_bn": before["a"] / 1e9,
                "agi_on_bn": after["a"] / 1e9,
            }
        ).fillna(0.0)
        for what in ("units", "agi"):
            target = table["target_units" if what == "units" else "target_agi_bn"]
            scale = "" if what == "units" else "_bn"
            for run in ("off", "on"):
                table[f"{what}_ratio_{run}"] = table[f"{what}_{run}{scale}"] / target
        rows.append(table.rename_axis("state").reset_index())
    return pd.concat(rows, ignore_index=True)


def summarise(table: pd.DataFrame, runs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for band, group in table.groupby("band", sort=False):
        group = group.set_index("state")
        entry: dict[str, Any] = {}
        for run in ("off", "on"):
            units, agi = group[f"units_ratio_{run}"] - 1, group[f"agi_ratio_{run}"] - 1
            worst = units.abs().idxmax()
            entry[run] = {
                "national_units": float(group[f"units_{run}"].sum()),
                "national_agi_bn": float(group[f"agi_{run}_bn"].sum()),
                "units_msre": float((units**2).mean()),
                "agi_msre": float((agi**2).mean()),
                "worst_state": worst,
                "worst_units_ratio": float(units[worst] + 1),
                "worst_agi_state": agi.abs().idxmax(),
                "worst_agi_ratio": float(agi[agi.abs().idxmax()] + 1),
            }
        worst5 = (group["units_ratio_off"] - 1).abs().sort_values(ascending=False).index[:5]
        keep = ["soi_returns", "target_units", "units_off", "units_on",
                "units_own_income_in_band", "units_ratio_off", "units_ratio_on",
                "agi_ratio_off", "agi_ratio_on"]  # fmt: skip
        entry["five_worst_states_off"] = group.loc[worst5, keep].reset_index().to_dict("records")
        entry[FOCUS] = group.loc[FOCUS, keep].to_dict() if FOCUS in group.index else None
        out[band] = entry
    out["swaps"] = runs["swaps"]
    return out


def markdown(table: pd.DataFrame) -> str:
    columns = ["state", "soi_returns", "target_units", "units_off", "units_on",
               "units_own_income_in_band", "units_ratio_off", "units_ratio_on",
               "soi_agi_bn", "agi_ratio_off", "agi_ratio_on"]  # fmt: skip
    return table[columns].to_markdown(index=False, floatfmt=",.2f")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=DEFAULTS["national_households"])
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument(
        "--floor",
        type=float,
        default=DonorIntegrationConfig.top_tail_floor,
        help="lowest SOI AGI band placed (DonorIntegrationConfig.top_tail_floor)",
    )
    parser.add_argument(
        "--out", type=Path,
        default=ROOT / "benchmarks" / "results" / f"top_tail_placement_{dt.date.today()}.json",
    )  # fmt: skip
    args = parser.parse_args()

    started = time.perf_counter()
    frames = load_frames(args.households, args.cache)
    loaded = time.perf_counter()
    seed, donor = frames["seed"], frames["donor"]
    config = DonorIntegrationConfig(seed=frames["key"]["seed"] + 1, evidence=False,
                                    n_jobs=args.n_jobs, top_tail_floor=args.floor)  # fmt: skip
    off, report_off = integrate_tax_donor(seed, donor, replace(config, top_tail_placement=False))
    on, report = integrate_tax_donor(seed, donor, config)
    integrated = time.perf_counter()

    soi = soi_bands(config.top_tail_floor)
    every_band = soi_bands(-np.inf)  # lower bands: what the partners' records did there
    states = unit_states(seed, soi)
    units_off, units_on = unit_table(off, states), unit_table(on, states)
    # Own income: the scaffold's amounts that are not imputed (what placement cannot move).
    own_only = seed.tables["person"].assign(**{c: 0.0 for c in config.imputed})
    own = unit_table(replace(seed, tables={**seed.tables, "person": own_only}), states)
    table = compare(units_off, units_on, own, every_band)
    summary = summarise(table, {"swaps": report.top_tail.swaps})
    placed = [band_label(low, high) for low, high in
              soi.table[["low", "high"]].drop_duplicates().itertuples(index=False)]  # fmt: skip
    for band in placed:
        print(f"\n### {band}: design weights, placement off vs on\n")
        print(markdown(table[table["band"] == band].sort_values("units_ratio_off")))
    print("\n### summary (bands below the floor: side effects of the partners' records)\n")
    for band in table["band"].unique():
        for run in ("off", "on"):
            s = summary[band][run]
            print(f"{band:>10} {run:>3}: units msre {s['units_msre']:.4f}, AGI msre "
                  f"{s['agi_msre']:.4f}, worst {s['worst_state']} x{s['worst_units_ratio']:.2f}, "
                  f"national units {s['national_units']:,.0f}")  # fmt: skip
    print(f"swaps {report.top_tail.swaps}")
    payload = {
        "what": "stage-4 top-tail placement, national seed, design weights, off vs on",
        "command": " ".join(["python", *sys.argv]),
        "date": str(dt.date.today()),
        "households": args.households,
        "tax_units": len(units_on),
        "inputs": {**frames["key"], "donor": donor.source,
                   "donor_kind": donor.provenance.get("kind"), "soi_file": soi.file},
        "agi_definition": "person amounts in AGI_INCOME + capital gains (net loss limited to "
        "$3,000), recomputed from the integrated frames; no Social Security, no deductions",
        "summary": summary,
        "placement_report": report.top_tail.summary,
        "placed_bands": placed,
        "by_state": table.to_dict("records"),
        "seconds": {"load": round(loaded - started, 1),
                    "integrate_off_and_on": round(integrated - loaded, 1),
                    "impute_with_placement": report.seconds.get("impute"),
                    "impute_without_placement": report_off.seconds.get("impute")},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "n_jobs": args.n_jobs},
    }  # fmt: skip
    write_json_atomic(args.out, json_safe(payload))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
