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
import json
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
from microplex_assets.calibration.consistency import (  # noqa: E402
    add_consistency_targets,
    is_consistency,
    state_share_weights,
)
from microplex_assets.calibration.fixed_records import fixed_household_ids  # noqa: E402
from microplex_assets.calibration.loss import target_loss  # noqa: E402
from microplex_assets.calibration.published_scores import (  # noqa: E402
    NATIONAL_CONTRIBUTIONS,
    load_published_bundle,
)
from microplex_assets.calibration.scorecard import (  # noqa: E402
    ECPS_METHOD,
    broad_loss_gate,
    held_out_gate,
    protected_families_gate,
)
from microplex_assets.calibration.solver import ecps_method_config  # noqa: E402
from microplex_assets.calibration.weights import (  # noqa: E402
    calibrate_weights,
    design_weights,
    solve_weights,
)
from microplex_assets.files import write_json_atomic  # noqa: E402
from microplex_assets.partitions import STATE_FIPS  # noqa: E402
from microplex_assets.publication.derived import state_household_ids  # noqa: E402

CAPPED = {"train_loss_floor": 1e-3, "init_noise_sd": 0.1, "train_target_cap": 5e-3}
VARIANTS: dict[str, dict[str, float]] = {
    "floor_noise": {"train_loss_floor": 1e-3, "init_noise_sd": 0.1},
    "floor_noise_cap": CAPPED,
    "cap_consistency": {**CAPPED, "consistency": 1.0},
    "cap_consistency_tol10": {**CAPPED, "consistency": 1.0, "train_tolerance": 0.1},
}
SOLVER_KEYS = {"train_loss_floor", "train_target_cap", "train_tolerance", "init_noise_sd"}
ARTIFACTS = Path(os.environ["DAGSTER_HOME"]) / "artifacts"
GATES = (broad_loss_gate, held_out_gate, protected_families_gate)


def stored(asset: str, state: str | None) -> Any:
    """One asset's stored output for local|<state> (None when the run never wrote it)."""
    folder = Path(os.environ["DAGSTER_HOME"]) / "storage" / asset
    path = folder if state is None else folder / state / "local"
    if not path.exists():
        return None
    with path.open("rb") as handle:
        return pickle.load(handle)


def with_consistency(matrix: Any, state: str, year: int) -> Any:
    """The stored shard matrix plus its national consistency targets (shares of
    national|US's published weights on the state's households)."""
    national = load_published_bundle(ARTIFACTS / "national" / "US", year, "national|US")
    shard = load_published_bundle(ARTIFACTS / "local" / state, year, f"local|{state}")
    contributions = shard.matrix(NATIONAL_CONTRIBUTIONS)
    weights = state_share_weights(
        national.weights, state_household_ids(national.h5_path, year, state)
    )
    names = pd.Index(contributions.targets["name"])
    shares = national.matrix().estimates_by_name(weights, names)
    return add_consistency_targets(
        matrix, contributions, stored("calibration_targets", None), shares,
        {"agency": "microplex", "table": "national|US state share", "year": year},
    )  # fmt: skip


def shard_national_estimates(state: str, year: int, weights: pd.Series) -> pd.Series:
    """The shard's contribution to every national target under ``weights``."""
    shard = load_published_bundle(ARTIFACTS / "local" / state, year, f"local|{state}")
    contributions = shard.matrix(NATIONAL_CONTRIBUTIONS)
    names = pd.Index(contributions.targets["name"])
    return contributions.estimates_by_name(weights, names)


def fan_in_national_loss(rows: list[dict[str, Any]], year: int) -> dict[str, float]:
    """Per variant: the national loss of the shards' national contributions summed, on
    national|US's kept national targets, next to national|US's own."""
    national = load_published_bundle(ARTIFACTS / "national" / "US", year, "national|US")
    targets = national.matrix().targets
    targets = targets[targets["is_national"]].reset_index(drop=True)
    names = pd.Index(targets["name"])
    values = targets["value"].to_numpy(float)
    flags = targets["is_national"].to_numpy(bool)
    losses = {
        "national|US": target_loss(
            national.matrix().estimates_by_name(national.weights, names).to_numpy(), values, flags
        )
    }
    for variant in dict.fromkeys(r["variant"] for r in rows):
        parts = [r["national_estimates"] for r in rows if r["variant"] == variant]
        summed = sum(p.reindex(names, fill_value=0.0) for p in parts)
        losses[f"{variant} ({len(parts)} shards)"] = target_loss(summed.to_numpy(), values, flags)
    return losses


