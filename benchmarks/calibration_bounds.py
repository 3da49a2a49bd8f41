"""Can healthy weights meet issue 13's fit goals on this matrix at all? Certified bounds.

    python benchmarks/calibration_bounds.py [--work-dir DIR] [--out PATH] [--max-ratio 50]
                                            [--min-ess-share 0.25] [--skip-within]

On the matrix and split a national build saved (``calibration_split.load_problem``; spine
fixed at its weights) this prints, next to the build's own weights and the eCPS method's:

- the least train loss any free weights within the gate's ratio limit (0 <= w <= 50 w0,
  w0 the design weights the gate divides by) reach, and the same with Kish ESS at least 25%
  of the free households as well: Clarabel's optimum and the lower bound certified from it
  (``calibration.reach``). A certified bound above the eCPS method's train loss proves the
  goal "train no worse than the eCPS method's" unreachable by any weighting the
  ``weights_healthy`` gate accepts, on these records;
- with ``--frontier``, the ESS floor's case by a Lagrangian sweep instead
  (``reach.healthy_frontier``): points on the least-loss / ESS frontier, each reached, and
  the healthy one with the least loss, scored like the weights above;
- the largest share of kept targets within 10% found under the same constraints
  (reweighted L1, a share reached, not a ceiling), against the goal's 90%.

Writes JSON to ``benchmarks/results/calibration_bounds_<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from calibration_split import (  # noqa: E402
    DEFAULT_WORK_DIR,
    build_weights,
    evaluate,
    fit_solver,
    input_files,
    load_problem,
)

from microplex_assets.calibration.reach import (  # noqa: E402
    healthy_frontier,
    least_train_loss,
    train_quadratic,
    within_band_reached,
)
from microplex_assets.calibration.solver_config import ecps_method_config  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--max-ratio", type=float, default=50.0)
    parser.add_argument("--min-ess-share", type=float, default=0.25)
    parser.add_argument("--skip-within", action="store_true", help="no within-10% search")
    parser.add_argument("--skip-train", action="store_true", help="no least-train-loss solves")
    parser.add_argument("--within-rounds", type=int, default=3, help="reweighted-L1 rounds")
    parser.add_argument("--healthy-only", action="store_true", help="only the ESS-floor runs")
    parser.add_argument("--time-limit", type=float, default=1_800.0, help="seconds per solve")
    parser.add_argument(
        "--frontier",
        action="store_true",
        help="the ESS floor by a Lagrangian sweep (L-BFGS-B) instead of the interior point",
    )
    parser.add_argument("--bisections", type=int, default=4, help="frontier bisection steps")
    parser.add_argument("--verbose", action="store_true", help="Clarabel's iteration log")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    problem, spine_note = load_problem(args.work_dir)
    print(f"spine: {spine_note}", flush=True)
    train = problem.mask("train")
    quadratic = train_quadratic(
        problem.matrix[train], problem.values[train], problem.is_national[train],
        problem.design, problem.fixed,
    )  # fmt: skip
    free = ~problem.fixed
    rows: list[dict[str, Any]] = []

    def scored(label: str, weights: np.ndarray, **extra: Any) -> None:
        record = evaluate(problem, weights)
        ratios = weights[free] / problem.design[free]
        rows.append({"label": label, **record, "max_ratio_raw": float(ratios.max()), **extra})
        print(
            f"{label}: train {record['train_loss']:.5f} (quadratic {quadratic.loss(ratios):.5f})"
            f", within 10% {record['within_10pct']:.1%}, ESS {record['ess_share']:.1%}, "
            f"max ratio {ratios.max():.1f}",
            flush=True,
        )

    scored("design weights", problem.design.copy())
    published = build_weights(args.work_dir, problem.household_ids)
    if published is not None:
        scored("the build's weights", published)
    ecps, info = fit_solver(problem, ecps_method_config(), with_validation=False)
    scored("eCPS method (train only)", ecps, seconds=info["seconds"])
    ecps_train = rows[-1]["train_loss"]

    floors = (args.min_ess_share,) if args.healthy_only else (None, args.min_ess_share)
    bounds: list[dict[str, Any]] = []
    frontier: dict[str, Any] = {}
    if args.frontier and not args.skip_train:
        label = f"ratio <= {args.max_ratio:g}, ESS >= {args.min_ess_share:.0%}"
        print(f"least train loss, {label}, Lagrangian sweep ...", flush=True)
        frontier = healthy_frontier(
            quadratic, args.max_ratio, args.min_ess_share, bisections=args.bisections
        )
        ratios = frontier.pop("ratios")
        frontier = {"constraints": label, **frontier, "ecps_train_loss": ecps_train}
        if ratios is not None:
            scored(f"least train loss found, {label}", problem.merge(problem.design[free] * ratios))
        floors = tuple(f for f in floors if f is None)  # the sweep replaces the cone solve
    for floor in floors if not args.skip_train else ():
        label = f"ratio <= {args.max_ratio:g}" + (f", ESS >= {floor:.0%}" if floor else "")
        print(f"least train loss, {label} ...", flush=True)
        result = least_train_loss(
            quadratic, args.max_ratio, floor, time_limit=args.time_limit, verbose=args.verbose
        )
        ratios = result.pop("ratios")
        bounds.append({"constraints": label, **result, "ecps_train_loss": ecps_train})
        print(
            f"  {result['status']} in {result['seconds']:.0f} s: loss at the optimum "
            f"{result['loss_at_point']:.5f}, certified lower bound {result['lower_bound']:.5f} "
            f"(eCPS method {ecps_train:.5f}; bound / eCPS {result['lower_bound'] / ecps_train:.2f})"
            f", ESS {result['ess_share']:.1%}, max ratio {result['max_ratio']:.1f}",
            flush=True,
        )
        scored(f"least train loss, {label}", problem.merge(problem.design[free] * ratios))

    within: list[dict[str, Any]] = []
    if not args.skip_within:
        for floor in floors:
            label = f"ratio <= {args.max_ratio:g}" + (f", ESS >= {floor:.0%}" if floor else "")
            print(f"most targets within 10%, {label} ...", flush=True)
            started = time.perf_counter()
            result = within_band_reached(
                problem.matrix, problem.values, problem.design, problem.fixed,
                args.max_ratio, floor, rounds=args.within_rounds, time_limit=args.time_limit,
                verbose=args.verbose,
            )  # fmt: skip
            ratios = result.pop("ratios")
            result.pop("within")
            within.append({"constraints": label, **result})
            print(
                f"  best {result['within_share']:.1%} of kept targets within 10% "
                f"({time.perf_counter() - started:.0f} s; rounds "
                + ", ".join(f"{r['within_share']:.1%}" for r in result["rounds"])
                + ")",
                flush=True,
            )
            scored(f"most within 10% found, {label}", problem.merge(problem.design[free] * ratios))

    out = args.out or ROOT / "benchmarks" / "results" / (
        f"calibration_bounds_{dt.date.today().isoformat()}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "work_dir": str(args.work_dir),
                "inputs": input_files(args.work_dir),
                "spine": spine_note,
                "limits": {"max_ratio": args.max_ratio, "min_ess_share": args.min_ess_share},
                "weights": rows,
                "least_train_loss": bounds,
                "healthy_frontier": frontier,
                "within_10pct": within,
            },
            indent=2,
            default=float,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
