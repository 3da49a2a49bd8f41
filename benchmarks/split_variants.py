"""The methods ``calibration_split.py`` compares (``variants``), how one is run and scored
(``run_variant``), reseeded, and the rule that recommends a default without reading test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from split_fits import (
    SELECTIONS,
    BoundedConfig,
    fit_bounded,
    fit_microcalibrate,
    fit_solver,
    select_epoch,
)
from split_problem import ESS_FLOOR, MAX_RATIO, SplitProblem
from split_scoring import evaluate

from microplex_assets.calibration.solver_config import SolverConfig, ecps_method_config

# --- the methods -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """A named method: a production solver config, or a bounded config with selections."""

    name: str
    label: str
    solver: SolverConfig | None = None
    with_validation: bool = True
    bounded: BoundedConfig | None = None
    selections: tuple[str, ...] = ("val_tol",)
    custom: Callable[[SplitProblem], tuple[np.ndarray, dict[str, Any]]] | None = None


GATES = SolverConfig().l0_lambda  # the eCPS method's L0 penalty, our default


def variants(epochs: int) -> list[Variant]:
    """The methods compared (the eCPS method keeps its own 1,000 epochs). Bounded variants
    are chosen by val_tol unless said otherwise."""
    ours = SolverConfig(epochs=epochs)
    nogates = replace(ours, l0_lambda=0.0)
    b = BoundedConfig(epochs=epochs)
    bounded = "bounded w/w0 in [1/50, 50]"
    production = replace(
        ours, l0_lambda=0.0, max_weight_ratio=MAX_RATIO, kl_penalty=0.3, min_ess_share=ESS_FLOOR
    )
    return [
        Variant(
            "ecps", "eCPS method (ecps_method_config), train only", ecps_method_config(), False
        ),
        Variant(
            "ours_default",
            "ours as the national build runs it: w/w0 in [1/50, 50], KL 0.3, no gates, "
            "validation epoch among ESS >= 25%",
            production,
        ),
        Variant(
            "microcalibrate",
            "microcalibrate (policyengine-us-data's settings), train only",
            custom=fit_microcalibrate,
        ),
        Variant("ours", "ours: SolverConfig() (gates)", ours),
        Variant("ours_nogates", "ours, no gates (l0_lambda=0)", nogates),
        *(
            Variant(
                f"ours_nogates_rho{rho:g}",
                f"ours, no gates, log_weight_penalty {rho:g}",
                replace(nogates, log_weight_penalty=rho),
            )
            for rho in (0.1, 1.0)
        ),
        Variant(
            "ours_rho1", "ours (gates), log_weight_penalty 1", replace(ours, log_weight_penalty=1.0)
        ),
        Variant(
            "bounded", f"{bounded}, no penalty", bounded=b, selections=("val_tol", "val", "val_ess")
        ),
        *(
            Variant(
                f"bounded_chi2_{lam:g}",
                f"{bounded} + chi2 {lam:g}",
                bounded=replace(b, chi2_penalty=lam),
            )
            for lam in (0.03, 0.3)
        ),
        *(
            Variant(
                f"bounded_kl{lam:g}",
                f"{bounded} + KL {lam:g}",
                bounded=replace(b, kl_penalty=lam),
                selections=("val_tol", "val") if lam == 0.1 else ("val_tol",),
            )
            for lam in (0.03, 0.1, 0.3, 1.0)
        ),
        *(
            Variant(
                f"bounded_kl{lam:g}_gates",
                f"{bounded} + KL {lam:g} + gates",
                bounded=replace(b, kl_penalty=lam, l0_lambda=GATES),
            )
            for lam in (0.1, 0.3)
        ),
    ]


def reseeded(variant: Variant, seed: int) -> Variant:
    """The variant with another seed (gate samples; the eCPS method's starting noise)."""
    return replace(
        variant,
        name=f"{variant.name}@seed{seed}",
        solver=None if variant.solver is None else replace(variant.solver, seed=seed),
        bounded=None if variant.bounded is None else replace(variant.bounded, seed=seed),
    )


SEED_CHECKED = ("ecps", "ours", "bounded_kl0.1_gates")  # the methods a seed changes


def recommend(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The default by a rule that never reads test: among methods meeting the weight-health
    goals (ESS share >= 25%, max ratio <= 50) whose validation loss is below the eCPS
    method's, the lowest train loss (fit as well as healthy weights allow)."""
    ecps = next((r for r in rows if r["method"] == "ecps"), None)
    if ecps is None:
        return None
    healthy = [
        r
        for r in rows
        if r["ess_share"] >= ESS_FLOOR
        and r["max_ratio"] <= MAX_RATIO + 1e-6
        and r["validation_loss"] < ecps["validation_loss"]
        and r["method"] != "design"
    ]
    return min(healthy, key=lambda r: r["train_loss"]) if healthy else None


def run_variant(problem: SplitProblem, variant: Variant) -> list[dict[str, Any]]:
    """One row per selection: the chosen weights scored on every split."""
    if variant.custom is not None:
        try:
            weights, info = variant.custom(problem)
        except ImportError as error:
            print(f"{variant.name} skipped: {error}", flush=True)
            return []
        return [
            {"method": variant.name, "label": variant.label, **info, **evaluate(problem, weights)}
        ]
    if variant.solver is not None:
        weights, info = fit_solver(problem, variant.solver, variant.with_validation)
        return [
            {"method": variant.name, "label": variant.label, **info, **evaluate(problem, weights)}
        ]
    history, snapshots, seconds = fit_bounded(problem, variant.bounded)
    rows = []
    for rule in variant.selections:
        index = select_epoch(history, rule)
        weights = problem.merge(snapshots[index].astype(float))
        rows.append(
            {
                "method": f"{variant.name}[{rule}]",
                "label": f"{variant.label}; epoch: {SELECTIONS[rule]}",
                "seconds": seconds,
                "chosen_epoch": int(history["epoch"].iloc[index]),
                "epochs_run": int(history["epoch"].iloc[-1]),
                "config": asdict(variant.bounded),
                "path": history.iloc[:: max(1, len(history) // 40)].to_dict(orient="list"),
                **evaluate(problem, weights),
            }
        )
    return rows