def score_variant(state: str, variant: dict[str, float]) -> dict[str, Any] | None:
    """Re-solve one stored shard with a variant's settings and judge the gates."""
    names = ("run_profile", "entity_bundle", "target_matrix", "ecps_baseline_weights",
             "pinned_baseline_scores")  # fmt: skip
    inputs = {name: stored(name, state) for name in names}
    if any(value is None for value in inputs.values()):
        return None
    profile = inputs["run_profile"]
    calibration = {k: v for k, v in profile["calibration"].items() if k not in SOLVER_KEYS}
    solver = {k: v for k, v in variant.items() if k in SOLVER_KEYS}
    profile = {**profile, "calibration": {**calibration, **solver}}
    matrix, baseline = inputs["target_matrix"], inputs["ecps_baseline_weights"]
    if variant.get("consistency"):
        matrix = with_consistency(matrix, state, int(profile["year"]))
        baseline = solve_weights(
            matrix, design_weights(inputs["entity_bundle"].household),
            ecps_method_config(seed=calibration["seed"]), ECPS_METHOD, "eCPS method",
            fixed_ids=fixed_household_ids(inputs["entity_bundle"].household),
        )  # fmt: skip
    inputs = {**inputs, "target_matrix": matrix, "ecps_baseline_weights": baseline}
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
    national = shard_national_estimates(state, int(profile["year"]), run.weights)
    state_rows = ~is_consistency(card.targets["name"])
    consistency = ~state_rows
    return {
        "state": state,
        "consistency_targets": int(consistency.sum()),
        "consistency_loss": card.loss("candidate", consistency) if consistency.any() else None,
        "state_train_loss": card.loss("candidate", card.train & state_rows),
        "train_loss": card.loss("candidate", card.train),
        "held_out_loss": card.loss("candidate", ~card.train),
        "ecps_held_out_loss": card.loss("ecps_method", ~card.train),
        **{f"{name}_passed": result.passed for name, result in gates.items()},
        "all_passed": all(result.passed for result in gates.values()),
        "seconds": run.seconds,
        "national_estimates": national,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--states", default=None)
    parser.add_argument("--variants", default=None, help=f"comma list of {list(VARIANTS)}")
    parser.add_argument(
        "--out", type=Path,
        default=ROOT / "benchmarks" / "results" / f"local_solver_{date.today()}.json",
    )  # fmt: skip
    args = parser.parse_args(argv)
    states = args.states.split(",") if args.states else list(STATE_FIPS)
    rows = []
    chosen = args.variants.split(",") if args.variants else list(VARIANTS)
    for name, variant in ((n, VARIANTS[n]) for n in chosen):
        for state in states:
            row = score_variant(state, variant)
            if row is not None:
                rows.append({"variant": name, **row})
        print(f"{name}: {sum(r['variant'] == name for r in rows)} shards scored", flush=True)
    fan_in = fan_in_national_loss(rows, 2024) if rows else {}
    rows = [{k: v for k, v in r.items() if k != "national_estimates"} for r in rows]
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
        median_state_train=("state_train_loss", "median"),
        median_consistency=("consistency_loss", "median"),
        median_held_out=("held_out_loss", "median"),
        median_ecps_held_out=("ecps_held_out_loss", "median"),
    )
    print(summary.to_markdown(floatfmt=".4g"))
    failing = table[~table["all_passed"]]
    if len(failing):
        print(failing.to_markdown(index=False, floatfmt=".4g"))
    print("fan-in national loss (shards' national contributions summed):")
    print(json.dumps(fan_in, indent=2))
    write_json_atomic(args.out, {"summary": summary.reset_index().to_dict("records"),
                                 "fan_in_national_loss": fan_in,
                                 "shards": table.to_dict("records")})  # fmt: skip
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
