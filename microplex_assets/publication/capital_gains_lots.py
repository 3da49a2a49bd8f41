"""Realized capital-gain lots: a relational extension published beside the H5 (stage 8).

PolicyEngine-US takes one long-term and one short-term capital-gain amount per person.
Analyses of holding periods, asset classes or basis (step-up, carry-over, mark-to-market
reforms) need the transactions behind those amounts. This module splits each person's two
amounts into realized lots and writes them as one parquet table keyed by ``person_id``
(with ``tax_unit_id`` and ``household_id`` for joins), so the H5 stays exactly the
PolicyEngine schema and the lots load on their own.

Invariant: per person, the long lots' gains sum to ``long_term_capital_gains_before_response``
and the short lots' gains to ``short_term_capital_gains``, to the cent; persons with a zero
amount have no lots of that term. Lots are synthetic: nothing in the inputs observes them.

Assumptions (not estimated from microdata):
- lots per person-term: 1 + Poisson(log10 |amount in dollars|), capped at ``MAX_LOTS``;
- within a person-term some lots carry the opposite sign (losses offsetting gains, or gains
  inside a net loss): each lot after the first with probability ``OFFSET_LOT_PROBABILITY``,
  their total a uniform 0-50% share of the net amount;
- asset classes: long-term shares follow IRS SOI, "Sales of Capital Assets Reported on
  Individual Income Tax Returns, 1999" (SOI Bulletin, J. Wilson): corporate stock 42.4%,
  pass-through entities 25.3%, mutual-fund capital gain distributions 11.5% of net gains;
  the remaining 20.8% is split real estate 10.0% / other 10.8% by assumption. Shares of net
  gains are used as shares of lots. Short-term shares are an assumption weighted to stock
  (SOI 1999: 76.2% of corporate-stock sales by price were short-term);
- sale dates uniform over the year; short lots held 0-365 days (uniform); long lots held
  367 days plus an exponential tail with a mean of ``LONG_HOLDING_MEAN_YEARS``, capped at
  ``LONG_HOLDING_MAX_YEARS``;
- basis from a log return whose size grows with the holding period.
Capital gain distributions reported without Schedule D (``non_sch_d_capital_gains``: the
synthetic donor's SOI distributions, the PUF's E01100) get no lots: a fund distributes them,
no sale of the holder's has a holding period or basis. The taxcalc CPS's e01100 is the
Census tax model's capital gains in AGI (CGAGIX), so scaffold units that keep their own
values hold them as long-term gains, with lots.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from microplex_assets.entities.bundle import EntityBundle
from microplex_assets.files import write_atomic

SCHEMA_VERSION = 1
METADATA_KEY = b"microplex.capital_gains_lots"
DESCRIPTION = (
    "Realized capital-gain lots per person: long lots sum to "
    "long_term_capital_gains_before_response, short lots to short_term_capital_gains "
    "(to the cent); synthetic split, see microplex_assets.publication.capital_gains_lots."
)
TERM_COLUMNS: dict[str, str] = {
    "long": "long_term_capital_gains_before_response",
    "short": "short_term_capital_gains",
}
ASSET_CLASS_SHARES: dict[str, dict[str, float]] = {
    "long": {  # IRS SOI Sales of Capital Assets 1999; real_estate/other split assumed
        "corporate_stock": 0.424,
        "pass_through": 0.253,
        "mutual_fund": 0.115,
        "real_estate": 0.100,
        "other": 0.108,
    },
    "short": {  # assumption, stock-heavy
        "corporate_stock": 0.700,
        "pass_through": 0.080,
        "mutual_fund": 0.120,
        "real_estate": 0.020,
        "other": 0.080,
    },
}
ASSET_CLASSES: tuple[str, ...] = tuple(ASSET_CLASS_SHARES["long"])
MAX_LOTS = 40
OFFSET_LOT_PROBABILITY = 0.3
LONG_HOLDING_MEAN_YEARS = 4.0
LONG_HOLDING_MAX_YEARS = 40.0
SHORT_MAX_HOLDING_DAYS = 365  # any 365-day span is at most one calendar year
LONG_MIN_HOLDING_DAYS = 367  # any 367-day span is more than one calendar year

ARROW_SCHEMA = pa.schema(
    [
        ("lot_id", pa.int64()),
        ("person_id", pa.int64()),
        ("tax_unit_id", pa.int64()),
        ("household_id", pa.int64()),
        ("term", pa.string()),
        ("asset_class", pa.string()),
        ("acquisition_date", pa.date32()),
        ("sale_date", pa.date32()),
        ("proceeds", pa.float64()),
        ("cost_basis", pa.float64()),
        ("gain", pa.float64()),
    ]
)
COLUMNS: tuple[str, ...] = tuple(ARROW_SCHEMA.names)
ID_COLUMNS = ("person_id", "tax_unit_id", "household_id")


def _cents(values: pd.Series | np.ndarray) -> np.ndarray:
    """Dollar amounts as whole cents: the unit every sum is checked in."""
    return np.rint(np.asarray(values, dtype=float) * 100).astype(np.int64)


def _allocate_cents(total: np.ndarray, group: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Split each group's integer ``total`` over its members: >= 1 cent each, sums exact.

    ``total`` is per member (the group's total repeated); largest remainder keeps the sum.
    """
    frame = pd.DataFrame({"group": group, "weight": weights})
    members = frame.groupby("group")["weight"].transform("size").to_numpy()
    spread = total - members  # after the 1-cent floor
    share = weights / frame.groupby("group")["weight"].transform("sum").to_numpy() * spread
    base = np.floor(share).astype(np.int64)
    frame["fraction"] = share - base
    left = spread - pd.Series(base).groupby(group).transform("sum").to_numpy()
    rank = frame.groupby("group")["fraction"].rank(method="first", ascending=False).to_numpy()
    return 1 + base + (rank <= left).astype(np.int64)


