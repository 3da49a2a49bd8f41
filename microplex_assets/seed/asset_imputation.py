"""Stage 4: bank, stock and bond assets and net worth for every household, from the SCF donor.

The CPS scaffold has no balance sheet, so without this step PolicyEngine reads zero assets
and every SSI and SNAP resource test passes. policyengine-us 2.68 reads
``bank_account_assets``, ``stock_assets`` and ``bond_assets`` (Person) for SSI
(``ssi_countable_resources`` adds ``gov.ssa.ssi.eligibility.resources.countable``) and SNAP
(``snap_assets`` adds ``gov.usda.snap.asset_test.sources``, SPM unit), and ``net_worth``
(Household) elsewhere.

Method: the tax donor's machinery (``donor_forest.py``). One multi-output quantile forest
is fitted on the asset donor (``sources/scf_published.py``: published SCF tables below the
top tail, real SCF 2022 records above) with the conditioning both sides carry: the
reference person's age and the household's income rank (the donor's is its SCF income
percentile; the scaffold's its weighted rank of household income; a real top-tail record
is ranked by its SCF income, uprated, against the scaffold's income distribution, and the
donor's ranks are then recomputed over synthetic and tail rows together so they are
uniform, as the scaffold's are). Each
household takes the *whole* donor record at a seeded q ~ U(0, 1) of its conditional
distribution ordered by net worth, so the assets' joint structure and zeros carry over.

Placement: the SCF's unit is the reference person's family, so a household's draw goes to
its reference tax unit (the head of its first tax unit): split equally between head and
spouse (resources of a couple are joint for SSI), nothing to other members or other tax
units. Households reporting SSI receipt draw only donor records whose liquid assets are
within SSI's resource limit ($2,000, $3,000 for a couple; 20 CFR 416.1205), since receipt
says they met it; where no record of the neighbourhood qualifies, the draw is scaled to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from microdf import MicroSeries

from microplex_assets.seed.canonical import canonical_households
from microplex_assets.seed.donor_forest import draw_records, fit_donor_forest, neighbourhood
from microplex_assets.seed.donor_inputs import DonorIntegrationConfig
from microplex_assets.sources import scf_published_table as scf
from microplex_assets.sources import tax_records as tr
from microplex_assets.sources.frame import ObservationFrame, SourceFormatError

PERSON_ASSETS: tuple[str, ...] = tuple(scf.ASSET_PARTS)
IMPUTED: tuple[str, ...] = (*PERSON_ASSETS, "net_worth")
CONDITIONING: tuple[str, ...] = ("age_head", "income_rank")
SSI_RESOURCE_LIMIT = {"single": 2_000.0, "couple": 3_000.0}  # 20 CFR 416.1205
INCOME_GROUP_BOUNDS = scf.INCOME_BOUNDS
REPORTED_SSI = "ssi_reported"


@dataclass(frozen=True)
class AssetImputationConfig:
    """Forest size, the seed, and whether reported SSI recipients keep within the limit."""

    seed: int = 0
    # 50 trees: each household's conditional distribution is 50 donor records (the fit
    # costs ~5 s on one core; 100 trees doubled it without moving the evidence tables).
    n_estimators: int = 50
    min_samples_leaf: int = 5
    max_fit_rows: int = 40_000
    n_jobs: int = 1
    respect_reported_ssi: bool = True

    def forest_config(self) -> DonorIntegrationConfig:
        return DonorIntegrationConfig(
            seed=self.seed, n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf, max_fit_rows=self.max_fit_rows,
            n_jobs=self.n_jobs, evidence=False,
        )  # fmt: skip


@dataclass
class AssetImputationReport:
    """What the asset step did, and the evidence against the published table."""

    donor: str
    donor_kind: str
    conditioning: list[str]
    households: int
    rows_fitted: int
    ssi_households_restricted: int
    ssi_households_scaled: int
    evidence: pd.DataFrame
    totals: dict[str, float]
    notes: list[str] = field(default_factory=list)


def weighted_rank(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Mid-point weighted percentile rank (0-1) of each value within its own file."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weight[order])
    rank = np.empty(len(values))
    rank[order] = (cumulative - weight[order] / 2) / cumulative[-1]
    return rank


def rank_against(values: np.ndarray, reference: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted share of ``reference`` below each of ``values`` (0-1)."""
    order = np.argsort(reference, kind="stable")
    cumulative = np.concatenate([[0.0], np.cumsum(weight[order])])
    position = np.searchsorted(reference[order], values, side="left")
    return cumulative[position] / cumulative[-1]


