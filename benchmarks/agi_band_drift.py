"""Should an older SOI table's AGI bands move to the build year? A back-test on SOI itself.

A target from an older SOI table counts returns in that year's nominal AGI bands, and the
build applies those edges to the build year's AGI unchanged. The alternative is to move the
edges with nominal income growth (employment income per person, CPI-U, CBO AGI per
person). This checks the choice on real tables that never enter a split. From one year's
returns by AGI band (Publication 1304 Table 1.1, all statuses, carried in
``targets/data/soi_targets.csv``) it predicts a later year's, with the edges held fixed or
moved by a candidate factor. Each prediction is scored against the later year's counts, and
the one factor that predicts best is found for comparison. (2021 is a shock year: filings
driven by the expanded CTC and the recovery rebates at the bottom, and a capital-gains
boom at the top.)

    python benchmarks/agi_band_drift.py [--out results.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from microplex_assets import uprating
from microplex_assets.targets.aggregate_uprating import CBO_AGI, POPULATION

ROOT = Path(__file__).resolve().parents[1]
SOI = ROOT / "microplex_assets" / "targets" / "data" / "soi_targets.csv"
PAIRS = ((2021, 2022), (2022, 2023), (2021, 2023))
TOP_SCORED = 5e6  # bands above this run into the open top band once moved: not scored


def band_counts(frame: pd.DataFrame, year: int) -> pd.DataFrame:
    """Returns by positive, bounded AGI band (Table 1.1, all statuses, all returns)."""
    rows = frame[
        (frame["Year"] == year)
        & (frame["Variable"] == "count")
        & (frame["Filing status"] == "All")
        & ~frame["Taxable only"].astype(bool)
        & (frame["SOI table"] == "Table 1.1")
        & (frame["AGI lower bound"] >= 1)
    ]
    bands = rows[["AGI lower bound", "AGI upper bound", "Value"]].drop_duplicates()
    bands.columns = ["low", "high", "returns"]
    return bands.sort_values("low").reset_index(drop=True)


def predicted(bands: pd.DataFrame, scale: float, growth: float) -> np.ndarray:
    """Each band's returns a year later if every filer's AGI grew by ``scale`` and the number
    of filers by ``growth``: the old cumulative count, linear within a band, read at the
    edges divided by ``scale`` (the open top band keeps its share)."""
    edges = np.append(bands["low"].to_numpy(), bands["high"].to_numpy()[-1])
    cumulative = np.append(0.0, np.cumsum(bands["returns"].to_numpy()))
    finite = np.isfinite(edges)
    at = np.interp(edges[finite] / scale, edges[finite], cumulative[finite])
    moved = np.append(at, cumulative[-1]) if not finite[-1] else at
    return np.diff(moved) * growth


def score(bands_from: pd.DataFrame, bands_to: pd.DataFrame, scale: float) -> float:
    """Mean squared relative error of the predicted counts over the scored bands, with the
    filer count's growth taken from the two tables (the question is the bands' shape)."""
    growth = bands_to["returns"].sum() / bands_from["returns"].sum()
    estimate = predicted(bands_from, scale, growth)
    actual = bands_to["returns"].to_numpy()
    scored = bands_to["high"].to_numpy() <= TOP_SCORED
    return float(np.mean(((estimate - actual) / actual)[scored] ** 2))


def candidate_factors(system: Any, start: int, end: int) -> dict[str, float]:
    """Each candidate's factor from ``start`` to ``end``, from PolicyEngine's parameters."""

    def factor(path: str) -> float:
        return uprating.uprating_factor(system, path, start, end)

    wages = uprating.uprating_index(system, "employment_income").path
    return {
        "fixed edges (no move)": 1.0,
        "employment income per person": factor(wages),
        "CPI-U": factor(uprating.CPI_U),
        "CBO AGI per person": factor(CBO_AGI) / factor(POPULATION),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    from policyengine_us import CountryTaxBenefitSystem

    system = CountryTaxBenefitSystem()
    frame = pd.read_csv(SOI)
    results = []
    for start, end in PAIRS:
        old, new = band_counts(frame, start), band_counts(frame, end)
        if not old[["low", "high"]].equals(new[["low", "high"]]):
            raise ValueError(f"{SOI}: Table 1.1 bands differ between {start} and {end}")
        best = minimize_scalar(
            lambda s, a=old, b=new: score(a, b, s), bounds=(0.8, 1.4), method="bounded"
        )
        row = {"from": start, "to": end, "best_factor": float(best.x), "best_mse": float(best.fun)}
        row["candidates"] = {
            label: {"factor": factor, "mse": score(old, new, factor)}
            for label, factor in candidate_factors(system, start, end).items()
        }
        results.append(row)
        print(f"\n{start} -> {end}: best factor {best.x:.4f} (MSE {best.fun:.6f})")
        print("| edges moved by | factor | mean squared relative error |\n|---|---:|---:|")
        for label, value in row["candidates"].items():
            print(f"| {label} | {value['factor']:.4f} | {value['mse']:.6f} |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=lambda x: None))
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
