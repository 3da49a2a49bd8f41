"""Compare local-shard solver settings offline, on the inputs a backfill left in storage.

Each ``local|<state>`` run leaves its run profile, entity bundle, target matrix and
eCPS-method weights in ``dagster_home/storage`` (the IO manager's pickles). This script
re-solves every stored shard with each variant of the shard solver settings and scores
the result with the release gates that do not need the published national bundle
(broad loss, held-out loss, protected families vs the eCPS method), so a change to
``LOCAL_SOLVER`` is measured on all shards in a few minutes without PolicyEngine.

    python benchmarks/local_solver.py [--states CA,WY] [--out PATH]

Needs a backfill first (``make backfill``).
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DAGSTER_HOME", str(ROOT / "dagster_home"))

from microplex_assets.calibration.assets import scorecard_for, solver_config  # noqa: E402
from microplex_assets.calibration.scorecard import (  # noqa: E402
    broad_loss_gate,
    held_out_gate,
    protected_families_gate,
)
from microplex_assets.calibration.weights import calibrate_weights  # noqa: E402
from microplex_assets.files import write_json_atomic  # noqa: E402
from microplex_assets.geography.states import STATE_FIPS  # noqa: E402

VARIANTS: dict[str, dict[str, float]] = {
    "floor_noise": {"train_loss_floor": 1e-3, "init_noise_sd": 0.1},
    "floor_noise_cap": {"train_loss_floor": 1e-3, "init_noise_sd": 0.1, "train_target_cap": 5e-3},
}
SOLVER_KEYS = {"train_loss_floor", "train_target_cap", "init_noise_sd"}
GATES = (broad_loss_gate, held_out_gate, protected_families_gate)


def stored(asset: str, state: str) -> Any:
    """One asset's stored output for local|<state> (None when the run never wrote it)."""
    path = Path(os.environ["DAGSTER_HOME"]) / "storage" / asset / state / "local"
    if not path.exists():
        return None
    with path.open("rb") as handle:
        return pickle.load(handle)


def score_variant(state: str, variant: dict[str, float]) -> dict[str, Any] | None:
    """Re-solve one stored shard with a variant's settings and judge the gates."""
    names = ("run_profile", "entity_bundle", "target_matrix", "ecps_baseline_weights",
             "pinned_baseline_scores")  # fmt: skip
    inputs = {name: stored(name, state) for name in names}
    if any(value is None for value in inputs.values()):
        return None
    profile = inputs["run_profile"]
    calibration = {k: v for k, v in profile["calibration"].items() if k not in SOLVER_KEYS}
    profile = {**profile, "calibration": {**calibration, **variant}}
    run = calibrate_weights(
        inputs["entity_bundle"].household,
        calibration["backend"],
        inputs["target_matrix"],
        solver_config(profile),
    )
    card = scorecard_for(
        profile, inputs["entity_bundle"], inputs["target_matrix"], run,
        inputs["ecps_baseline_weights"], inputs["pinned_baseline_scores"],
    )  # fmt: skip
    gates = {gate.__name__.removesuffix("_gate"): gate(card) for gate in GATES}
    return {
        "state": state,
        "train_loss": card.loss("candidate", card.train),
        "held_out_loss": card.loss("candidate", ~card.train),
        "ecps_held_out_loss": card.loss("ecps_method", ~card.train),
        **{f"{name}_passed": result.passed for name, result in gates.items()},
        "all_passed": all(result.passed for result in gates.values()),
        "seconds": run.seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--states", default=None)
    parser.add_argument(
        "--out", type=Path,
        default=ROOT / "benchmarks" / "results" / f"local_solver_{date.today()}.json",
    )  # fmt: skip
    args = parser.parse_args(argv)
    states = args.states.split(",") if args.states else list(STATE_FIPS)
    rows = []
    for name, variant in VARIANTS.items():
        for state in states:
            row = score_variant(state, variant)
            if row is not None:
                rows.append({"variant": name, **row})
        print(f"{name}: {sum(r['variant'] == name for r in rows)} shards scored", flush=True)
    table = pd.DataFrame(rows)
    if table.empty:
        print("no stored local shards: run make backfill first")
        return 1
    summary = table.groupby("variant").agg(
        shards=("state", "size"),
        all_gates_passed=("all_passed", "sum"),
        protected_passed=("protected_families_passed", "sum"),
        held_out_passed=("held_out_passed", "sum"),
        median_train=("train_loss", "median"),
        median_held_out=("held_out_loss", "median"),
        median_ecps_held_out=("ecps_held_out_loss", "median"),
    )
    print(summary.to_markdown(floatfmt=".4g"))
    failing = table[~table["all_passed"]]
    if len(failing):
        print(failing.to_markdown(index=False, floatfmt=".4g"))
    write_json_atomic(args.out, {"summary": summary.reset_index().to_dict("records"),
                                 "shards": table.to_dict("records")})  # fmt: skip
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