def reference_units(seed: ObservationFrame) -> pd.DataFrame:
    """Per household: its reference tax unit, head person row and spouse row (or -1)."""
    person = seed.tables["person"].reset_index(drop=True)
    heads = person[person["role"] == "head"].sort_values(["household_id", "tax_unit_id"])
    first = heads.groupby("household_id").head(1)
    spouses = person[person["role"] == "spouse"].drop_duplicates("tax_unit_id")
    spouse_row = pd.Series(spouses.index, index=spouses["tax_unit_id"].to_numpy())
    return pd.DataFrame({
        "household_id": first["household_id"].to_numpy(),
        "tax_unit_id": first["tax_unit_id"].to_numpy(),
        "head_row": first.index.to_numpy(),
        "spouse_row": spouse_row.reindex(first["tax_unit_id"]).fillna(-1).astype(int).to_numpy(),
    }).set_index("household_id")  # fmt: skip


def household_features(seed: ObservationFrame) -> pd.DataFrame:
    """Per household (index household_id): age_head, income, income_rank, weight, couple,
    reported SSI."""
    canonical = canonical_households(seed).set_index("household_id")
    units = reference_units(seed)
    weight = canonical["household_weight"].to_numpy(dtype=float)
    income = canonical["household_income"].to_numpy(dtype=float)
    features = pd.DataFrame({
        "age_head": canonical["head_age"].fillna(40).to_numpy(dtype=float),
        "income": income,
        "income_rank": weighted_rank(income, weight),
        "weight": weight,
        "couple": units["spouse_row"].reindex(canonical.index).fillna(-1).to_numpy() >= 0,
    }, index=canonical.index)  # fmt: skip
    bounds = [0, *scf.AGE_BOUNDS[1:-1], np.inf]
    features["age_group"] = pd.cut(features["age_head"], bounds, labels=list(scf.AGE_GROUPS),
                                   right=False).astype(str)  # fmt: skip
    tax_unit = seed.tables["tax_unit"]
    reported = set()
    if REPORTED_SSI in tax_unit.columns:
        reported = set(tax_unit.loc[tax_unit[REPORTED_SSI] > 0, "household_id"])
    features["ssi_reported"] = features.index.isin(reported)
    return features


def donor_rows(donor: ObservationFrame, features: pd.DataFrame) -> pd.DataFrame:
    """Donor households with the forest's columns; top-tail rows ranked on the scaffold."""
    if "household" not in donor.tables:
        raise SourceFormatError(f"{donor.source}: asset donor has no 'household' table")
    rows = donor.tables["household"].copy()
    needed = ["household_id", "household_weight", *CONDITIONING, *IMPUTED, "income"]
    missing = [c for c in needed if c not in rows.columns]
    if missing:
        raise SourceFormatError(f"{donor.source}: asset donor lacks columns {missing}")
    ranked = rows["income_rank"].isna()
    rows.loc[ranked, "income_rank"] = rank_against(
        rows.loc[ranked, "income"].to_numpy(dtype=float),
        features["income"].to_numpy(dtype=float),
        features["weight"].to_numpy(dtype=float),
    )
    rows["income_rank"] = combined_ranks(rows, ranked.to_numpy())
    for column in (*CONDITIONING, *IMPUTED, "household_weight"):
        values = rows[column].to_numpy(dtype=float)
        if not np.isfinite(values).all():
            raise SourceFormatError(f"{donor.source}: column '{column}' has non-finite values")
    for column in PERSON_ASSETS:
        if (rows[column] < 0).any():
            raise SourceFormatError(f"{donor.source}: column '{column}' has negative values")
    # The tax-donor forest reads these names: weight, rank key (net worth here), id.
    return rows.assign(**{tr.WEIGHT: rows["household_weight"], tr.AGI: rows["net_worth"],
                          tr.ID: rows["household_id"]})  # fmt: skip


def combined_ranks(rows: pd.DataFrame, ranked: np.ndarray) -> np.ndarray:
    """Each donor row's weighted income rank in the donor itself (synthetic and tail rows).

    Synthetic rows carry their SCF percentile r (uniform, mass S); a tail row carries r0,
    its SCF income's rank on the scaffold. A row's combined rank is the donor weight below
    it, (S r + tail weight below r) / (S + T), so the donor's ranks are uniform like the
    scaffold's and the tail keeps its real share at the top (ranked on the scaffold alone,
    SCF incomes put half the tail in the top 0.5% and a household there would draw a tail
    record far more often than one at the 95th percentile, which drew them too rarely).
    """
    weight = rows["household_weight"].to_numpy(dtype=float)
    rank = rows["income_rank"].to_numpy(dtype=float)
    synthetic, tail = float(weight[~ranked].sum()), float(weight[ranked].sum())
    order = np.argsort(rank[ranked], kind="stable")
    tail_rank, tail_weight = rank[ranked][order], weight[ranked][order]
    below = np.concatenate([[0.0], np.cumsum(tail_weight)])
    position = np.searchsorted(tail_rank, rank, side="left")
    within = np.where(ranked, weight / 2, 0.0)  # a tail row's own mid-point
    tail_below = below[position]
    combined = (synthetic * rank + tail_below + within) / (synthetic + tail)
    return np.clip(combined, 0.0, 1.0)


