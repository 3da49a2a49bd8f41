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
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import Bounds, linprog, minimize

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from calibration_split import (  # noqa: E402
    DEFAULT_WORK_DIR,
    SplitProblem,
    evaluate,
    load_problem,
    residual_rows,
)
from target_conflicts import conflicts  # noqa: E402

from microplex_assets.calibration.design_rake import demographic_margins, rake_factors  # noqa: E402
from microplex_assets.calibration.fit_weights import (  # noqa: E402
    demographic_boosts,
    family_fit_weights,
    fit_to_family_limits,
    with_target_boost,
)
from microplex_assets.calibration.fit_weights import (  # noqa: E402
    family_losses as fit_weights_family_losses,
)
from microplex_assets.calibration.loss import count_normalisation, target_loss  # noqa: E402
from microplex_assets.calibration.scorecard import (  # noqa: E402
    CANDIDATE,
    ECPS_METHOD,
    PROTECTED_FAMILIES,
    Scorecard,
    evaluate_gates,
    protected_allowed_loss,
)
from microplex_assets.calibration.solver import CalibrationResult, calibrate  # noqa: E402
from microplex_assets.calibration.solver_config import SolverConfig, ecps_method_config  # noqa: E402
from microplex_assets.calibration.weight_health import (  # noqa: E402
    weight_health,
    weights_healthy_gate,
)
from microplex_assets.calibration.weights import CalibrationRun  # noqa: E402
from microplex_assets.run_profile.profile import national_solver  # noqa: E402
from microplex_assets.targets.state_tables import NATIONAL_HOUSEHOLDS_TARGET  # noqa: E402

RATIO = 50.0
WITHIN = 0.10


def build_config(**overrides: Any) -> SolverConfig:
    """The national build's solver (profile defaults, no gates), with overrides."""
    return SolverConfig(**{"l0_lambda": 0.0, **national_solver({}), **overrides})


def scaled_design(problem: SplitProblem, scale: bool = True) -> np.ndarray:
    """The free households' starting weights: design, put on the household count (as
    ``weights.household_count_scale``) when ``scale``."""
    free, design = ~problem.fixed, problem.design
    initial = design[free].copy()
    if scale:
        is_count = problem.targets["name"] == NATIONAL_HOUSEHOLDS_TARGET
        if is_count.any():
            count = float(problem.targets.loc[is_count, "value"].iloc[0])
            initial *= (count - design[~free].sum()) / initial.sum()
    return initial


def fit_build(
    problem: SplitProblem,
    config: SolverConfig,
    fit_weight_fn=None,
    with_validation: bool = True,
    family_boosts: dict[str, float] | None = None,
) -> tuple[np.ndarray, CalibrationResult]:
    """``weights.solve_weights`` on the split problem: train fitted, validation selecting
    (``with_validation``; without, only train rows reach the solver), test never passed.
    The one fit sequence of the benchmarks (residual rows, family fit weights, calibrate,
    merge). ``fit_weight_fn(index) -> multipliers`` replaces the family fit weights when
    given; ``family_boosts`` (family -> boost) overrides ``config.protected_boost`` per
    family."""
    initial = scaled_design(problem, config.scale_to_household_count)
    anchor = None
    if config.scale_to_household_count and config.rake_to_age:
        labels, contributions, totals = demographic_margins(
            problem.targets["name"].tolist(),
            problem.targets["group"].tolist(),
            problem.values,
            problem.matrix,
            config.rake_filing_statuses,
        )
        if labels:
            full = problem.design.copy()
            full[~problem.fixed] = initial
            anchor = (full * rake_factors(contributions, totals, full, problem.fixed))[
                ~problem.fixed
            ]
    rows = problem.mask("train") | (problem.mask("validation") if with_validation else False)
    matrix, residual, index = residual_rows(problem, rows)
    fit_weight = None
    family_boosts = demographic_boosts(config.population_boost, family_boosts)
    if fit_weight_fn is not None:
        fit_weight = fit_weight_fn(index)
    elif config.balance_families or config.protected_boost != 1.0 or family_boosts:
        families = problem.targets["family"].to_numpy()[index]
        fit_weight = family_fit_weights(
            families,
            PROTECTED_FAMILIES,
            config.protected_boost,
            config.balance_families,
            family_boosts,
        )
    fit_weight = with_target_boost(  # as weights.solve_weights applies it
        fit_weight,
        problem.targets["name"].to_numpy()[index] == NATIONAL_HOUSEHOLDS_TARGET,
        config.household_count_boost,
    )
    result = calibrate(
        matrix,
        residual,
        problem.is_national[index],
        problem.mask("train")[index],
        initial,
        config,
        fit_weight,
        anchor,
    )
    return problem.merge(result.weights), result


