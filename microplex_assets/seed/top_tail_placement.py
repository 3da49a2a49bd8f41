"""Stage 4 top-tail placement: high-AGI donor records go to states in IRS SOI proportions.

Why: the tax-record donor has no geography. The forest draws each scaffold tax unit a
whole donor record given filing status, ages, dependents and income, so the state that
receives a $1m+ AGI record is whichever state the drawn unit happens to be in: with a few
hundred such units in a national sample, one heavy unit can put a small state's $1m+
returns at several times its IRS SOI count, left for calibration to repair by bending
weights (and every other target of that household). A state covariate in the forest is
no alternative: the donor (PUF or synthetic) has no state to learn it from.

Method (right after the draw, before the records are written to heads):

* A unit's AGI is approximated as its own scaffold income that is not imputed (wages,
  self-employment, pensions, ...) plus the record's imputed income (interest, dividends,
  gains and distributions with net losses limited to $3,000, pass-through, rent); Social
  Security and above-the-line deductions are left out (near a band's edge, approximate).
* For each SOI AGI band at or above the floor (highest first), a state's targets are its
  shares of the band's SOI returns and AGI (states present) times the draw's national
  weighted units and AGI in the band.
* Greedy swaps: a unit in the band exchanges its *whole* record (joint structure kept)
  with a unit of the same cell (filing status, head age group, dependents, own-income
  group) in another state, below the band, when the two exchange SOI bands exactly, both
  records meet the draw's weight-support rule, weights differ by <= ``WEIGHT_TOLERANCE``,
  no band's national count leaves ``NATIONAL_DRIFT`` of the draw's, and the sum over
  states of squared relative errors of returns (plus ``AMOUNT_WEIGHT`` x those of AGI)
  falls. Partners come from below the band, so a lower band never disturbs a higher one.
* Units whose own income alone puts them in a band (CPS wages of $1m+) cannot move; units
  keeping scaffold values (means-tested recipients) take no part; no unit's own CPS
  variables (state, wages, ages, weight) change. Unit order and partner pools are seeded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from microplex_assets.geography.states import CODE_BY_FIPS
from microplex_assets.seed.donor_forest import DonorForest, _rng
from microplex_assets.sources.frame import ObservationFrame
from microplex_assets.targets.carried import DATA_DIR, carried_table
from microplex_assets.targets.common import state_from_geo_id
from microplex_assets.targets.state_tables import AGI_STATE_COLUMNS

if TYPE_CHECKING:
    from microplex_assets.seed.donor_inputs import DonorIntegrationConfig

SOI_FILE = "agi_state.csv"
CAPITAL_GAINS: tuple[str, ...] = ("long_term_capital_gains_before_response",
    "short_term_capital_gains", "non_sch_d_capital_gains")  # fmt: skip
CAPITAL_LOSS_LIMIT = 3_000.0
# Person amounts that enter AGI (besides CAPITAL_GAINS).
AGI_INCOME: tuple[str, ...] = (
    "employment_income_before_lsr", "self_employment_income_before_lsr", "farm_income",
    "taxable_interest_income", "qualified_dividend_income", "non_qualified_dividend_income",
    "partnership_income", "s_corp_income", "rental_income", "taxable_private_pension_income",
    "taxable_ira_distributions", "alimony_income", "unemployment_compensation",
)  # fmt: skip
AGE_EDGES: tuple[float, ...] = (35, 50, 65)
OWN_INCOME_EDGES: tuple[float, ...] = (0, 100e3, 200e3, 350e3, 500e3, 750e3, 1e6, 2e6)
WEIGHT_TOLERANCE = 0.5  # a partner's weight within +-50% of the unit's
# Each band's national weighted count stays within 1% of the draw's. On the 40,000-household
# build 0.1% left NM's $500k-$1m units at 2.45x its SOI share (1%: worst state 1.37x).
NATIONAL_DRIFT = 0.01
MAX_PASSES = 20
# The AGI error's weight in the objective next to the returns error. 40,000 households,
# $1m+ msre of returns / AGI after placement over placement seeds 1457, 1, 2: weight 0:
# 0.013-0.019 / 0.16-0.48; 0.5: 0.016-0.024 / 0.09; 1: 0.030-0.035 / 0.07-0.08 (NH 0.46x).
AMOUNT_WEIGHT = 0.5


@dataclass(frozen=True)
class SoiBands:
    """IRS SOI returns and AGI per state x AGI band (bands at or above a floor)."""

    table: pd.DataFrame  # state, low, high, returns, agi (the placed bands)
    file: str
    edges: np.ndarray  # lower bounds of every band of the table, ascending


@dataclass
class PlacementUnits:
    """Per scaffold unit: what placement reads (state index, weight, cell, own income)."""

    state: np.ndarray  # index into ``states``
    states: list[str]
    weight: np.ndarray
    cell: np.ndarray
    movable: np.ndarray
    floor: np.ndarray  # fewest donor returns that must reach a record the unit takes
    own_plain: np.ndarray
    own_gain: np.ndarray


@dataclass
class PlacementRecords:
    """Per record: imputed income outside and inside the capital-loss limit, and depth."""

    plain: np.ndarray
    gain: np.ndarray
    depth: np.ndarray


@dataclass
class BandLedger:
    """National weighted units per SOI AGI band (every band): as drawn and now."""

    edges: np.ndarray  # lower bounds of every SOI band, ascending (the first is -inf)
    drawn: np.ndarray
    now: np.ndarray

    def band_of(self, agi: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.edges, agi, side="right") - 1

    def allows(self, band: np.ndarray | int, change: np.ndarray | float) -> np.ndarray:
        """Whether adding ``change`` to ``band`` keeps it within NATIONAL_DRIFT of the draw."""
        return (
            np.abs(self.now[band] + change - self.drawn[band]) <= NATIONAL_DRIFT * self.drawn[band]
        )


@dataclass
class TopTailReport:
    """What placement moved: swaps per band, and per state x band counts and AGI."""

    swaps: dict[str, int]
    states: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"swaps": self.swaps, "summary": self.summary,
                "states": self.states.to_dict("records")}  # fmt: skip


def band_label(low: float, high: float) -> str:
    def money(x: float) -> str:
        return f"${x / 1e6:g}m" if x >= 1e6 else f"${x / 1e3:g}k" if x >= 1e3 else f"${x:g}"

    if np.isinf(low):
        return f"under {money(high)}"
    return f"{money(low)}+" if np.isinf(high) else f"{money(low)}-{money(high)}"


def soi_bands(floor: float, data_dir: Any = DATA_DIR) -> SoiBands:
    """The carried SOI state table's bands with lower bound >= ``floor`` (50 states + DC)."""
    frame, entry = carried_table(SOI_FILE, AGI_STATE_COLUMNS, data_dir)
    edges = np.unique(frame["AGI_LOWER_BOUND"].to_numpy(dtype=float))
    frame = frame[frame["AGI_LOWER_BOUND"] >= floor].copy()
    frame["state"] = [state_from_geo_id(g) for g in frame["GEO_ID"]]
    frame = frame[frame["state"].notna()]
    table = frame.pivot_table(
        index=["state", "AGI_LOWER_BOUND", "AGI_UPPER_BOUND"], columns="IS_COUNT", values="VALUE"
    ).reset_index()
    table = table.rename(columns={"AGI_LOWER_BOUND": "low", "AGI_UPPER_BOUND": "high",
                                  0: "agi", 1: "returns"})  # fmt: skip
    return SoiBands(table[["state", "low", "high", "returns", "agi"]], entry["file"], edges)


