"""The target loss every solver, baseline and gate shares (DESIGN.md, Baselines).

    loss = mean_i  c * n_i * ((estimate_i - target_i + 1) / (target_i + 1))^2

with n_i = 1 / (number of national targets) for national targets and
1 / (number of state targets) for state targets, and c = 1 / mean(n): national and
state targets weigh the same in total however many of each there are. The +1 keeps
zero-valued targets finite. One definition, used for train, held-out and per-family
losses alike, so every number in a loss record is comparable.
"""

from __future__ import annotations

import numpy as np

# What ``Scorecard.losses`` reports per method, in table order (the runner's loss table too).
METHOD_LOSS_KEYS = (
    "train", "validation", "test", "held_out", "all",
    "within_10pct", "within_10pct_train", "within_10pct_ceiling",
)  # fmt: skip


def count_normalisation(is_national: np.ndarray) -> np.ndarray:
    """n_i * c for each target: national and state targets each carry half the weight.

    Where only one kind is present every target gets 1.
    """
    is_national = np.asarray(is_national, dtype=bool)
    n = np.empty(len(is_national), dtype=float)
    national = int(is_national.sum())
    state = len(is_national) - national
    n[is_national] = 1.0 / national if national else 0.0
    n[~is_national] = 1.0 / state if state else 0.0
    return n / n.mean() if len(n) else n


def relative_errors(estimates: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(estimate - target + 1) / (target + 1), the term the loss squares."""
    estimates = np.asarray(estimates, dtype=float)
    targets = np.asarray(targets, dtype=float)
    return (estimates - targets + 1.0) / (targets + 1.0)


def target_loss(estimates: np.ndarray, targets: np.ndarray, is_national: np.ndarray) -> float:
    """The normalised mean squared relative error over the given targets (nan if none)."""
    if len(np.asarray(targets)) == 0:
        return float("nan")
    errors = relative_errors(estimates, targets)
    return float(np.mean(count_normalisation(is_national) * errors**2))


def split_losses(
    estimates: np.ndarray, targets: np.ndarray, is_national: np.ndarray, train: np.ndarray
) -> tuple[float, float]:
    """``target_loss`` of the train targets and of the others (nan when there are none)."""
    held_out = ~train
    return (
        target_loss(estimates[train], targets[train], is_national[train]),
        target_loss(estimates[held_out], targets[held_out], is_national[held_out])
        if held_out.any()
        else float("nan"),
    )


def absolute_percentage_error(estimate: float, target: float) -> float:
    """|estimate - target| / |target| (inf for a zero target with a nonzero estimate)."""
    if target == 0:
        return 0.0 if estimate == 0 else float("inf")
    return abs(estimate - target) / abs(target)


def kish_ess(weights: np.ndarray) -> float:
    """Kish effective sample size (sum w)^2 / sum w^2: how many equally weighted records the
    weights are worth (0 for an all-zero vector)."""
    weights = np.asarray(weights, dtype=float)
    squares = float(np.square(weights).sum())
    return float(weights.sum()) ** 2 / squares if squares > 0 else 0.0


def fit_term(kind: str, scale: float):
    """The fitted objective's term of a relative error e (``SolverConfig.fit_loss``), for
    numpy arrays and torch tensors alike: "squared" e^2, "huber" 2 d^2 (sqrt(1 + (e / d)^2)
    - 1) with d = ``scale``, "band" max(0, |e| - scale)^2."""
    if kind == "squared":
        return lambda e: e * e
    if scale <= 0:
        raise ValueError(f"fit_loss_scale must be > 0, got {scale}")
    if kind == "huber":
        return lambda e: 2 * scale**2 * ((1 + (e / scale) ** 2) ** 0.5 - 1)
    if kind == "band":
        return lambda e: (abs(e) - scale).clip(min=0) ** 2
    raise ValueError(f"fit_loss must be squared, huber or band, got {kind!r}")