def _person_terms(bundle: EntityBundle) -> pd.DataFrame:
    """One row per person and term with a nonzero amount, ordered by person id for stability."""
    person = bundle.person
    rows = []
    for term, column in TERM_COLUMNS.items():
        if column not in person.columns:
            continue
        part = person[list(ID_COLUMNS)].copy()
        part["term"] = term
        part["cents"] = _cents(person[column].fillna(0.0))
        rows.append(part[part["cents"] != 0])
    if not rows:
        return pd.DataFrame(columns=[*ID_COLUMNS, "term", "cents"])
    frame = pd.concat(rows, ignore_index=True)
    frame["term_order"] = frame["term"].map({"long": 0, "short": 1})
    frame = frame.sort_values(["person_id", "term_order"], kind="stable")
    return frame.drop(columns="term_order").reset_index(drop=True)


def _split_gains(totals: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Lot gains in cents for each nonzero total; returns (owner index, signed cents) per lot."""
    size = np.abs(totals)
    counts = 1 + rng.poisson(np.log10(np.maximum(size / 100.0, 1.0)))
    counts = np.minimum(np.minimum(counts, MAX_LOTS), size)  # at least a cent per lot
    owner = np.repeat(np.arange(len(totals)), counts)
    position = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    offset = (position > 0) & (rng.random(len(owner)) < OFFSET_LOT_PROBABILITY)
    offset_count = np.bincount(owner, weights=offset, minlength=len(totals)).astype(np.int64)
    offset_total = np.floor(size * rng.uniform(0.0, 0.5, len(totals))).astype(np.int64)
    offset_total = np.where(offset_count > 0, offset_total, 0)
    too_small = offset_total < offset_count  # cannot give each offset lot a cent
    offset[too_small[owner]] = False
    offset_total[too_small] = 0
    side_total = np.where(offset, offset_total[owner], size[owner] + offset_total[owner])
    magnitude = _allocate_cents(side_total, owner * 2 + offset, rng.gamma(1.0, size=len(owner)))
    sign = np.sign(totals)[owner] * np.where(offset, -1, 1)
    return owner, sign * magnitude


def build_capital_gains_lots(bundle: EntityBundle, year: int, seed: int) -> pd.DataFrame:
    """Realized lots whose gains sum, per person and term, to the bundle's amounts (to the cent).

    Deterministic for a given bundle content, ``year`` and ``seed`` (persons are taken in
    ``person_id`` order, so row order of the bundle does not matter).
    """
    rng = np.random.default_rng(seed)
    terms = _person_terms(bundle)
    owner, gain = _split_gains(terms["cents"].to_numpy(dtype=np.int64), rng)
    lots = terms.iloc[owner][[*ID_COLUMNS, "term"]].reset_index(drop=True)
    lots.insert(0, "lot_id", np.arange(1, len(lots) + 1, dtype=np.int64))
    is_long = (lots["term"] == "long").to_numpy()

    asset_class = np.empty(len(lots), dtype=object)
    for term, shares in ASSET_CLASS_SHARES.items():
        mask = (lots["term"] == term).to_numpy()
        probabilities = np.array(list(shares.values()))
        asset_class[mask] = rng.choice(list(shares), size=int(mask.sum()), p=probabilities)
    lots["asset_class"] = asset_class.astype(str)

    start = np.datetime64(f"{year}-01-01")
    days_in_year = int((np.datetime64(f"{year + 1}-01-01") - start).astype(int))
    sale = start + rng.integers(0, days_in_year, len(lots)).astype("timedelta64[D]")
    long_days = LONG_MIN_HOLDING_DAYS + rng.exponential(LONG_HOLDING_MEAN_YEARS * 365.25, len(lots))
    long_days = np.minimum(long_days, LONG_HOLDING_MAX_YEARS * 365.25).astype(np.int64)
    short_days = rng.integers(0, SHORT_MAX_HOLDING_DAYS + 1, len(lots))
    held = np.where(is_long, long_days, short_days)
    lots["acquisition_date"] = sale - held.astype("timedelta64[D]")
    lots["sale_date"] = sale

    # Size of the log return grows with time held; basis then follows from the gain.
    years = np.maximum(held / 365.25, 1.0 / 12)
    log_return = np.clip(np.abs(rng.normal(0.07 * years, 0.2 * np.sqrt(years))), 0.01, 3.0)
    ratio = np.abs(np.expm1(np.where(gain > 0, log_return, -log_return)))
    basis = np.ceil(np.abs(gain) / ratio).astype(np.int64)
    lots["proceeds"] = (basis + gain) / 100.0
    lots["cost_basis"] = basis / 100.0
    lots["gain"] = gain / 100.0
    return _typed(lots)


def _typed(lots: pd.DataFrame) -> pd.DataFrame:
    """Columns in schema order with the published dtypes (dates as datetime64)."""
    lots = lots[list(COLUMNS)].copy()
    for column in ("lot_id", *ID_COLUMNS):
        lots[column] = lots[column].astype(np.int64)
    for column in ("term", "asset_class"):
        lots[column] = lots[column].astype(str)
    for column in ("acquisition_date", "sale_date"):
        lots[column] = pd.to_datetime(lots[column]).astype("datetime64[s]")
    for column in ("proceeds", "cost_basis", "gain"):
        lots[column] = lots[column].astype(float)
    return lots.reset_index(drop=True)


def write_capital_gains_lots(lots: pd.DataFrame, path: Path, year: int | None = None) -> Path:
    """Write the lots as parquet atomically (temp sibling, fsync, rename) with file metadata.

    ``year`` defaults to the sale year of the lots; the metadata records year, schema
    version, description and row count so a reader can check the file without the H5.
    """
    path = Path(path)
    missing = [c for c in COLUMNS if c not in lots.columns]
    if missing:
        raise ValueError(f"capital-gain lots lack columns {missing}; cannot write {path}")
    if year is None:
        years = pd.to_datetime(lots["sale_date"]).dt.year.unique()
        if len(years) != 1:
            raise ValueError(f"lots span sale years {sorted(years)}; pass year= to write {path}")
        year = int(years[0])
    table = pa.Table.from_pandas(_typed(lots), schema=ARROW_SCHEMA, preserve_index=False)
    metadata = {
        "year": int(year),
        "schema_version": SCHEMA_VERSION,
        "description": DESCRIPTION,
        "row_count": int(len(lots)),
    }
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), METADATA_KEY: json.dumps(metadata).encode()}
    )
    return write_atomic(path, lambda handle: pq.write_table(table, handle), mode="wb")


def read_lots_metadata(path: Path) -> dict[str, Any]:
    """The file-level metadata written by ``write_capital_gains_lots``."""
    schema = pq.read_schema(path)
    raw = (schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise ValueError(f"{path}: no '{METADATA_KEY.decode()}' metadata; not a lots file")
    return json.loads(raw)


def load_capital_gains_lots(path: Path) -> pd.DataFrame:
    """Read a lots file on its own and validate it; a ValueError names the file and column."""
    path = Path(path)
    metadata = read_lots_metadata(path)
    if metadata.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(
            f"{path}: schema_version {metadata.get('schema_version')} is not {SCHEMA_VERSION}"
        )
    table = pq.read_table(path)
    for field in ARROW_SCHEMA:
        if field.name not in table.schema.names:
            raise ValueError(f"{path}: missing column '{field.name}'")
        actual = table.schema.field(field.name).type
        if actual != field.type:
            raise ValueError(f"{path}: column '{field.name}' has type {actual}, not {field.type}")
    if table.num_rows != metadata.get("row_count"):
        raise ValueError(
            f"{path}: {table.num_rows} rows but metadata row_count {metadata.get('row_count')}"
        )
    lots = _typed(table.select(list(COLUMNS)).to_pandas(date_as_object=False))
    validate_lots(lots, int(metadata["year"]), source=str(path))
    return lots


def validate_lots(lots: pd.DataFrame, year: int, source: str = "lots") -> None:
    """Raise ValueError naming ``source`` and the column for any broken lot rule."""

    def fail(column: str, problem: str, bad: pd.Series) -> None:
        first = lots.loc[bad, "lot_id"].head(3).tolist()
        raise ValueError(
            f"{source}: column '{column}': {int(bad.sum())} lots {problem} (lot_id {first})"
        )

    for column in COLUMNS:
        nulls = lots[column].isna()
        if nulls.any():
            fail(column, "are null", nulls)
    duplicated = lots["lot_id"].duplicated()
    if duplicated.any():
        fail("lot_id", "repeat an id", duplicated)
    bad_term = ~lots["term"].isin(list(TERM_COLUMNS))
    if bad_term.any():
        fail("term", f"are not one of {list(TERM_COLUMNS)}", bad_term)
    sale_year = lots["sale_date"].dt.year
    if (sale_year != year).any():
        fail("sale_date", f"fall outside {year}", sale_year != year)
    one_year_on = lots["acquisition_date"] + pd.DateOffset(years=1)
    if (lots["acquisition_date"] > lots["sale_date"]).any():
        fail(
            "acquisition_date", "are after their sale", lots["acquisition_date"] > lots["sale_date"]
        )
    long_too_short = (lots["term"] == "long") & (lots["sale_date"] <= one_year_on)
    if long_too_short.any():
        fail("acquisition_date", "are long-term but held one year or less", long_too_short)
    short_too_long = (lots["term"] == "short") & (lots["sale_date"] > one_year_on)
    if short_too_long.any():
        fail("acquisition_date", "are short-term but held more than one year", short_too_long)
    if (lots["cost_basis"] < 0).any():
        fail("cost_basis", "are negative", lots["cost_basis"] < 0)
    if (lots["proceeds"] < 0).any():
        fail("proceeds", "are negative", lots["proceeds"] < 0)
    mismatch = _cents(lots["proceeds"]) - _cents(lots["cost_basis"]) != _cents(lots["gain"])
    if mismatch.any():
        fail("gain", "differ from proceeds - cost_basis", pd.Series(mismatch, index=lots.index))


def lots_reconcile(lots: pd.DataFrame, bundle: EntityBundle) -> dict[str, Any]:
    """Per-term totals from the lots against the bundle, and the largest person difference.

    Amounts are compared in cents; ``max_abs_person_difference`` (dollars) is 0 when every
    person's lots sum to their amount. Lots of persons absent from the bundle are counted.
    """
    person = bundle.person
    report: dict[str, Any] = {"lots": int(len(lots)), "persons_with_lots": 0}
    worst = 0
    for term, column in TERM_COLUMNS.items():
        amounts = person[column].fillna(0.0) if column in person.columns else 0.0
        expected = pd.Series(_cents(amounts) * np.ones(len(person), np.int64), person["person_id"])
        term_lots = lots[lots["term"] == term]
        actual = pd.Series(_cents(term_lots["gain"]), term_lots["person_id"].to_numpy())
        actual = actual.groupby(level=0).sum()
        persons = expected.index.union(actual.index)
        difference = actual.reindex(persons, fill_value=0) - expected.reindex(persons, fill_value=0)
        worst = max(worst, int(np.abs(difference).max()) if len(difference) else 0)
        report[term] = {
            "bundle_total": float(expected.sum() / 100),
            "lots_total": float(actual.sum() / 100),
            "difference": float((actual.sum() - expected.sum()) / 100),
            "persons_mismatched": int((difference != 0).sum()),
        }
    report["persons_with_lots"] = int(lots["person_id"].nunique())
    report["lots_for_unknown_persons"] = int((~lots["person_id"].isin(person["person_id"])).sum())
    report["max_abs_person_difference"] = worst / 100
    report["reconciled"] = worst == 0 and report["lots_for_unknown_persons"] == 0
    return report
