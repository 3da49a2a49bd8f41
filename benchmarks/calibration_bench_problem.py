"""The problem ``calibration.py`` benchmarks the solvers on: a synthetic national-scale
problem with a known truth, or one read from files, and the files each method's process
reads it back from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp


@dataclass
class Problem:
    matrix: sp.csr_matrix  # (targets, households)
    targets: pd.DataFrame  # name, value, is_national, train
    weights: np.ndarray  # design weights
    description: str
    truth: np.ndarray | None = None  # the weights the synthetic targets came from


def synthetic_problem(
    n_households: int = 40_000,
    n_states: int = 51,
    n_national: int = 600,
    targets_per_state: int = 47,
    holdout_share: float = 0.15,
    seed: int = 20_240_101,
) -> Problem:
    """A national-scale problem shaped like a PolicyEngine loss matrix, with a known truth.

    Households carry 6 latent features (income level, age, size, ...). Each target is a
    variable (a lognormal amount driven by the features, or a person count) summed over a
    filter (a random half-space of the features, so rows overlap and correlate like income
    bands and age groups do); state targets only see that state's households. National
    filters cover 5-95% of households, state filters 10-100% of the state. Together about
    12.8M nonzeros.

    The truth weights differ from the design weights (lognormal, sd 0.45 in logs) by
    exp(0.35 tanh(features . b) + state effect (sd 0.05) + household noise (sd 0.15)): a
    smooth part the targets can reveal, a state part only that state's targets reveal (so a
    held-out state's is unknowable) and noise. Targets are the truth
    estimates times (1 + N(0, 0.02)), and 5% of them times (1 + N(0, 0.15)): sources that
    disagree, so not every target is attainable. Held out: whole blocks, about 14% of
    targets: all targets of 7 states plus every national target of 15% of the variables.
    """
    rng = np.random.default_rng(seed)
    n = n_households
    shares = rng.dirichlet(np.full(n_states, 2.0))
    state = rng.choice(n_states, size=n, p=shares)
    features = rng.normal(size=(n, 6)).astype(np.float32)
    persons = 1 + rng.poisson(1.5 * np.exp(0.2 * features[:, 2]))
    design = np.exp(rng.normal(np.log(3_300.0), 0.45, size=n))

    n_variables = 40
    mean_log = rng.uniform(5.0, 11.0, size=n_variables)
    loadings = rng.normal(0.0, 0.5, size=(n_variables, 6))
    is_count = rng.random(n_variables) < 0.3

    def contribution(v: int, idx: np.ndarray) -> np.ndarray:
        if is_count[v]:
            return persons[idx].astype(np.float32)
        noise = rng.normal(0.0, 0.8, size=len(idx))
        return np.exp(mean_log[v] + features[idx] @ loadings[v] + noise).astype(np.float32)

    def half_space(idx: np.ndarray, density: float) -> np.ndarray:
        direction = rng.normal(size=6)
        score = features[idx] @ direction
        cut = np.quantile(score, 1.0 - density)
        return idx[score >= cut]

    rows, cols, vals, names, national, variable, geo = [], [], [], [], [], [], []
    everyone = np.arange(n)
    for i in range(n_national):
        v = int(rng.integers(n_variables))
        idx = half_space(everyone, rng.uniform(0.05, 0.95))
        rows.append(np.full(len(idx), len(names)))
        cols.append(idx)
        vals.append(contribution(v, idx))
        names.append(f"nation/var{v:02d}/filter{i}")
        national.append(True)
        variable.append(v)
        geo.append(-1)
    for s in range(n_states):
        members = np.flatnonzero(state == s)
        for k in range(targets_per_state):
            v = int(rng.integers(n_variables))
            idx = half_space(members, rng.uniform(0.1, 1.0)) if len(members) else members
            rows.append(np.full(len(idx), len(names)))
            cols.append(idx)
            vals.append(contribution(v, idx))
            names.append(f"state/{s:02d}/var{v:02d}/filter{k}")
            national.append(False)
            variable.append(v)
            geo.append(s)
    matrix = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(names), n),
        dtype=np.float32,
    )

    smooth = 0.35 * np.tanh(features @ rng.normal(0.0, 0.6, size=6))
    state_effect = rng.normal(0.0, 0.05, size=n_states)[state]
    truth = design * np.exp(smooth + state_effect + rng.normal(0.0, 0.15, size=n))
    exact = matrix.astype(np.float64) @ truth
    noise_sd = np.where(rng.random(len(names)) < 0.05, 0.15, 0.02)
    values = exact * (1.0 + rng.normal(0.0, 1.0, size=len(names)) * noise_sd)

    national = np.array(national)
    variable = np.array(variable)
    geo = np.array(geo)
    held_states = rng.choice(
        n_states, size=max(1, round(n_states * holdout_share * 0.9)), replace=False
    )
    held_variables = rng.choice(n_variables, size=max(1, round(n_variables * 0.15)), replace=False)
    held = np.isin(geo, held_states) | (national & np.isin(variable, held_variables))
    targets = pd.DataFrame(
        {"name": names, "value": values, "is_national": national, "train": ~held}
    )
    description = (
        f"synthetic national problem, seed {seed}: {n:,} households, {len(names):,} targets "
        f"({int(national.sum())} national, {int((~national).sum())} state in {n_states} "
        f"states), {matrix.nnz:,} nonzeros, {int(held.sum())} held out "
        f"({held.mean():.1%}: states {sorted(held_states.tolist())}, national variables "
        f"{sorted(held_variables.tolist())})"
    )
    return Problem(
        matrix=matrix, targets=targets, weights=design, description=description, truth=truth
    )


# --- problem files ---------------------------------------------------------------------


def save_problem(problem: Problem, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    sp.save_npz(folder / "matrix.npz", problem.matrix)
    problem.targets.to_parquet(folder / "targets.parquet")
    np.save(folder / "weights.npy", problem.weights)
    if problem.truth is not None:
        np.save(folder / "truth.npy", problem.truth)
    (folder / "description.txt").write_text(problem.description)


def load_problem(matrix: Path, targets: Path, weights: Path, truth: Path | None = None) -> Problem:
    table = pd.read_parquet(targets)
    missing = {"name", "value", "is_national", "train"} - set(table.columns)
    if missing:
        raise SystemExit(f"{targets}: missing columns {sorted(missing)}")
    table["is_national"] = table["is_national"].astype(bool)
    table["train"] = table["train"].astype(bool)
    loaded = sp.load_npz(matrix).tocsr()
    design = np.load(weights)
    if loaded.shape != (len(table), len(design)):
        raise SystemExit(
            f"matrix shape {loaded.shape} does not match {len(table)} targets x "
            f"{len(design)} weights"
        )
    description_file = matrix.parent / "description.txt"
    description = (
        description_file.read_text()
        if description_file.exists()
        else f"{matrix.name}: {loaded.shape[1]:,} households, {loaded.shape[0]:,} targets, "
        f"{loaded.nnz:,} nonzeros, {int((~table['train']).sum())} held out"
    )
    return Problem(
        matrix=loaded,
        targets=table,
        weights=design,
        description=description,
        truth=np.load(truth) if truth is not None and truth.exists() else None,
    )