def train_family_losses(problem: SplitProblem, weights: np.ndarray) -> dict[str, float]:
    """Each protected family's loss over its *train* targets only."""
    return fit_weights_family_losses(
        problem.matrix @ weights,
        problem.values,
        problem.is_national,
        problem.targets["family"].to_numpy(),
        PROTECTED_FAMILIES,
        problem.mask("train"),
    )


def fit_build_to_limits(
    problem: SplitProblem, config: SolverConfig, ecps_weights: np.ndarray
) -> tuple[np.ndarray, CalibrationResult, dict[str, Any]]:
    """``fit_build`` with the family-limit refits (``fit_weights.fit_to_family_limits``) as
    ``weights.solve_weights`` runs them: limits from the eCPS method's train family losses,
    boosts raised on train losses only."""
    limits = {
        f: protected_allowed_loss(loss)
        for f, loss in train_family_losses(problem, ecps_weights).items()
    }
    health: list[dict[str, Any]] = []

    def fit(boosts: dict[str, float]) -> tuple[np.ndarray, CalibrationResult]:
        weights, result = fit_build(problem, config, family_boosts=boosts)
        scored = evaluate(problem, weights)
        health.append(
            {k: scored[k] for k in ("train_loss", "validation_loss", "ess_share", "max_ratio")}
            | {"chosen_epoch": int(result.best_epoch)}
        )
        print(f"  round {len(health) - 1}: boosts {boosts} -> {health[-1]}", flush=True)
        return weights, result

    fitted = fit_to_family_limits(
        fit,
        lambda weights: train_family_losses(problem, weights),
        limits,
        {f: config.protected_boost for f in limits},
        config.family_limit_rounds,
        config.family_limit_margin,
        config.family_limit_max_step,
    )
    info = {"limits": limits, "chosen_round": fitted.chosen_round, "rounds": fitted.rounds}
    for number, row in enumerate(fitted.rounds):  # what each round's weights score
        row.update(health[number])
    return fitted.weights, fitted.result, info


def family_losses(problem: SplitProblem, weights: np.ndarray) -> dict[str, float]:
    """The protected-families gate's per-family loss."""
    estimates = problem.matrix @ weights
    out = {}
    for family in PROTECTED_FAMILIES:
        mask = (problem.targets["family"] == family).to_numpy()
        if mask.any():
            out[family] = target_loss(
                estimates[mask], problem.values[mask], problem.is_national[mask]
            )
    return out


def failing_families(ours: dict[str, float], ecps: dict[str, float]) -> list[str]:
    """Protected families above the eCPS method's loss + max(5%, 0.005)."""
    return [f for f, loss in ours.items() if loss > protected_allowed_loss(ecps[f])]


def score(problem: SplitProblem, weights: np.ndarray, ecps_families: dict[str, float]) -> dict:
    """The issue's numbers for one weight vector."""
    record = {k: v for k, v in evaluate(problem, weights).items() if k != "group_mse"}
    estimates = problem.matrix @ weights
    record["all_loss"] = target_loss(estimates, problem.values, problem.is_national)
    record["families"] = family_losses(problem, weights)
    if ecps_families:
        record["failing_families"] = failing_families(record["families"], ecps_families)
        # loss - allowed per protected family (> 0: fails the gate)
        record["protected_margins"] = {
            f: round(loss - protected_allowed_loss(ecps_families[f]), 5)
            for f, loss in record["families"].items()
        }
    return record


