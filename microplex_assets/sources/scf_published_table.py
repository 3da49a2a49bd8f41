"""The published SCF figures the asset donor is built from, and the per-cell statistics.

``data/scf_2022_published_assets.csv`` is long-format: one figure per row (measure, asset,
group type and group, year, value), each marked published / derived / assumption with a
source id that SOURCES.json resolves. Reading checks the columns, the numbers and the
group codes (a malformed table fails naming the file and the column) and, for the carried
copy, the SHA256. The functions below turn the rows into one cell's holding rate and
holders' median (age x income group), the way ``scf_published.py`` draws its records.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from microplex_assets.sources.frame import SourceFormatError
from microplex_assets.targets.carried import CarriedTableError, carried_table, read_carried_csv

SOURCE = "scf_published_assets"
TABLE_FILE = "scf_2022_published_assets.csv"
DATA_DIR = Path(__file__).parent / "data"
COLUMNS = ("measure", "asset", "group_type", "group", "year", "value", "status", "source")
STATUSES = ("published", "derived", "assumption")
AGE_GROUPS: tuple[str, ...] = ("<35", "35-44", "45-54", "55-64", "65-74", "75+")
AGE_BOUNDS: tuple[int, ...] = (18, 35, 45, 55, 65, 75, 96)
INCOME_GROUPS: tuple[str, ...] = ("0-20", "20-40", "40-60", "60-80", "80-90", "90-100")
INCOME_BOUNDS: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0)
GROUPS = {"all": ("all",), "age": AGE_GROUPS, "income": INCOME_GROUPS}
# PolicyEngine input -> the SCF asset rows summed into it.
ASSET_PARTS: dict[str, tuple[str, ...]] = {
    "bank_account_assets": ("transaction_accounts",),
    "stock_assets": ("stocks",),
    "bond_assets": ("bonds", "savings_bonds"),
}
SCF_PARTS: tuple[str, ...] = tuple(p for parts in ASSET_PARTS.values() for p in parts)
IMPUTED: tuple[str, ...] = (*ASSET_PARTS, "net_worth")
TOP_TAIL_INCOME = ("wageinc", "kginc", "intdivinc", "bussefarminc", "ssretinc")
SCF_YEAR = 2022
MIN_LOG_SPREAD = 0.5  # within-cell floor when the between-cell spread uses up the total

Uprate = Callable[[str, int, int], float]


def _fail(path: Path, message: str) -> SourceFormatError:
    return SourceFormatError(f"{SOURCE}: {path} {message}")


def read_published_table(path: Path | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The carried table (hash-checked) or the one at ``path``; malformed input raises
    SourceFormatError naming the file, the column and what was expected."""
    target = Path(path) if path is not None else DATA_DIR / TABLE_FILE
    try:
        if path is None:
            table, entry = carried_table(TABLE_FILE, COLUMNS, data_dir=DATA_DIR)
            entry["file"] = f"microplex_assets/sources/data/{TABLE_FILE}"
        else:
            table, digest = read_carried_csv(target, COLUMNS)
            entry = {"file": str(target), "sha256": digest}
    except CarriedTableError as error:
        raise SourceFormatError(f"{SOURCE}: {error}") from error
    value = pd.to_numeric(table["value"], errors="coerce")
    bad = value.isna() | ~np.isfinite(value) | (value < 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise _fail(target, f"column 'value' holds {table['value'].iloc[row]!r} at data row "
                    f"{row + 1}; expected a finite number >= 0")  # fmt: skip
    year = pd.to_numeric(table["year"], errors="coerce")
    if year.isna().any():
        raise _fail(target, "column 'year' has a non-numeric entry; expected a survey year")
    for column, allowed in (("status", STATUSES), ("group_type", tuple(GROUPS))):
        unknown = sorted(set(table[column].astype(str)) - set(allowed))
        if unknown:
            raise _fail(target, f"column '{column}' holds {unknown}; expected one of {allowed}")
    for group_type, groups in GROUPS.items():
        rows = table["group_type"] == group_type
        unknown = sorted(set(table.loc[rows, "group"].astype(str)) - set(groups))
        if unknown:
            raise _fail(target, f"column 'group' holds {unknown} for group_type "
                        f"'{group_type}'; expected one of {groups}")  # fmt: skip
    return table.assign(value=value.astype(float), year=year.astype(int)), entry


def _index(table: pd.DataFrame) -> dict[tuple[str, str, str, str], dict[int, float]]:
    """(measure, asset, group_type, group) -> {year: value}, built once per table."""
    if "figures" not in table.attrs:
        index: dict[tuple[str, str, str, str], dict[int, float]] = {}
        for row in table.itertuples(index=False):
            key = (row.measure, row.asset, row.group_type, row.group)
            index.setdefault(key, {})[int(row.year)] = float(row.value)
        table.attrs["figures"] = index
    return table.attrs["figures"]


def figure(
    table: pd.DataFrame,
    measure: str,
    asset: str,
    group_type: str = "all",
    group: str = "all",
    year: int | None = None,
) -> float:
    """One figure: the given year, else the latest year carried; KeyError names what is missing."""  # noqa: E501
    years = _index(table).get((measure, asset, group_type, group), {})
    if year is None and years:
        return years[max(years)]
    if year not in years:
        raise KeyError(f"{TABLE_FILE}: no row {measure}/{asset}/{group_type}/{group}/{year}")
    return years[year]


def figure_years(table: pd.DataFrame, measure: str, asset: str, group_type: str = "all",
                 group: str = "all") -> list[int]:  # fmt: skip
    """The years carried for one figure, latest first."""
    return sorted(_index(table).get((measure, asset, group_type, group), {}), reverse=True)


def _has(table: pd.DataFrame, measure: str, asset: str, group_type: str, group: str,
         year: int | None = None) -> bool:  # fmt: skip
    try:
        figure(table, measure, asset, group_type, group, year)
    except KeyError:
        return False
    return True


def _gradient_year(table: pd.DataFrame, measure: str, asset: str) -> int | None:
    """The year whose age/income rows give this measure's gradient (None: no gradient)."""
    years = [y for (m, a, t, _), values in _index(table).items()
             if m == measure and a == asset and t != "all" for y in values]  # fmt: skip
    return max(years) if years else None


def holding_rate(table: pd.DataFrame, asset: str, age: str, income: str) -> float:
    """Cell holding rate (0-1): latest all-family rate moved by the logit age and income
    gradients of the gradient year."""
    level = logit(figure(table, "holding_rate", asset) / 100)
    ref = _gradient_year(table, "holding_rate", asset)
    if ref is not None:
        base = logit(figure(table, "holding_rate", asset, year=ref) / 100)
        for group_type, group in (("age", age), ("income", income)):
            if _has(table, "holding_rate", asset, group_type, group, ref):
                rate = figure(table, "holding_rate", asset, group_type, group, ref) / 100
                level += logit(min(max(rate, 1e-4), 1 - 1e-4)) - base
    return float(expit(level))


def _ratio(table: pd.DataFrame, measure: str, asset: str, group_type: str, group: str) -> float:
    """Group / all-family figure, same year: the latest year that has this group (else 1)."""
    for year in figure_years(table, measure, asset, group_type, group):
        if _has(table, measure, asset, "all", "all", year):
            return figure(table, measure, asset, group_type, group, year) / figure(
                table, measure, asset, "all", "all", year
            )
    return 1.0


def holder_median(table: pd.DataFrame, asset: str, age: str, income: str) -> float:
    """Cell median of holders' amounts, in the latest level year's dollars."""
    level = figure(table, "median_holders", asset)
    age_ratio = _ratio(table, "median_holders", asset, "age", age)
    return level * age_ratio * _ratio(table, "median_holders", asset, "income", income)


def net_worth_median(table: pd.DataFrame, age: str, income: str, slope: float = 1.0) -> float:
    """Cell median of net worth: Table 2's age median x (the financial-asset income ratio,
    normalised to the middle 40-60 group) ** ``slope``; the donor solves ``slope`` so its
    net worth total meets the published one (2022 net worth by income was not found)."""
    by_income = _ratio(table, "median_holders", "any_financial", "income", income)
    middle = _ratio(table, "median_holders", "any_financial", "income", "40-60")
    return figure(table, "median", "net_worth", "age", age) * (by_income / middle) ** slope


def log_spread(total_ratio: float, cell_medians: np.ndarray) -> float:
    """Within-cell lognormal sigma: total sigma from mean/median less the between-cell part."""
    total = 2.0 * np.log(max(total_ratio, 1.0 + 1e-9))
    between = float(np.var(np.log(cell_medians)))
    return float(np.sqrt(max(total - between, MIN_LOG_SPREAD**2)))
