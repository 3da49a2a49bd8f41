"""How the calibration solver runs (``SolverConfig``), and the eCPS method's settings."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from microplex_assets.constants import ECPS_L0_LAMBDA  # the eCPS method's L0 penalty


@dataclass(frozen=True)
class SolverConfig:
    """How to fit the weights. The defaults are our solver; see ``ecps_method_config``.

    epochs: the most Adam steps.
    learning_rate: Adam's step size on the log-weights (and gate logits).
    final_learning_rate: when set, the step size decays to it along a cosine over ``epochs``.
    gate_learning_rate: Adam's step size on the gate logits (default: ``learning_rate``).
        Adam moves every logit by about its step size whatever the L0 penalty's size, so
        this, not ``l0_lambda``, sets how fast gates close.
    log_weight_penalty: rho in  objective = loss + rho * mean_j (u_j - log w0_j)^2, with u
        the log-weights and w0 the (noised) starting weights: keeps the weights near the
        design weights and the effective sample size up, and is what still regularises a
        run without held-out targets (there 0.1 did better than 0.03 on the synthetic
        benchmark problems; with held-out selection 0.03 did best). 0 = none.
    l0_lambda: 0 => no gates at all (plain log-weights); > 0 => hard-concrete gates and
        objective += l0_lambda * expected open gates.
    gate_temperature, gate_init_mean, stretch: the hard-concrete gates' parameters.
    init_noise_sd: the starting weights are the design weights times N(1, sd) (clipped at
        0.01), drawn from ``seed``.
    min_abs_target: train targets with |t| < this are not fitted (the eCPS method drops
        |t| < 0.1 as near-zero targets) and leave the fitted loss's normalisation; they stay
        in the reported train loss, so every method is scored on the same targets.
    select_by_holdout: return the weights of the epoch with the lowest held-out loss (else
        the final ones). Without held-out targets the final weights are returned.
    train_tolerance: with select_by_holdout, choose the lowest held-out loss only among epochs
        whose train loss is within (1 + train_tolerance) of the run's best train loss: the
        held-out targets pick among equally good fits instead of stopping before the fit
        is done. The run goes the full ``epochs`` (no patience) and is replayed to the
        chosen epoch (deterministic for the seed), so it costs up to twice the epochs.
    train_loss_floor: with train_tolerance, any epoch whose train loss is at most this also
        qualifies: a small problem fits its train targets to 1e-5 and the relative band
        alone would leave the held-out targets no epoch to choose among.
    train_target_cap: an epoch the floor admits must also have every train target's squared
        relative error at most this: a mean of 1e-3 over 34 targets still lets one target
        drift 18% (a 2-target SNAP family failed its protected-family gate that way); 0.005
        (7% off) is the protected-family gate's absolute tolerance. inf = no cap.
    patience: with select_by_holdout, stop after this many epochs without a new best
        held-out loss (None: run all epochs).
    seed: seeds the starting noise and the gate samples; same seed => identical weights.
    device: "auto" (cuda when available, else cpu), "cpu", "cuda", ...
    dtype: "float32" or "float64" for the on-device arithmetic.
    threads: torch CPU threads while solving, restored afterwards. None = 1: on the 2-core
        machines one thread runs an epoch in about 17 ms, two in 13-15 ms when the machine
        is otherwise idle but 5x slower when another process is busy.
    max_weight_ratio: when set (r), the weights are w = w0 * exp(b(v)) with b a smooth bound
        of the fitted log-ratio v onto [-log r, log r] (b(v) = log r * tanh(v / log r), slope
        1 at 0), so every weight stays within [w0 / r, r * w0] of its design weight w0. On the
        national matrix the unbounded solver reached ratios of 650 and a Kish ESS of 2% of
        records (benchmarks/results/calibration_split_2026-12-01.json).
    kl_penalty: lambda in objective += lambda * sum_j s_j (r_j log r_j - r_j + 1), s the design
        weights' shares and r = w / w0: the KL divergence of the weights from the design
        weights, a raking-style pull that keeps the effective sample size up (0 = none).
    ess_penalty: mu in objective += mu * n / ESS(w), with n the households and ESS Kish's
        (sum w)^2 / sum w^2: a pull on weight concentration itself rather than on each
        weight's distance from its design weight (0 = none).
    min_ess_share: with held-out selection, epochs whose Kish ESS / records falls below this
        are not chosen (when any epoch reaches it): an ESS floor in epoch selection.
    balance_families, protected_boost: the fitted objective's per-target multipliers
        (``fit_weights.family_fit_weights``, applied by ``weights.solve_weights``): families
        weigh alike, protected families ``protected_boost`` times more. The solver itself
        only sees the multipliers; reported losses never use them.
    fit_loss, fit_loss_scale: the fitted term of each target's relative error e (the term
        ``loss.target_loss`` squares): "squared" e^2 (default); "huber" the pseudo-Huber
        2 d^2 (sqrt(1 + (e / d)^2) - 1) with d = fit_loss_scale (e^2 near 0, 2 d |e| far
        out: a target no weighting can reach stops dominating the gradient); "band"
        max(0, |e| - fit_loss_scale)^2 (no pull inside the band). Reported losses stay
        ``loss.target_loss``.
    scale_to_household_count: before fitting, the free households' starting (and reference)
        weights are scaled so all households sum to the matrix's national household-count
        target, when it has one (``weights.household_count_scale``): post-stratification
        to the Census count, so the KL pull and the ratio bound hold the design *shares*
        rather than a total 18% too high (on the 40k matrix the KL-penalised fit stopped
        at 147.6m households against 132.7m; scaled first, 137.9m).
    rake_to_age: with ``scale_to_household_count``, the fit starts from, and the KL penalty
        pulls towards, the scaled design raked to the national household count and the
        national population of every age group (the sums of the state-by-age targets;
        ``design_rake``); the ratio bound stays relative to the scaled design.
    rake_filing_statuses: with ``rake_to_age``, SOI's national return counts of these
        filing statuses (``targets.filing_status.STATUS_LABEL`` values) join the raking margins.
    population_boost: the fit multiplier of the population family (household count,
        population by state and age), as ``protected_boost`` is the protected families'
        (a refit's own boosts take precedence).
    family_limit_rounds: with per-family loss limits (``weights.solve_weights``'s
        ``family_limits``: the eCPS method's *train* family losses plus the protected-families
        gate's tolerance), refit up to this many times, each time raising the fit boost of
        the families whose train loss is above ``family_limit_margin`` x their limit by
        (loss / (margin x limit))^2, at most ``family_limit_max_step`` per refit
        (``fit_weights.fit_to_family_limits``; a round worse than the best backs off
        halfway towards the best round's boosts); 0 = one fit with ``protected_boost``.
        Only train targets move a boost; validation still chooses each fit's epoch. Opt-in
        (build setting ``family_limit_rounds``; measured with ``ess_penalty`` 0.1 and
        ``kl_penalty`` 0.3 in README "Calibration a user can trust, measured").
    household_count_boost: the national household count's fit multiplier on top of its
        family's (``weights.solve_weights``): one target among the population family's ~950,
        which a weak pull otherwise leaves 3% high.
    method: "adam" (the torch solver above) or "chi_square" (``chi_square``: the train loss
        plus alpha times the chi-square distance to the anchor, solved to its optimum by
        L-BFGS-B in the ``max_weight_ratio`` box for each alpha of ``chi_square_alphas``,
        strongest pull first, each warm-started from the last, for at most
        ``lbfgs_iterations`` (1,500: on the national matrix the chosen point matches
        3,000's to four digits in every loss, the within-10% share and the ESS, for ~40%
        less time; README "Seventeenth session"); validation chooses the alpha among those
        whose ESS share reaches ``min_ess_share``). Uses ``fit_weight``, the anchor,
        ``min_abs_target`` and the ratio bound; gates, penalties other than the pull, and
        noise are refused.
    """

    epochs: int = 4_000
    learning_rate: float = 0.2
    final_learning_rate: float | None = None
    gate_learning_rate: float | None = None
    log_weight_penalty: float = 0.0
    l0_lambda: float = ECPS_L0_LAMBDA
    gate_temperature: float = 0.25
    gate_init_mean: float = 0.999
    stretch: tuple[float, float] = (-0.1, 1.1)
    init_noise_sd: float = 0.0
    min_abs_target: float = 0.0
    select_by_holdout: bool = True
    train_tolerance: float | None = 0.01
    train_loss_floor: float = 0.0
    train_target_cap: float = math.inf
    patience: int | None = 100
    seed: int = 1456
    device: str = "auto"
    dtype: str = "float32"
    threads: int | None = None
    max_weight_ratio: float | None = None
    kl_penalty: float = 0.0
    ess_penalty: float = 0.0
    min_ess_share: float = 0.0
    balance_families: bool = False
    protected_boost: float = 1.0
    scale_to_household_count: bool = False
    rake_to_age: bool = False
    rake_filing_statuses: tuple[str, ...] = ()
    population_boost: float = 1.0
    fit_loss: str = "squared"
    fit_loss_scale: float = 0.1
    family_limit_rounds: int = 0
    family_limit_margin: float = 0.9
    family_limit_max_step: float = 10.0
    method: str = "adam"
    household_count_boost: float = 1.0
    chi_square_alphas: tuple[float, ...] = (0.3, 0.1, 0.03, 0.01, 0.003, 0.001)
    lbfgs_iterations: int = 1_500


def ecps_method_config(seed: int = 1456) -> SolverConfig:
    """The eCPS method as policyengine-us-data runs it (DESIGN.md "Baselines").

    Survey weights times N(1, 0.1) noise; Adam (lr 0.2, 1,000 steps) on log-weights and
    hard-concrete gate logits; lambda_L0 = 2.6445e-7, temperature 0.25, init mean 0.999,
    stretch (-0.1, 1.1); targets with |t| < 0.1 dropped; no penalty, final weights
    (no held-out selection; the held-out loss is still recorded every epoch).
    """
    return SolverConfig(
        epochs=1_000,
        learning_rate=0.2,
        log_weight_penalty=0.0,
        l0_lambda=ECPS_L0_LAMBDA,
        gate_temperature=0.25,
        gate_init_mean=0.999,
        stretch=(-0.1, 1.1),
        init_noise_sd=0.1,
        min_abs_target=0.1,
        select_by_holdout=False,
        patience=None,
        seed=seed,
    )


def solver_config(run_profile: dict[str, Any]) -> SolverConfig:
    """Our solver's configuration from the run profile (defaults where it says nothing)."""
    settings = run_profile["calibration"]
    overrides: dict[str, Any] = {
        "seed": settings["seed"],
        "device": settings["device"],
        "l0_lambda": settings["l0_lambda"],
    }
    # a local shard's solver settings (LOCAL_SOLVER)
    for name in (
        "train_loss_floor",
        "train_target_cap",
        "init_noise_sd",
        "kl_penalty",
        "min_ess_share",
        "protected_boost",
        "population_boost",
        "ess_penalty",
        "household_count_boost",
    ):
        if name in settings:
            overrides[name] = float(settings[name])
    if settings.get("max_weight_ratio") is not None:
        overrides["max_weight_ratio"] = float(settings["max_weight_ratio"])
    for name in ("balance_families", "scale_to_household_count", "rake_to_age"):
        if name in settings:
            overrides[name] = bool(settings[name])
    if "rake_filing_statuses" in settings:
        overrides["rake_filing_statuses"] = tuple(settings["rake_filing_statuses"])
    if settings.get("family_limit_rounds"):
        overrides["family_limit_rounds"] = int(settings["family_limit_rounds"])
    if settings.get("epochs"):
        overrides["epochs"] = int(settings["epochs"])
    if "method" in settings:
        overrides["method"] = str(settings["method"])
    if settings.get("chi_square_alphas"):
        overrides["chi_square_alphas"] = tuple(float(a) for a in settings["chi_square_alphas"])
    return SolverConfig(**overrides)