def release_gates(
    problem: SplitProblem, weights: np.ndarray, ecps_weights: np.ndarray
) -> dict[str, str]:
    """The build's own gate functions on these weights (``Scorecard`` with the candidate,
    the eCPS method and the design weights; ``weights_healthy`` at 25% / 50): gate ->
    pass / fail and its summary."""
    frame = problem.targets.copy()
    frame["train"] = problem.mask("train")
    card = Scorecard(
        frame,
        {
            CANDIDATE: problem.matrix @ weights,
            ECPS_METHOD: problem.matrix @ ecps_weights,
            "design": problem.matrix @ problem.design,
        },
    )
    gates = [g for g in evaluate_gates(card) if g.applicable]
    ids = pd.Index(problem.household_ids, name="household_id")
    health = weight_health(
        pd.Series(weights, index=ids),
        pd.Series(problem.design, index=ids),
        problem.household_ids[problem.fixed],
    )
    health["limits"] = {"min_ess_share": 0.25, "max_ratio": 50.0, "enforced": True}
    gates.append(weights_healthy_gate(CalibrationRun(pd.Series(weights), "x", "x", health=health)))
    return {g.name: f"{g.status}: {g.summary}" for g in gates}


# --- per-target diagnosis ------------------------------------------------------------------


def box_range(problem: SplitProblem, w0: np.ndarray, ratio: float) -> tuple[np.ndarray, ...]:
    """Each target's smallest and largest estimate with every free weight in
    [w0 / ratio, ratio * w0] (spine fixed): the exact range a target alone can reach."""
    free = problem.matrix[:, ~problem.fixed].tocsr()
    spine = problem.matrix @ problem.fixed_weights
    positive, negative = free.maximum(0), free.minimum(0)
    high = spine + positive @ (ratio * w0) + negative @ (w0 / ratio)
    low = spine + positive @ (w0 / ratio) + negative @ (ratio * w0)
    return low, high


def per_target(problem: SplitProblem, weights: np.ndarray, w0: np.ndarray) -> pd.DataFrame:
    """One row per kept target: error under ``weights``, train-loss contribution, support,
    and the box's reach."""
    t = problem.targets[["name", "family", "group", "split", "value", "is_national"]].copy()
    estimates = problem.matrix @ weights
    values = problem.values
    t["estimate"] = estimates
    t["rel_error"] = (estimates - values) / np.abs(values)
    t["within_10pct"] = np.abs(estimates - values) <= WITHIN * np.abs(values)
    train = problem.mask("train")
    norm = np.zeros(len(t))
    norm[train] = count_normalisation(problem.is_national[train]) / train.sum()
    t["train_loss_contribution"] = norm * ((estimates - values + 1) / (values + 1)) ** 2
    free = problem.matrix[:, ~problem.fixed].tocsr()
    t["support"] = np.diff(free.indptr)
    low, high = box_range(problem, w0, RATIO)
    gap = np.maximum(low - values, values - high).clip(min=0)
    t["alone_best_rel_error"] = gap / np.abs(values)
    t["alone_unreachable"] = t["alone_best_rel_error"] > WITHIN
    return t


