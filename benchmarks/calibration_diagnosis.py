"""Where the national solver's train loss and its misses beyond 10% come from.

    python benchmarks/calibration_diagnosis.py [--work-dir DIR] [--out PATH] [--skip-lp]

On the matrix a national build saved (``calibration_split.load_problem``: train /
validation / test by whole groups, spine fixed) this fits the build's default solver
(``build_config``, the path ``weights.solve_weights`` takes: free design weights scaled to
the household count, family-balanced fit weights, train fitted, validation choosing the
epoch) and then asks, per target and per family:

- how much of the train loss it carries and how many free households support it;
- whether it is reachable *alone* with every weight inside [w0 / 50, 50 w0]: the row's
  smallest and largest estimate over that box (an exact bound, no solver involved);
- the lowest train loss any weighting in the box can reach together (a convex
  box-constrained least squares, ``scipy.optimize.lsq_linear``; no KL, no ESS floor),
  and the same with w >= 0 only (no ratio bound): what is left there is conflict between
  targets, not the solver;
- a share of kept targets that can be within 10% at once in the box (and unbounded): a
  linear programme minimising the total relative excess beyond the 10% band (the L1
  relaxation of the max-feasible-subsystem problem; targets with zero excess are hit), so
  the best found, not a proven maximum; a positive optimum proves not all can be hit;
- conflicts: national targets whose row is the sum of a state group's rows while the
  values disagree, and identical rows with different values (two sources of one number).

Writes the per-family summary and the worst targets as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from calibration_split import DEFAULT_WORK_DIR, load_problem  # noqa: E402
from diagnosis_fit import (  # noqa: E402
    build_config,
    fit_build,
    fit_build_to_limits,
    scaled_design,
    train_family_losses,
)
from diagnosis_reach import (  # noqa: E402
    RATIO,
    WITHIN,
    box_range,
    family_table,
    l2_floor,
    per_target,
    within_ceiling,
)
from diagnosis_score import (  # noqa: E402
    failing_families,
    family_losses,
    release_gates,
    score,
)
from target_conflicts import conflicts  # noqa: E402

from microplex_assets.calibration.loss import count_normalisation  # noqa: E402
from microplex_assets.calibration.solver_config import ecps_method_config  # noqa: E402

__all__ = [  # re-exported: the names this script defined before it was split
    "RATIO",
    "WITHIN",
    "box_range",
    "build_config",
    "failing_families",
    "family_losses",
    "family_table",
    "fit_build",
    "fit_build_to_limits",
    "l2_floor",
    "per_target",
    "release_gates",
    "scaled_design",
    "score",
    "train_family_losses",
    "within_ceiling",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--skip-lp", action="store_true")
    parser.add_argument(
        "--ratios",
        nargs="*",
        type=float,
        default=[RATIO, 0.0],
        help="boxes for the L2 floor and the LP (0 = unbounded)",
    )
    parser.add_argument("--skip-l2", action="store_true", help="no L2 floor (slow at 40k)")
    parser.add_argument("--weights", type=Path, default=None, help="default fit's weights (.npy)")
    args = parser.parse_args()
    problem, note = load_problem(args.work_dir)
    print(note, problem.matrix.shape, "nnz", problem.matrix.nnz, flush=True)
    w0 = scaled_design(problem)
    if args.weights is not None:
        weights, seconds = np.load(args.weights), float("nan")
    else:
        config = build_config()
        if config.family_limit_rounds > 0:  # the refits need the eCPS method's limits
            ecps, _ = fit_build(problem, ecps_method_config(), with_validation=False)
            weights, result, _ = fit_build_to_limits(problem, config, ecps)
        else:
            weights, result = fit_build(problem, config)
        seconds = result.seconds
    print(f"default fit {seconds:.0f}s", flush=True)
    frame = per_target(problem, weights, w0)
    train = problem.mask("train")
    total = frame.loc[train, "train_loss_contribution"].sum()
    summary: dict[str, Any] = {"default": score(problem, weights, {})}
    summary["default"]["seconds"] = seconds
    reference = {"default": frame["within_10pct"].to_numpy()}
    floors = {}
    ratios = [r or None for r in args.ratios]
    for ratio in [] if args.skip_l2 else ratios:
        floor = l2_floor(problem, w0, ratio)
        name = f"l2_box{ratio:g}" if ratio else "l2_unbounded"
        floors[name] = {k: v for k, v in floor.items() if k != "weights"}
        floors[name].update(score(problem, floor["weights"], {}))
        est = problem.matrix @ floor["weights"]
        reference[name] = np.abs(est - problem.values) <= WITHIN * np.abs(problem.values)
        err = ((est - problem.values + 1) / (problem.values + 1)) ** 2
        norm = np.zeros(len(frame))
        norm[train] = count_normalisation(problem.is_national[train]) / train.sum()
        frame[f"{name}_contribution"] = norm * err
        print(name, {k: floors[name][k] for k in ("train_loss", "within_10pct", "seconds")})
    summary["l2_floors"] = floors
    if not args.skip_lp:
        kept = np.ones(len(frame), dtype=bool)
        for ratio in ratios:
            ceiling = within_ceiling(problem, w0, ratio, kept)
            name = f"lp_box{ratio:g}" if ratio else "lp_unbounded"
            if "hit" in ceiling:
                reference[name] = ceiling["hit"]
                summary[name] = {
                    k: v for k, v in ceiling.items() if k not in ("weights", "hit")
                } | score(problem, ceiling["weights"], {})
            else:
                summary[name] = ceiling
            print(name, summary[name].get("within_10pct_ceiling"), ceiling["seconds"], flush=True)
    table = family_table(frame, reference)
    # how much of the default fit's train loss and misses the box cannot avoid
    unreachable = ~reference.get("lp_box50", reference.get("l2_box50", np.ones(len(frame), bool)))
    missed = ~frame["within_10pct"].to_numpy()
    summary["attribution"] = {
        "train_loss": float(total),
        "train_loss_alone_unreachable": float(
            frame.loc[train & frame["alone_unreachable"], "train_loss_contribution"].sum()
        ),
        **{f"train_loss_floor_{k}": v["train_loss"] for k, v in floors.items()},
        "train_loss_on_box_missed_targets": float(
            frame.loc[train & unreachable, "train_loss_contribution"].sum()
        ),
        "kept_targets": int(len(frame)),
        "missed_10pct": int(missed.sum()),
        "missed_alone_unreachable": int((missed & frame["alone_unreachable"]).sum()),
        "missed_also_missed_by_box_ceiling": int((missed & unreachable).sum()),
        "missed_support_below_20": int((missed & (frame["support"] < 20)).sum()),
    }
    summary["families"] = table.reset_index().to_dict(orient="records")
    summary["conflicts"] = conflicts(problem)
    worst = frame[train].sort_values("train_loss_contribution", ascending=False).head(40)
    summary["worst_train_targets"] = worst.to_dict(orient="records")
    pd.set_option("display.width", 250)
    print(table.to_string(float_format=lambda x: f"{x:.4g}"))
    print(json.dumps(summary["attribution"], indent=1))
    for c in summary["conflicts"]:
        print(c)
    print(worst[["name", "value", "rel_error", "train_loss_contribution", "support"]].head(25))
    out = args.out or ROOT / f"benchmarks/results/calibration_diagnosis_{dt.date.today()}.json"
    summary["work_dir"] = str(args.work_dir)
    summary["matrix_shape"] = list(problem.matrix.shape)
    out.write_text(json.dumps(summary, indent=1, default=_json))
    frame.to_csv(out.with_suffix(".targets.csv"), index=False)
    print("wrote", out)


def _json(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


if __name__ == "__main__":
    main()
