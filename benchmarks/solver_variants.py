"""National solver variants on one saved matrix, scored on the issue-13 goals.

    python benchmarks/solver_variants.py [--work-dir DIR] [--only NAME ...] [--out PATH]
                                         [--weights-dir DIR]

Every variant runs the build's path (``calibration_diagnosis.fit_build``: free design
weights on the household count, train fitted, validation choosing the epoch, test never
shown, spine fixed) with one change to the build's solver (``build_config``). Prints and
writes (JSON, ``--out``) per variant: train / validation / test loss, share of kept targets
within 10%, Kish ESS share, largest w / w0, the protected families failing the gate
(against the eCPS method's family losses, computed first) and seconds. With
``--weights-dir`` each variant's weights are saved (``<name>.npy``) and reused when there.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from calibration_diagnosis import (  # noqa: E402
    box_range,
    build_config,
    family_losses,
    fit_build,
    fit_build_to_limits,
    release_gates,
    scaled_design,
    score,
)
from calibration_split import DEFAULT_WORK_DIR, SplitProblem, load_problem  # noqa: E402

from microplex_assets.calibration.fit_weights import family_fit_weights  # noqa: E402
from microplex_assets.calibration.scorecard import PROTECTED_FAMILIES  # noqa: E402
from microplex_assets.calibration.solver_config import SolverConfig, ecps_method_config  # noqa: E402


def ecps_fit(problem: SplitProblem) -> tuple[np.ndarray, Any]:
    """The eCPS method on the train rows only, from the unscaled design weights."""
    return fit_build(problem, ecps_method_config(), with_validation=False)


def unreachable_fit_weights(problem: SplitProblem, config: SolverConfig) -> Callable:
    """The build's family fit weights with 0 for every target no weighting in the ratio box
    can bring within 10% even alone (``calibration_diagnosis.box_range``)."""
    w0 = scaled_design(problem, config.scale_to_household_count)
    low, high = box_range(problem, w0, config.max_weight_ratio)
    values = problem.values
    gap = np.maximum(low - values, values - high).clip(min=0) / np.abs(values)
    reachable = gap <= 0.10
    families = problem.targets["family"].to_numpy()

    def fit_weights(index: np.ndarray) -> np.ndarray:
        base = family_fit_weights(
            families[index], PROTECTED_FAMILIES, config.protected_boost, config.balance_families
        )
        return base * reachable[index]

    return fit_weights


def before(**overrides: Any) -> SolverConfig:
    """The national build's solver before 2026-12-02's fifth session (KL 1.0, no ESS
    penalty, one fit, no age raking), with overrides: the variants below are one change to it."""
    return build_config(
        **{
            "method": "adam",
            "household_count_boost": 1.0,
            "kl_penalty": 1.0,
            "ess_penalty": 0.0,
            "family_limit_rounds": 0,
            "rake_to_age": False,
            "population_boost": 1.0,
            **overrides,
        }
    )


# name -> (label, config); config None = the eCPS method; "before, ...": one change to `before`
VARIANTS: dict[str, tuple[str, SolverConfig | None]] = {
    "ecps": ("eCPS method", None),
    "design": ("design weights", None),
    "default": (
        "build default: chi-square calibration (validation's alpha), ratio 50, balanced, "
        "protected x10, scaled, raked to age and returns, population x10, household count "
        "x1000, family-limit refits (4)",
        build_config(),
    ),
    "torch": (
        "build default until the sixteenth session: torch solver, KL 1.0, the rest as default",
        build_config(method="adam", household_count_boost=1.0),
    ),
    **{
        f"chi_alpha{alpha:g}": (
            f"default with the one alpha {alpha:g}",
            build_config(chi_square_alphas=(alpha,)),
        )
        for alpha in (0.1, 0.05, 0.03, 0.01)
    },
    **{
        f"chi_band{band:g}": (
            f"default with the band fit term (no pull within {band:.0%})",
            build_config(fit_loss="band", fit_loss_scale=band),
        )
        for band in (0.08, 0.05)
    },
    "chi_iter1500": (
        "default with L-BFGS-B capped at 1,500 iterations per alpha (3,000)",
        build_config(lbfgs_iterations=1_500),
    ),
    "chi_plain_limits": (
        "default, families not balanced, protected boost 1 (the family-limit refits raise "
        "only the protected families over their limit)",
        build_config(balance_families=False, protected_boost=1.0),
    ),
    "before": ("default before: ratio 50, KL 1.0, balanced, protected x10, scaled", before()),
    "epochs8000": ("before, 8,000 epochs", before(epochs=8_000)),
    "cosine": ("before, lr 0.2 -> 0.005 cosine", before(final_learning_rate=0.005)),
    "kl0.3": ("before, KL 0.3", before(kl_penalty=0.3)),
    "kl0.1": ("before, KL 0.1", before(kl_penalty=0.1)),
    "band": (
        "before, band fit (no pull within 5%)",
        before(fit_loss="band", fit_loss_scale=0.05),
    ),
    "drop_unreachable": (
        "before, targets no weight in [w0/50, 50 w0] can bring within 10% not fitted",
        before(),
    ),
    **{
        f"ess{mu:g}_kl{kl:g}": (
            f"ESS penalty {mu:g} x n / ESS, KL {kl:g}",
            before(ess_penalty=mu, kl_penalty=kl),
        )
        for mu, kl in ((0.01, 0.1), (0.03, 0.1), (0.1, 0.1), (0.03, 0.3), (0.1, 0.0), (0.03, 0.5))
    },
    "cosine_ess0.03_kl0.3": (
        "ESS penalty 0.03, KL 0.3, lr 0.2 -> 0.005 cosine",
        before(ess_penalty=0.03, kl_penalty=0.3, final_learning_rate=0.005),
    ),
    "rake": ("before, raked to age groups", before(rake_to_age=True)),
    "rake_pop10": (
        "before, raked to age groups, population family boosted 10x",
        before(rake_to_age=True, population_boost=10.0),
    ),
    "huber": ("before, pseudo-Huber fit (delta 0.1)", before(fit_loss="huber")),
    "huber_kl0.3": (
        "pseudo-Huber (delta 0.1), KL 0.3",
        before(fit_loss="huber", kl_penalty=0.3),
    ),
    # family-limit refits (fit_weights.fit_to_family_limits): boosts of the protected
    # families whose train loss is above 0.9 x (eCPS method's train loss + tolerance) raised
    "limits_kl1": (
        "default before (KL 1.0) + family-limit refits (4)",
        before(family_limit_rounds=4),
    ),
    **{
        f"limits_ess{mu:g}_kl{kl:g}": (
            f"ESS penalty {mu:g}, KL {kl:g} + family-limit refits (4)",
            build_config(
                method="adam",
                ess_penalty=mu,
                kl_penalty=kl,
                family_limit_rounds=4,
                household_count_boost=1.0,
            ),
        )
        for mu, kl in ((0.03, 0.1), (0.1, 0.1), (0.1, 0.3), (0.03, 0.3), (0.1, 1.0))
    },
}


def run(
    problem: SplitProblem,
    name: str,
    weights_dir: Path | None,
    ecps_families: dict,
    ecps_weights: np.ndarray | None = None,
):
    label, config = VARIANTS[name]
    path = weights_dir / f"{name}.npy" if weights_dir else None
    started = time.perf_counter()
    info: dict[str, Any] = {}
    if name == "design":
        weights = problem.design.copy()
    elif path is not None and path.exists():
        weights = np.load(path)
        info["cached"] = True
    else:
        fit_weight_fn = unreachable_fit_weights(problem, config) if "unreachable" in name else None
        if config is not None and config.family_limit_rounds > 0:
            weights, result, info["family_limit_fit"] = fit_build_to_limits(
                problem, config, ecps_weights
            )
        else:
            fitter: Callable = (
                ecps_fit if config is None else (lambda p: fit_build(p, config, fit_weight_fn))
            )
            weights, result = fitter(problem)
        info["chosen_epoch"] = int(result.best_epoch)
        info["epochs_run"] = int(result.history["epoch"].iloc[-1])
        if path is not None:
            np.save(path, weights)
    info["seconds"] = time.perf_counter() - started
    if ecps_weights is not None:
        info["gates"] = release_gates(problem, weights, ecps_weights)
    return weights, {"label": label, **info, **score(problem, weights, ecps_families)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--weights-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    problem, note = load_problem(args.work_dir)
    print(note, problem.matrix.shape, flush=True)
    if args.weights_dir:
        args.weights_dir.mkdir(parents=True, exist_ok=True)
    out = args.out or ROOT / f"benchmarks/results/solver_variants_{dt.date.today()}.json"
    rows: dict[str, Any] = json.loads(out.read_text())["rows"] if out.exists() else {}
    ecps_weights, ecps = run(problem, "ecps", args.weights_dir, {})
    ecps_families = family_losses(problem, ecps_weights)
    rows["ecps"] = ecps
    for name in args.only or [n for n in VARIANTS if n != "ecps"]:
        _, rows[name] = run(problem, name, args.weights_dir, ecps_families, ecps_weights)
        r = rows[name]
        print(
            f"{name}: train {r['train_loss']:.4g} val {r['validation_loss']:.4g} test "
            f"{r['test_loss']:.4g} within10 {r['within_10pct']:.1%} ESS {r['ess_share']:.1%} "
            f"ratio {r['max_ratio']:.1f} all {r['all_loss']:.4g} failing "
            f"{r['failing_families']} margins {r['protected_margins']} {r['seconds']:.0f}s",
            flush=True,
        )
        payload = {
            "work_dir": str(args.work_dir),
            "shape": list(problem.matrix.shape),
            "rows": rows,
        }
        out.write_text(json.dumps(payload, indent=1, default=float))
    print(markdown(rows))
    print("wrote", out)


def markdown(rows: dict[str, Any]) -> str:
    lines = [
        "| variant | train | validation | test | within 10% | ESS | max ratio "
        "| protected failing | s |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, r in rows.items():
        failing = ", ".join(r.get("failing_families", [])) or "-"
        lines.append(
            f"| {name} | {r['train_loss']:.4g} | {r['validation_loss']:.4g} | "
            f"{r['test_loss']:.4g} | {r['within_10pct']:.1%} | {r['ess_share']:.1%} | "
            f"{r['max_ratio']:.1f} | {failing} ({len(r.get('failing_families', []))}) | "
            f"{r['seconds']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