def l2_floor(problem: SplitProblem, w0: np.ndarray, ratio: float | None) -> dict[str, Any]:
    """The lowest train loss (``loss.target_loss``, no fit weights) any free weights in
    [w0 / ratio, ratio * w0] (w >= 0 when ratio is None) reach: the box-constrained least
    squares in r = w / w0 (convex), solved by L-BFGS-B."""
    started = time.perf_counter()
    train = problem.mask("train")
    matrix, residual, index = residual_rows(problem, train)
    norm = count_normalisation(problem.is_national[train]) / train.sum()
    norm = norm[np.isin(np.flatnonzero(train), index)]
    row_scale = np.sqrt(norm) / (problem.values[index] + 1.0)
    a = (sp.diags(row_scale) @ matrix @ sp.diags(w0)).tocsr()
    a_t = a.T.tocsr()
    b = row_scale * (residual - 1.0)

    def objective(r: np.ndarray) -> tuple[float, np.ndarray]:
        e = a @ r - b
        return float(e @ e), 2.0 * (a_t @ e)

    bounds = Bounds(1.0 / ratio if ratio else 0.0, ratio if ratio else np.inf)
    solution = minimize(
        objective,
        np.ones(len(w0)),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 3_000, "maxfun": 6_000, "ftol": 1e-12, "gtol": 1e-10},
    )
    weights = problem.merge(w0 * solution.x)
    return {
        "ratio": ratio,
        "weights": weights,
        "train_loss": target_loss(
            (problem.matrix @ weights)[train], problem.values[train], problem.is_national[train]
        ),
        "iterations": int(solution.nit),
        "status": str(solution.message),
        "seconds": time.perf_counter() - started,
    }


def within_ceiling(
    problem: SplitProblem, w0: np.ndarray, ratio: float | None, rows: np.ndarray
) -> dict[str, Any]:
    """LP: min sum_i s_i  s.t. |est_i - t_i| <= (0.1 + s_i) |t_i|, r in the box, s >= 0,
    over ``rows`` (the spine fixed). Targets with s_i ~ 0 are within 10% together (a lower
    bound on how many can be: L1 relaxation)."""
    started = time.perf_counter()
    index = np.flatnonzero(rows)
    values = problem.values[index]
    spine = (problem.matrix @ problem.fixed_weights)[index]
    free = problem.matrix[index][:, ~problem.fixed].tocsr()
    scale = 1.0 / np.abs(values)
    a = sp.diags(scale) @ free @ sp.diags(w0)
    b = (values - spine) * scale
    n, k = a.shape[1], a.shape[0]
    eye = sp.identity(k, format="csr")
    a_ub = sp.vstack([sp.hstack([a, -eye]), sp.hstack([-a, -eye])]).tocsr()
    b_ub = np.concatenate([b + WITHIN, -b + WITHIN])
    c = np.concatenate([np.zeros(n), np.ones(k)])
    low = 1.0 / ratio if ratio else 0.0
    bounds = [(low, ratio)] * n + [(0, None)] * k
    result = linprog(c, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs-ipm")
    if result.x is None:
        return {"ratio": ratio, "status": result.message, "seconds": time.perf_counter() - started}
    weights = problem.merge(w0 * result.x[:n])
    estimates = problem.matrix @ weights
    hit = np.abs(estimates - problem.values) <= (WITHIN + 1e-4) * np.abs(problem.values)
    return {
        "ratio": ratio,
        "weights": weights,
        "hit": hit,
        "within_10pct_ceiling": float(hit[index].mean()),
        "status": result.message,
        "seconds": time.perf_counter() - started,
    }


def family_table(frame: pd.DataFrame, reference: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per family: targets, train-loss share, within 10%, support median, alone-unreachable,
    and the share missed (beyond 10%) in each reference weighting."""
    train_total = frame["train_loss_contribution"].sum()
    g = frame.groupby("family")
    table = pd.DataFrame(
        {
            "targets": g.size(),
            "train_loss": g["train_loss_contribution"].sum(),
            "train_loss_share": g["train_loss_contribution"].sum() / train_total,
            "within_10pct": g["within_10pct"].mean(),
            "median_support": g["support"].median(),
            "alone_unreachable": g["alone_unreachable"].sum(),
        }
    )
    for name, hit in reference.items():
        table[f"missed_in_{name}"] = (
            (~pd.Series(hit, index=frame.index)).groupby(frame["family"]).sum()
        )
    return table.sort_values("train_loss", ascending=False)


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