def _ssi_restricted(
    model: Any, x: np.ndarray, q: np.ndarray, limit: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Draws limited to records whose liquid assets are within ``limit``; where none of the
    neighbourhood is, the unrestricted draw and a flag to scale it."""
    hood = neighbourhood(model, x)
    liquid = model.values[:, : len(PERSON_ASSETS)].sum(axis=1)[hood]
    valid = liquid <= limit[:, None]
    key = np.where(valid, model.rank_key[hood], np.inf)
    count = valid.sum(axis=1)
    order = np.argsort(key, axis=1, kind="stable")
    position = np.minimum((q * np.maximum(count, 1)).astype(np.int64), np.maximum(count, 1) - 1)
    picked = hood[np.arange(len(hood)), order[np.arange(len(hood)), position]]
    return picked, count == 0


def impute_assets(
    seed: ObservationFrame, donor: ObservationFrame, config: AssetImputationConfig | None = None
) -> tuple[ObservationFrame, AssetImputationReport]:
    """The seed with net_worth on households and liquid assets on reference heads/spouses."""
    config = config or AssetImputationConfig()
    features = household_features(seed)
    rows = donor_rows(donor, features)
    model = fit_donor_forest(rows, list(CONDITIONING), list(IMPUTED), config.forest_config())
    x = features[list(CONDITIONING)].to_numpy(dtype=float)
    q = np.random.default_rng([config.seed, 31]).random(len(features))
    picked = draw_records(model, x, q)
    values = pd.DataFrame(model.values[picked], index=features.index, columns=list(IMPUTED))
    restricted, scaled = 0, 0
    ssi = features["ssi_reported"].to_numpy() if config.respect_reported_ssi else None
    if ssi is not None and ssi.any():
        limit = np.where(features["couple"], SSI_RESOURCE_LIMIT["couple"],
                         SSI_RESOURCE_LIMIT["single"])[ssi]  # fmt: skip
        capped, none = _ssi_restricted(model, x[ssi], q[ssi], limit)
        block = model.values[capped].copy()
        liquid = block[:, : len(PERSON_ASSETS)].sum(axis=1)
        shrink = np.where(none, np.minimum(1.0, limit / np.maximum(liquid, 1.0)), 1.0)
        block[:, : len(PERSON_ASSETS)] *= shrink[:, None]
        block[:, -1] = np.maximum(block[:, -1] - liquid * (1 - shrink), 0.0)
        values.loc[values.index[ssi]] = block
        restricted, scaled = int(ssi.sum()), int(none.sum())
    frame = write_assets(seed, values)
    frame.provenance["asset_imputation"] = {
        "donor": donor.source,
        "donor_kind": donor.provenance.get("kind"),
        "top_tail_kind": donor.provenance.get("top_tail", {}).get("kind"),
        "conditioning": list(CONDITIONING),
        "seed": config.seed,
        "method": "multi-output QRF (tax-donor machinery), whole donor record at q ~ U(0,1) "
        "of each household's net-worth-ordered conditional distribution",
    }
    report = AssetImputationReport(
        donor=donor.source,
        donor_kind=str(donor.provenance.get("kind")),
        conditioning=list(CONDITIONING),
        households=len(features),
        rows_fitted=len(model.values),
        ssi_households_restricted=restricted,
        ssi_households_scaled=scaled,
        evidence=asset_evidence(values, features, donor),
        totals=asset_totals(values, features, donor),
        notes=[
            "conditioning: reference person's age and household income rank (marital "
            "status, children and tenure are not in the published cross-tabs the donor uses)",
            "household draw on the reference tax unit: head and spouse share it equally; "
            "other members and other tax units hold none",
            f"{restricted} households reporting SSI drew within SSI's resource limit "
            f"({scaled} scaled to it: no record of their neighbourhood was within it)",
        ],
    )
    return frame, report


def write_assets(seed: ObservationFrame, values: pd.DataFrame) -> ObservationFrame:
    """net_worth on the household table; liquid assets on reference heads (and spouses)."""
    person = seed.tables["person"].reset_index(drop=True).copy()
    household = seed.tables["household"].copy()
    units = reference_units(seed).reindex(values.index)
    share = np.where(units["spouse_row"] >= 0, 0.5, 1.0)
    for variable in PERSON_ASSETS:
        column = np.zeros(len(person))
        amount = values[variable].to_numpy(dtype=float) * share
        column[units["head_row"].to_numpy()] = amount
        has_spouse = units["spouse_row"].to_numpy() >= 0
        column[units["spouse_row"].to_numpy()[has_spouse]] = amount[has_spouse]
        person[variable] = column
    household["net_worth"] = (
        household["household_id"].map(values["net_worth"]).fillna(0.0).to_numpy(dtype=float)
    )
    frame = ObservationFrame(
        source=seed.source, year=seed.year,
        tables={**seed.tables, "person": person, "household": household},
        links=seed.links, provenance=dict(seed.provenance),
    )  # fmt: skip
    frame.validate()
    return frame


def _income_group(rank: np.ndarray) -> np.ndarray:
    index = np.clip(np.searchsorted(INCOME_GROUP_BOUNDS, rank, side="right") - 1, 0, 5)
    return np.take(scf.INCOME_GROUPS, index)


def asset_evidence(
    values: pd.DataFrame, features: pd.DataFrame, donor: ObservationFrame
) -> pd.DataFrame:
    """Weighted holding rates and holders' medians by age and income group: imputed vs the
    published table where it has the figure (microdf weighted statistics)."""
    table, _ = scf.read_published_table()
    factors = donor.provenance.get("uprating_factors", {})
    frame = values.assign(weight=features["weight"], age=features["age_group"],
                          income=_income_group(features["income_rank"].to_numpy()))  # fmt: skip
    scf_asset = {"bank_account_assets": "transaction_accounts", "stock_assets": "stocks"}
    records = []
    for group_type, column in (("all", None), ("age", "age"), ("income", "income")):
        groups = frame.groupby(column) if column else [("all", frame)]
        for group, part in groups:
            weight = part["weight"].to_numpy(dtype=float)
            for variable in IMPUTED:
                amount = MicroSeries(part[variable].to_numpy(dtype=float), weights=weight)
                held = part[variable].to_numpy() > 0
                holders = MicroSeries(part[variable].to_numpy()[held], weights=weight[held])
                published = {}
                asset = scf_asset.get(variable)
                for measure, stat in (("holding_rate", "rate"), ("median_holders", "median")):
                    if asset and scf._has(table, measure, asset, group_type, group, 2022):
                        scale = 100 if stat == "rate" else 1 / factors.get(variable, 1.0)
                        published[stat] = scf.figure(table, measure, asset, group_type, group,
                                                     2022) / scale  # fmt: skip
                if variable == "net_worth" and group_type in ("all", "age"):
                    factor = factors.get("net_worth", 1.0)
                    published["median"] = scf.figure(table, "median", "net_worth", group_type,
                                                     group) * factor  # fmt: skip
                records.append({
                    "group_type": group_type, "group": group, "variable": variable,
                    "households_m": weight.sum() / 1e6,
                    "holding_rate": float(weight[held].sum() / weight.sum()),
                    "published_holding_rate": published.get("rate", np.nan),
                    "median": float(holders.median()) if held.any() else 0.0,
                    "median_all": float(amount.median()),
                    "published_median": published.get("median", np.nan),
                    "total_bn": float(amount.sum() / 1e9),
                })  # fmt: skip
    return pd.DataFrame(records)


def asset_totals(
    values: pd.DataFrame, features: pd.DataFrame, donor: ObservationFrame
) -> dict[str, float]:
    """Weighted totals ($bn) and the published SCF net worth total, uprated like the donor."""
    table, _ = scf.read_published_table()
    weight = features["weight"].to_numpy(dtype=float)
    totals = {f"{v}_bn": float(weight @ values[v].to_numpy(dtype=float) / 1e9) for v in IMPUTED}
    factor = donor.provenance.get("uprating_factors", {}).get("net_worth", 1.0)
    published = scf.figure(table, "families", "all") * 1e6 * scf.figure(table, "mean", "net_worth")
    totals["published_net_worth_bn"] = published * factor / 1e9
    totals["net_worth_ratio"] = totals["net_worth_bn"] / totals["published_net_worth_bn"]
    totals["households_m"] = float(weight.sum() / 1e6)
    totals["published_families_m"] = scf.figure(table, "families", "all")
    return totals
