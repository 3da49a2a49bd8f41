"""Calibration judged on a three-way split by whole target groups: train, validation, test.

    python benchmarks/calibration_split.py [--work-dir DIR] [--epochs N] [--only NAME ...]
                                           [--gate-seeds SEED ...] [--out PATH]

Reads the matrix a national build saved (``--work-dir``, default the national US work
folder: ``target_matrix.npz``, ``..._targets.parquet``, ``..._household_ids.npy``,
``..._design_weights.npy``; the build's ``policyengine_us_2024.h5`` for a reference row)
and splits its kept targets by whole groups:

- test: whole target *families* that no choice ever saw and that the synthetic PUF donor
  was not built from (see ``donor_families``). Never passed to a solver; scored once,
  after every choice is made.
- validation: whole groups that choose the returned epoch and (``recommend``) the
  settings; the current build's held-out groups, already spent on earlier choices.
- train: everything else, the only targets any solver fits.

Spine households (the fixed top-tail records, see ``fixed_records``) keep their design
weight 1; every solver fits the free households to the targets minus the spine's
contribution, and every loss is ``loss.target_loss`` on the full targets with the full
weight vector (spine included).

Methods: the design weights; the eCPS method (``ecps_method_config``, train only); our
solver (``SolverConfig()``, train fitted, epoch chosen on validation by its own rule) with
and without hard-concrete gates and with ``log_weight_penalty``; and ``fit_bounded``, a
solver written here with the weight ratio w / w0 kept inside [1 / 50, 50] by a smooth
bound on the log-ratio, optional log-ratio / KL / chi-square penalties towards the design
weights and optional gates, its epoch chosen post hoc (``SELECTIONS``: by default the
solver's rule, lowest validation loss within 1% of the best train loss; also pure
validation and an ESS floor). ``--gate-seeds`` reruns the seed-dependent methods to see
whether the gates' effect is larger than seed noise.

Reports per method: train / validation / test loss, the same on targets with at least
``SUPPORT_FLOOR`` supporting households (diagnostic), Kish ESS of the free households and
its share of them, max final / design ratio, top-1% weight share, share of targets within
10% relative error (all kept and train), seconds, the done-criteria met, and per held-out
group the mean squared relative error. Prints markdown tables and writes JSON to
``benchmarks/results/calibration_split_<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from split_fits import (  # noqa: E402
    SELECTIONS,
    TRAIN_TOLERANCE,
    BoundedConfig,
    bound,
    fit_bounded,
    fit_microcalibrate,
    fit_solver,
    residual_rows,
    select_epoch,
)
from split_problem import (  # noqa: E402
    DEFAULT_WORK_DIR,
    DONOR_TABLE_PATTERN,
    ESS_FLOOR,
    MAX_RATIO,
    SPLITS,
    SUPPORT_FLOOR,
    TEST_FAMILIES,
    VALIDATION_GROUPS,
    WITHIN,
    SplitProblem,
    build_weights,
    choose_split,
    donor_families,
    input_files,
    load_problem,
    spine_columns,
    split_summary,
)
from split_report import (  # noqa: E402
    GOAL_NAMES,
    goals_markdown,
    markdown,
    print_split,
)
from split_scoring import (  # noqa: E402
    evaluate,
    goals,
    kish_ess,
)
from split_variants import (  # noqa: E402
    GATES,
    SEED_CHECKED,
    Variant,
    recommend,
    reseeded,
    run_variant,
    variants,
)

__all__ = [  # re-exported: the names this script defined before it was split
    "BoundedConfig",
    "DEFAULT_WORK_DIR",
    "DONOR_TABLE_PATTERN",
    "ESS_FLOOR",
    "GATES",
    "GOAL_NAMES",
    "MAX_RATIO",
    "SEED_CHECKED",
    "SELECTIONS",
    "SPLITS",
    "SUPPORT_FLOOR",
    "SplitProblem",
    "TEST_FAMILIES",
    "TRAIN_TOLERANCE",
    "VALIDATION_GROUPS",
    "Variant",
    "WITHIN",
    "bound",
    "build_weights",
    "choose_split",
    "donor_families",
    "evaluate",
    "fit_bounded",
    "fit_microcalibrate",
    "fit_solver",
    "goals",
    "goals_markdown",
    "input_files",
    "kish_ess",
    "load_problem",
    "markdown",
    "print_split",
    "recommend",
    "reseeded",
    "residual_rows",
    "run_variant",
    "select_epoch",
    "spine_columns",
    "split_summary",
    "variants",
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--epochs", type=int, default=4_000, help="epochs of our solvers")
    parser.add_argument("--only", nargs="*", help="run only these variant names")
    parser.add_argument(
        "--gate-seeds",
        type=int,
        nargs="*",
        default=[],
        help=f"rerun {', '.join(SEED_CHECKED)} with these seeds (is the gates' effect noise?)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    problem, spine_note = load_problem(args.work_dir)
    summary = split_summary(problem)
    print_split(summary, spine_note)

    rows: list[dict[str, Any]] = [
        {"method": "design", "label": "design weights (not calibrated)", "seconds": 0.0,
         **evaluate(problem, problem.design)}
    ]  # fmt: skip
    published = build_weights(args.work_dir, problem.household_ids)
    reference = []
    if published is not None:
        reference.append(
            {
                "method": "build_weights",
                "label": "the build's published weights (trained with the test families: "
                "not a fair test, the issue's reference)",
                **evaluate(problem, published),
            }
        )
    chosen = [v for v in variants(args.epochs) if not args.only or v.name in args.only]
    for variant in chosen:
        print(f"\nrunning {variant.name}: {variant.label}", flush=True)
        for row in run_variant(problem, variant):
            rows.append(row)
            print(markdown([row]).splitlines()[-1], flush=True)

    seed_rows: list[dict[str, Any]] = []
    for seed in args.gate_seeds:
        for variant in variants(args.epochs):
            if variant.name in SEED_CHECKED:
                print(f"\nrunning {variant.name} with seed {seed}", flush=True)
                seed_rows.extend(run_variant(problem, reseeded(variant, seed)))
                print(markdown(seed_rows[-1:]).splitlines()[-1], flush=True)

    design = rows[0]
    ecps = next((r for r in rows if r["method"] == "ecps"), None)
    for row in rows + reference + seed_rows:
        row["goals"] = goals(row, design, ecps)
    table = markdown(rows + reference)
    goal_table = goals_markdown(rows + reference)
    chosen_default = recommend(rows)
    print(f"\n{table}\n\n{goal_table}")
    seed_table = markdown(seed_rows) if seed_rows else ""
    if seed_rows:
        print(f"\nother seeds:\n{seed_table}")
    if chosen_default is not None:
        print(f"\nrecommended by the rule in `recommend` (no test): {chosen_default['method']}")
    out = args.out or ROOT / "benchmarks" / "results" / f"calibration_split_{dt.date.today()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "date": dt.date.today().isoformat(),
                "work_dir": str(args.work_dir),
                "inputs": input_files(args.work_dir),
                "problem": {
                    "targets": int(problem.matrix.shape[0]),
                    "households": int(problem.matrix.shape[1]),
                    "nonzeros": int(problem.matrix.nnz),
                    "fixed_households": int(problem.fixed.sum()),
                    "spine": spine_note,
                },
                "split": summary,
                "goals": {
                    "ess_share_floor": ESS_FLOOR,
                    "max_ratio": MAX_RATIO,
                    "within": WITHIN,
                    "selections": SELECTIONS,
                },
                "machine": {
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "load_average": os.getloadavg(),
                    "torch": torch.__version__,
                    "torch_threads": 1,
                },
                "methods": rows,
                "reference": reference,
                "seed_check": seed_rows,
                "seed_table": seed_table,
                "table": table,
                "goals_table": goal_table,
                "recommended": None if chosen_default is None else chosen_default["method"],
                "recommendation_rule": recommend.__doc__,
            },
            indent=2,
            default=_json_default,
        )
    )
    print(f"\nwrote {out}")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | np.ndarray):
        return list(value)
    if isinstance(value, Callable):
        return repr(value)
    return str(value)


if __name__ == "__main__":
    main()