def unit_states(seed: ObservationFrame, soi: SoiBands) -> np.ndarray:
    """Postal code of each tax unit's household; raises naming a state SOI lacks."""
    unit, household = seed.tables["tax_unit"], seed.tables["household"]
    if "state_fips" not in household.columns:
        raise ValueError(f"{seed.source}: household table lacks state_fips")
    fips = unit["household_id"].map(household.set_index("household_id")["state_fips"])
    codes = fips.map(lambda code: CODE_BY_FIPS.get(int(code), f"FIPS {int(code)}"))
    missing = sorted(set(codes) - set(soi.table["state"]))
    if missing:
        raise ValueError(
            f"{seed.source}: state {missing[0]} has no IRS SOI AGI-band rows in {soi.file} "
            f"(of {missing}); top-tail placement needs one for every state"
        )
    return codes.to_numpy(dtype=str)


def unit_agi(
    units: PlacementUnits, records: PlacementRecords, who: np.ndarray, record: np.ndarray
) -> np.ndarray:
    """Approximate AGI of units ``who`` holding records ``record`` (see module docstring)."""
    gains = np.maximum(units.own_gain[who] + records.gain[record], -CAPITAL_LOSS_LIMIT)
    return units.own_plain[who] + records.plain[record] + gains


def split_income(amounts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per row: AGI income outside capital gains, and capital gains (not yet loss-limited)."""
    plain = [c for c in AGI_INCOME if c in amounts.columns]
    gains = [c for c in CAPITAL_GAINS if c in amounts.columns]
    return (
        amounts[plain].sum(axis=1).to_numpy(dtype=float),
        amounts[gains].sum(axis=1).to_numpy(dtype=float),
    )


def similarity_cells(features: pd.DataFrame, own_income: np.ndarray) -> np.ndarray:
    """Cell label: filing status x head age group x dependents (0, 1, 2+) x own income."""
    age = np.searchsorted(AGE_EDGES, features["age_head"].to_numpy(dtype=float), side="right")
    deps = np.minimum(features["count_dependents"].to_numpy(dtype=float), 2).astype(np.int64)
    income = np.searchsorted(OWN_INCOME_EDGES, own_income, side="right")
    status = features["filing_status"].to_numpy(dtype=np.int64)
    return ((status * 10 + age) * 10 + deps) * 100 + income


def place_band(
    picked: np.ndarray,
    units: PlacementUnits,
    records: PlacementRecords,
    band: int,
    share: tuple[np.ndarray, np.ndarray],
    ledger: BandLedger,
    rng: np.random.Generator,
) -> int:
    """Swap whole records (``picked`` changed in place) so the weighted units and AGI per
    state in SOI band ``band`` approach their SOI state shares (``share``: returns, AGI) x
    their national totals; returns the number of swaps.

    A swap exchanges the two units' bands exactly (the partner's old band is the unit's
    new one), so each band's national count moves only by their weight difference, and
    never further than ``NATIONAL_DRIFT`` from the draw's (``ledger``).
    """
    everyone = np.arange(len(picked))
    agi = unit_agi(units, records, everyone, picked)
    level = ledger.band_of(agi)
    inside = units.weight * (level == band)
    n = len(units.states)
    count = np.stack([np.bincount(units.state, w, n) for w in (inside, inside * agi)])
    target = np.stack(share) * count.sum(axis=1, keepdims=True)
    scale = np.maximum(target, 1e-9) / np.sqrt([[1.0], [AMOUNT_WEIGHT]])
    order = rng.permutation(len(picked))
    movable = order[units.movable[order]]
    pools = {cell: movable[units.cell[movable] == cell] for cell in np.unique(units.cell[movable])}

    def error(s: Any, *totals: Any) -> Any:  # totals: weighted units, AGI
        return sum(((t - target[k, s]) / scale[k, s]) ** 2 for k, t in enumerate(totals))

    swaps = 0
    for _ in range(MAX_PASSES):
        moved = 0
        for a in movable[level[movable] == band]:
            sa, wa, ra = units.state[a], units.weight[a], picked[a]
            pool = pools[units.cell[a]]
            pool = pool[(units.state[pool] != sa) & (level[pool] < band)]
            if level[a] != band or not len(pool):
                continue
            rb, wb, sb, old_b = picked[pool], units.weight[pool], units.state[pool], level[pool]
            agi_b = unit_agi(units, records, pool, np.full(len(pool), ra))
            new_b = ledger.band_of(agi_b)
            new_a = ledger.band_of(unit_agi(units, records, np.full(len(pool), a), rb))
            ok = (
                (new_b == band) & (new_a == old_b)
                & (records.depth[ra] >= units.floor[pool]) & (records.depth[rb] >= units.floor[a])
                & (np.abs(wb - wa) <= WEIGHT_TOLERANCE * wa)
                & ledger.allows(band, wb - wa) & ledger.allows(old_b, wa - wb)
            )  # fmt: skip
            (na, aa), (nb, ab) = count[:, sa], count[:, sb]
            gain = error(sa, na - wa, aa - wa * agi[a]) - error(sa, na, aa)
            gain = gain + error(sb, nb + wb, ab + wb * agi_b) - error(sb, nb, ab)
            gain = np.where(ok, gain, np.inf)
            j = int(np.argmin(gain))
            if gain[j] >= 0:
                continue
            b = pool[j]
            picked[a], picked[b] = picked[b], picked[a]
            count[:, sa] -= [wa, wa * agi[a]]
            count[:, sb[j]] += [wb[j], wb[j] * agi_b[j]]
            level[a], level[b] = old_b[j], band
            agi[a], agi[b] = unit_agi(units, records, np.array([a, b]), picked[[a, b]])
            ledger.now[band] += wb[j] - wa
            ledger.now[old_b[j]] += wa - wb[j]
            moved += 1
        swaps += moved
        if not moved:
            break
    return swaps


def placement_table(
    picked: np.ndarray, units: PlacementUnits, records: PlacementRecords, soi: SoiBands
) -> pd.DataFrame:
    """Per state x band: SOI returns and AGI, targets scaled to the sample's national
    totals (states present only), and the sample's weighted units and AGI in the band."""
    agi = unit_agi(units, records, np.arange(len(picked)), picked)
    present = soi.table[soi.table["state"].isin(units.states)]
    rows = []
    for (low, high), group in present.groupby(["low", "high"], sort=False):
        group = group.set_index("state").reindex(units.states)
        in_band = (agi >= low) & (agi < high)
        count = np.bincount(units.state, units.weight * in_band, minlength=len(units.states))
        amount = np.bincount(units.state, units.weight * agi * in_band, minlength=len(units.states))
        share = group["returns"].to_numpy() / group["returns"].sum()
        agi_share = group["agi"].to_numpy() / group["agi"].sum()
        rows.append(
            pd.DataFrame(
                {
                    "band": band_label(low, high),
                    "state": units.states,
                    "soi_returns": group["returns"].to_numpy(),
                    "target_units": share * count.sum(),
                    "units": count,
                    "soi_agi": group["agi"].to_numpy(),
                    "target_agi": agi_share * amount.sum(),
                    "agi": amount,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def band_summary(table: pd.DataFrame) -> dict[str, Any]:
    """Per band: national weighted units and AGI, and the mean over states of the squared
    relative error of units and AGI against their scaled SOI targets, and the worst state."""
    out = {}
    for band, group in table.groupby("band", sort=False):
        units = group["units"] / group["target_units"] - 1
        agi = group["agi"] / group["target_agi"] - 1
        worst = int(np.argmax(units.abs().to_numpy()))
        out[band] = {
            "national_units": float(group["units"].sum()),
            "national_agi": float(group["agi"].sum()),
            "units_msre": float((units**2).mean()),
            "agi_msre": float((agi**2).mean()),
            "worst_state": str(group["state"].iloc[worst]),
            "worst_units_ratio": float(units.iloc[worst] + 1),
        }
    return out


def build_inputs(
    seed: ObservationFrame,
    features: pd.DataFrame,
    picked: np.ndarray,
    model: DonorForest,
    kept: np.ndarray,
    floor: np.ndarray | None,
    soi: SoiBands,
) -> tuple[PlacementUnits, PlacementRecords, np.ndarray]:
    """Placement inputs; kept units hold pseudo-records of their own scaffold values."""
    person, values, imputed = seed.tables["person"], model.values, model.imputed
    own_columns = [c for c in (*AGI_INCOME, *CAPITAL_GAINS) if c in person.columns
                   and c not in imputed]  # fmt: skip
    scaffold_columns = [c for c in imputed if c in person.columns]
    summed = person.groupby("tax_unit_id")[own_columns + scaffold_columns].sum()
    summed = summed.reindex(features.index, fill_value=0.0)
    own_plain, own_gain = split_income(summed[own_columns])
    state = unit_states(seed, soi)
    states = sorted(set(state))
    units = PlacementUnits(
        state=np.searchsorted(states, state),
        states=states,
        weight=features["weight"].to_numpy(dtype=float),
        cell=similarity_cells(features, own_plain + own_gain),
        movable=~np.asarray(kept, dtype=bool),
        floor=np.zeros(len(features)) if floor is None else np.asarray(floor, dtype=float),
        own_plain=own_plain,
        own_gain=own_gain,
    )
    own_records = summed.loc[kept, scaffold_columns]
    table = pd.concat([pd.DataFrame(values, columns=imputed), own_records], ignore_index=True)
    plain, gain = split_income(table.fillna(0.0))
    records = PlacementRecords(
        plain=plain, gain=gain, depth=np.r_[model.depth, np.full(int(kept.sum()), np.inf)]
    )
    picked = np.asarray(picked).copy()
    picked[kept] = len(values) + np.arange(int(kept.sum()))
    return units, records, picked


def place_top_tail(
    seed: ObservationFrame,
    features: pd.DataFrame,
    picked: np.ndarray,
    model: DonorForest,
    kept: np.ndarray,
    floor: np.ndarray | None,
    config: DonorIntegrationConfig,
    soi: SoiBands | None = None,
) -> tuple[np.ndarray, TopTailReport]:
    """The drawn record per unit after placement (kept units unchanged) and the report.

    features: ``scaffold_unit_features`` rows in tax-unit order; picked: the drawn record
    (index into ``model.values``) per unit; kept: units that keep their scaffold values;
    floor: ``minimum_depth`` per unit. Bands at or above ``config.top_tail_floor``.
    """
    soi = soi or soi_bands(config.top_tail_floor)
    kept = np.asarray(kept, dtype=bool)
    units, records, extended = build_inputs(seed, features, picked, model, kept, floor, soi)
    before = placement_table(extended, units, records, soi)
    edges = soi.edges
    ledger = BandLedger(edges=edges, drawn=np.zeros(len(edges)), now=np.zeros(len(edges)))
    level = ledger.band_of(unit_agi(units, records, np.arange(len(extended)), extended))
    ledger.drawn = np.bincount(level, units.weight, minlength=len(edges))
    ledger.now = ledger.drawn.copy()
    rng, swaps = _rng(config, 7), {}
    bands = soi.table[["low", "high"]].drop_duplicates().sort_values("low", ascending=False)
    for low, high in bands.itertuples(index=False):
        rows = soi.table[soi.table["low"] == low].set_index("state").reindex(units.states)
        share = tuple(rows[c].to_numpy() / rows[c].sum() for c in ("returns", "agi"))
        band = int(np.searchsorted(edges, low))
        swaps[band_label(low, high)] = place_band(
            extended, units, records, band, share, ledger, rng
        )
    after = placement_table(extended, units, records, soi)
    states = before.rename(columns={"units": "units_before", "agi": "agi_before"})
    states["units_after"], states["agi_after"] = after["units"], after["agi"]
    summary = {"before": band_summary(before), "after": band_summary(after),
               "soi_file": soi.file, "units_movable": int(units.movable.sum())}  # fmt: skip
    result = np.asarray(picked).copy()
    result[~kept] = extended[~kept]
    return result, TopTailReport(swaps=swaps, states=states, summary=summary)
