"""local-rich as one joint fit, measured on the matrices a backfill left (issue 17, item 4).

    python benchmarks/joint_local.py [--artifacts DIR] [--national-work DIR] [--states CA,TX]
                                     [--year 2024] [--out PATH]

Reads each ``local|<state>`` shard's latest work folder (``_work/local/<state>/latest``:
``target_matrix*``, ``national_contributions*`` and the calibrated H5's weights) and
national|US's (its kept targets, split and weights), stacks them (``joint_local``), fits
the joint weights and reports, next to each other:

- national-target loss (train / validation / test) of the shards concatenated (today's
  local|US), of the joint fit and of national|US itself (the goal: joint within 1.5x);
- per state, the held-in (train) and held-out loss of the shard, of the joint fit and of
  the ``national|<state>`` fallback (national|US's weights on the same state targets).

No PolicyEngine: every number comes from saved matrices. Prints tables, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from microplex_assets.calibration.joint_local import (  # noqa: E402
    JOINT_SOLVER,
    ShardMatrices,
    fit_joint,
    joint_problem,
    joint_scores,
)
from microplex_assets.calibration.loss import target_loss  # noqa: E402
from microplex_assets.calibration.matrix import load_saved_matrix  # noqa: E402
from microplex_assets.calibration.published_scores import (  # noqa: E402
    NATIONAL_CONTRIBUTIONS,
    read_h5_weights,
)
from microplex_assets.files import dataset_filename  # noqa: E402
from microplex_assets.geography.states import STATE_FIPS  # noqa: E402


def load_shard(folder: Path, state: str, year: int) -> ShardMatrices:
    return ShardMatrices(
        state,
        load_saved_matrix(folder),
        load_saved_matrix(folder, NATIONAL_CONTRIBUTIONS),
        read_h5_weights(folder / dataset_filename(year), year),
    )


def fallback_losses(national_folder: Path, year: int, shards: list[ShardMatrices]) -> pd.DataFrame:
    """national|US's weights on each state's held-in (train) targets: the fallback's loss on
    exactly the rows the shard and the joint fit are judged on."""
    saved = load_saved_matrix(national_folder)
    weights = read_h5_weights(national_folder / dataset_filename(year), year)
    estimates = pd.Series(
        np.asarray(saved.matrix @ weights.reindex(saved.household_ids)).ravel(),
        index=saved.targets["name"],
    )
    rows = []
    for shard in shards:
        own = shard.own.targets
        train = own[own["train"].astype(bool)]
        fallback = estimates.reindex(train["name"]).fillna(0.0).to_numpy()
        values = train["value"].to_numpy(dtype=float)
        loss = target_loss(fallback, values, np.zeros(len(values)))
        rows.append({"block": shard.state, "fallback_train": loss})
    return pd.DataFrame(rows)


def national_us_losses(national_folder: Path, year: int) -> dict[str, float]:
    """national|US's own loss on its national-geography targets, per split."""
    saved = load_saved_matrix(national_folder)
    weights = read_h5_weights(national_folder / dataset_filename(year), year)
    estimates = np.asarray(saved.matrix @ weights.reindex(saved.household_ids)).ravel()
    targets = saved.targets
    out = {}
    for split in ("train", "validation", "test"):
        rows = (targets["geography"].eq("US") & targets["split"].eq(split)).to_numpy()
        out[split] = target_loss(
            estimates[rows], targets.loc[rows, "value"].to_numpy(dtype=float), np.ones(rows.sum())
        )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, default=ROOT / "dagster_home" / "artifacts")
    parser.add_argument("--states", default=",".join(STATE_FIPS))
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument(
        "--national-work", type=Path, default=None, help="national|US work folder (its latest)"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    work = args.artifacts / "_work"
    national_folder = args.national_work or work / "national" / "US" / "latest"
    states = [s for s in args.states.split(",") if s]
    started = time.perf_counter()
    shards = [load_shard(work / "local" / s / "latest", s, args.year) for s in states]
    national = load_saved_matrix(national_folder).targets
    problem = joint_problem(shards, national)
    built = time.perf_counter()
    print(f"joint matrix {problem.matrix.shape}, {problem.matrix.nnz:,} nonzeros", flush=True)
    weights = fit_joint(problem, JOINT_SOLVER)
    fitted = time.perf_counter()
    scores = joint_scores(problem, weights)
    fallback = fallback_losses(national_folder, args.year, shards)
    scores = scores.merge(fallback, on="block", how="left")
    reference = national_us_losses(national_folder, args.year)
    states_only = scores[scores["block"] != "national"]
    summary = {
        "states": len(states),
        "households": int(problem.matrix.shape[1]),
        "national_us": reference,
        "national_shards": scores.iloc[0][["shards_train", "shards_validation", "shards_test"]]
        .astype(float)
        .to_dict(),
        "national_joint": scores.iloc[0][["joint_train", "joint_validation", "joint_test"]]
        .astype(float)
        .to_dict(),
        "joint_over_national_us_train": float(scores.iloc[0]["joint_train"] / reference["train"]),
        "states_joint_beating_fallback": int(
            (states_only["joint_train"] < states_only["fallback_train"]).sum()
        ),
        "median_state": states_only[["shards_train", "joint_train", "fallback_train"]]
        .median()
        .to_dict(),
        "worst_state_joint": states_only.sort_values("joint_train").iloc[-1].to_dict(),
        "seconds": {"load": round(built - started, 1), "fit": round(fitted - built, 1)},
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    print(scores.to_markdown(index=False, floatfmt=".4g"))
    print(json.dumps(summary, indent=2, default=str))
    out = args.out or ROOT / "benchmarks" / "results" / f"joint_local_{date.today()}.json"
    out.write_text(
        json.dumps({"summary": summary, "scores": scores.to_dict("records")}, default=str)
    )
    print(f"written {out}")


if __name__ == "__main__":
    main()
