"""What one suite slice pays, on the same households: the baseline cold and warm, the
capital-gains indexation (structural), and a parametric reform on a system built once
against ``Microsimulation(reform=...)``. Plain wall-clock timing (no profiler: cProfile
added 45% on a 300-household run).

    python benchmarks/slice_cost.py [--bundle DIR] [--households 1000]

``--bundle`` is a national|US run bundle (default: the current one); the households are
drawn at random (seed 0) from those holding long-term capital-gains lots.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DAGSTER_HOME", str(ROOT / "dagster_home"))

OUTPUTS = ("household_net_income", "income_tax", "ssi", "snap", "tanf", "person_in_poverty")
YEAR = 2024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bundle", type=Path, default=ROOT / "dagster_home/artifacts/national/US/current"
    )
    parser.add_argument("--households", type=int, default=1_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/slice_cost.h5"))
    args = parser.parse_args(argv)

    from microplex_assets.entities.h5_combine import restrict_h5
    from microplex_assets.validation.microsim.indexation import (
        INDEXED_VARIABLE,
        apply_indexation,
        policyengine_cpi_u,
    )
    from microplex_assets.validation.microsim.manifest import load_manifest
    from microplex_assets.validation.microsim.reforms import parametric_reform
    from microplex_resources.policyengine_runtime import (
        policyengine_reform_system,
        policyengine_system,
    )

    system = policyengine_system()
    from policyengine_us import Microsimulation

    lots = pd.read_parquet(args.bundle / f"capital_gains_lots_{YEAR}.parquet")
    with h5py.File(args.bundle / f"policyengine_us_{YEAR}.h5") as f:
        person_ids = f["person_id"][str(YEAR)][()]
        person_households = f["person_household_id"][str(YEAR)][()]
    holders = lots.loc[lots["term"] == "long", "person_id"].unique()
    households = np.unique(person_households[np.isin(person_ids, holders)])
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(households, args.households, replace=False))
    restrict_h5(
        args.bundle / f"policyengine_us_{YEAR}.h5",
        args.work,
        pick,
        YEAR,
        entity_of=lambda name: system.variables[name].entity.key,
    )
    cpi = policyengine_cpi_u(system)
    seconds: dict[str, float] = {}

    def run(label: str, make: Callable[[], Any], structural: bool = False) -> None:
        started = time.perf_counter()
        simulation = make()
        if structural:
            gains = np.asarray(simulation.calculate(INDEXED_VARIABLE, YEAR), dtype=float)
            ids = np.asarray(simulation.calculate("person_id", YEAR)).astype(np.int64)
            simulation.set_input(INDEXED_VARIABLE, YEAR, apply_indexation(gains, ids, lots, cpi))
        for variable in OUTPUTS:
            simulation.calculate(variable, YEAR)
        seconds[label] = round(time.perf_counter() - started, 1)
        print(f"{label}: {args.households:,} households in {seconds[label]} s", flush=True)

    dataset = str(args.work)
    run("baseline, cold caches", lambda: Microsimulation(dataset=dataset))
    run("baseline, warm caches", lambda: Microsimulation(dataset=dataset))
    run("capital-gains indexation", lambda: Microsimulation(dataset=dataset), structural=True)
    reform = next(r for r in load_manifest().reforms if r.id == "standard_deduction_plus_2000")
    started = time.perf_counter()
    reformed = policyengine_reform_system(parametric_reform(reform, system))
    seconds["reformed system build"] = round(time.perf_counter() - started, 1)
    print(f"reformed system built in {seconds['reformed system build']} s", flush=True)
    for turn in ("first", "second"):
        run(
            f"standard deduction, system built once ({turn} use)",
            lambda: Microsimulation(dataset=dataset, tax_benefit_system=reformed),
        )
    run(
        "standard deduction, reform= (system rebuilt)",
        lambda: Microsimulation(dataset=dataset, reform=parametric_reform(reform, system)),
    )
    print(json.dumps(seconds, indent=1))
    args.work.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
