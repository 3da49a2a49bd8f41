"""Children by their tax unit's earnings under each weighting of one national build.

    python benchmarks/ctc_children.py [--work-dir DIR] [--year 2024] [--weights NAME=PATH ...]
                                      [--out PATH]

Why: the ARPA child tax credit's cost is the children it reaches times what each gains,
and a child in a unit with no earnings gains the most ($3,000-3,600 against nothing under
current law). The benchmark gate compares the candidate's cost with the eCPS method's on
the same records, so a difference in the cost is a difference in where the weights put
children. This prints, for the design, candidate and eCPS-method weights (and any
``--weights`` vector saved in the matrix's household order), the weighted children under 6
and 6-17 by their tax unit's earnings (wages plus self-employment of every member), and the
national totals beside SSA's population for the year (the build's own
``entities/data/ssa_population_age_sex_2010_2050.csv``). A second table splits all children
under 18 by their unit's type (a couple: the unit has a spouse; else a single adult) and
earnings band: where SOI's joint and head-of-household return counts bite. Weighted sums
are MicroSeries. ``--out`` writes both tables as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from microdf import MicroSeries

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from calibration_split import DEFAULT_WORK_DIR, build_weights  # noqa: E402

EARNINGS_BANDS = (-np.inf, 0.0, 2_500.0, 10_000.0, 25_000.0, 75_000.0, 200_000.0, np.inf)
BAND_LABELS = ("<= 0", "0-2.5k", "2.5-10k", "10-25k", "25-75k", "75-200k", "200k+")
SSA_FILE = ROOT / "microplex_assets" / "entities" / "data" / "ssa_population_age_sex_2010_2050.csv"


def read_people(h5_path: Path) -> pd.DataFrame:
    """Age, household and tax unit of every person, with their tax unit's earnings."""
    with h5py.File(h5_path, "r") as f:
        year = sorted(f["household_id"].keys())[0]

        def column(*names: str) -> np.ndarray:
            """The first of ``names`` the file holds (inputs are stored before labour
            supply responses: ``employment_income_before_lsr``), else zeros."""
            for name in names:
                if name in f:
                    return f[name][year][:]
            return np.zeros(len(f["person_id"][year]))

        people = pd.DataFrame(
            {
                "age": column("age"),
                "household_id": column("person_household_id").astype(np.int64),
                "tax_unit_id": column("person_tax_unit_id").astype(np.int64),
                "earnings": column("employment_income", "employment_income_before_lsr")
                + column("self_employment_income", "self_employment_income_before_lsr"),
                "is_spouse": f["tax_unit_role_input"][year][:] == b"SPOUSE"
                if "tax_unit_role_input" in f
                else np.zeros(len(f["person_id"][year]), dtype=bool),
            }
        )
    people["unit_earnings"] = people.groupby("tax_unit_id")["earnings"].transform("sum")
    people["band"] = pd.cut(people["unit_earnings"], EARNINGS_BANDS, labels=BAND_LABELS, right=True)
    couple = people.groupby("tax_unit_id")["is_spouse"].transform("any")
    people["unit_type"] = np.where(couple, "couple", "single adult")
    return people


def ssa_children(year: int) -> dict[str, float]:
    """SSA's population under 6 and 6-17 in ``year`` (the build's carried table)."""
    table = pd.read_csv(SSA_FILE)
    rows = table[table["Year"] == year]
    age, total = rows["Age"].astype(int), rows["M Tot"] + rows["F Tot"]
    return {
        "under_6": float(total[age < 6].sum()),
        "6_17": float(total[(age >= 6) & (age < 18)].sum()),
    }


def by_band_table(
    people: pd.DataFrame, weights: dict[str, pd.Series], key: str, groups: dict[str, pd.Series]
) -> pd.DataFrame:
    """Weighted people (millions) of each group (``key`` column: the group's label) by unit
    earnings band, per weighting."""
    rows = []
    for name, household_weight in weights.items():
        person_weight = people["household_id"].map(household_weight).fillna(0.0).to_numpy()
        for group, mask in groups.items():
            series = MicroSeries(mask.astype(float).to_numpy(), weights=person_weight)
            by_band = series.groupby(people["band"].to_numpy()).sum()
            rows.append(
                {"weights": name, key: group, "total": series.sum() / 1e6}
                | {band: by_band.get(band, 0.0) / 1e6 for band in BAND_LABELS}
            )
    return pd.DataFrame(rows)


def children_table(people: pd.DataFrame, weights: dict[str, pd.Series]) -> pd.DataFrame:
    """Weighted children (millions) by age group and unit earnings band, per weighting."""
    age = people["age"]
    groups = {"under_6": age < 6, "6_17": (age >= 6) & (age < 18)}
    return by_band_table(people, weights, "children", groups)


def unit_type_table(people: pd.DataFrame, weights: dict[str, pd.Series]) -> pd.DataFrame:
    """Weighted children under 18 (millions) by unit type and earnings band, per weighting."""
    child = people["age"] < 18
    groups = {kind: child & (people["unit_type"] == kind) for kind in ("couple", "single adult")}
    return by_band_table(people, weights, "unit", groups)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--weights", nargs="*", default=[], help="NAME=PATH of a .npy vector")
    parser.add_argument("--out", type=Path, default=None, help="write the tables as JSON")
    args = parser.parse_args()
    ids = np.load(args.work_dir / "target_matrix_household_ids.npy")
    vectors = {"design": np.load(args.work_dir / "target_matrix_design_weights.npy")}
    for label, name in (("candidate", "policyengine_us"), ("ecps_method", "ecps_method")):
        found = build_weights(args.work_dir, ids, f"{name}_{args.year}.h5")
        if found is not None:
            vectors[label] = found
    for item in args.weights:
        label, path = item.split("=", 1)
        vectors[label] = np.load(path)
    weights = {label: pd.Series(v, index=ids) for label, v in vectors.items()}
    records = args.work_dir / f"policyengine_us_{args.year}.h5"
    if not records.exists():  # before publication: the candidate holds the same records
        records = args.work_dir / f"candidate_{args.year}.h5"
    people = read_people(records)
    table = children_table(people, weights)
    print(table.to_markdown(index=False, floatfmt=".2f"))
    by_unit = unit_type_table(people, weights)
    print("\nChildren under 18 by unit type and unit earnings (millions):")
    print(by_unit.to_markdown(index=False, floatfmt=".2f"))
    ssa = {k: round(v / 1e6, 2) for k, v in ssa_children(args.year).items()}
    print("\nSSA population (millions):", ssa)
    if args.out:
        payload = {
            "work_dir": str(args.work_dir),
            "by_age": table.to_dict(orient="records"),
            "by_unit_type": by_unit.to_dict(orient="records"),
            "ssa_millions": ssa,
        }
        args.out.write_text(json.dumps(payload, indent=1))
        print("wrote", args.out)


if __name__ == "__main__":
    main()
