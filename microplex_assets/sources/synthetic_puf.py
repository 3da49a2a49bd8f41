"""The embedded PUF-like tax-record donor, synthesized from published IRS SOI aggregates.

No IRS Public Use File can be had in this build, so while none is configured the donor
stage uses this stand-in. It is *not* tax or survey data: every return is drawn so that
weighted totals reproduce the carried SOI table (Publication 1304 Tables 1.1, 1.2, 1.4
and 2.1, ``soi_targets.csv``) and nothing else. Provenance says ``kind="synthetic"``.

How it is built (all-returns rows only, ``Taxable only == False``):

- Cells are AGI band x filing status (Table 1.2). ``records`` are spread over the cells
  in proportion to sqrt(returns x |AGI|) with a floor, so the top bands get many more
  records per return than the middle (the top tail is resolved); each record's weight is
  cell returns / cell records, so weighted return counts are SOI's exactly.
- AGI is drawn inside each cell's band and rescaled so the cell's weighted AGI is SOI's:
  a power-of-uniform inside bounded bands, lognormal below zero, Pareto above $10m.
- Each amount is given, band by band, to returns chosen in descending order of a random
  key (rising with AGI inside the band and sharing latent "wealth", "business",
  "retirement" and "itemizer" factors so items co-occur) until their weight equals SOI's
  count of returns with the item. The one return at the boundary is split in two (same
  values, weights summing to the original) so holder counts are exact; this adds at most
  one record per item and band. Amounts of the AGI components a return holds share its
  |AGI| (each in proportion to SOI's mean per holder in the band, with lognormal noise),
  so one return's components add to about its AGI; each item is then scaled so its band
  total is SOI's. Items outside AGI (exempt interest, Schedule A) are sized to AGI.
- Losses are separate SOI columns with their own holders (disjoint from the income
  holders of the same item) and negative amounts.

SOI columns to donor inputs (policyengine-us names):

- employment_income -> employment_income_before_lsr; taxable_interest_income;
  exempt_interest -> tax_exempt_interest_income; taxable_pension_income ->
  taxable_private_pension_income (SOI's column includes government pensions);
  ira_distributions -> taxable_ira_distributions; unemployment_compensation.
- ordinary_dividends and qualified_dividends: qualified holders are a subset of ordinary
  holders, qualified <= ordinary per return; non_qualified = ordinary - qualified.
- capital_gains_gross / capital_gains_losses (Schedule D net gain / limited net loss)
  are split into long- and short-term with LONG_TERM_SHARE; capital_gains_distributions
  (reported without Schedule D, so their holders are disjoint) -> non_sch_d_capital_gains,
  kept apart so SOI's distribution targets have support (PolicyEngine taxes them as
  long-term gains). Losses stay within the $3,000 ($1,500 separate) limit SOI's amounts
  are after.
- s_corporation_net_income/losses -> s_corp_income; partnership_income is SOI's combined
  partnership + S-corporation column minus the S-corporation column, for counts too (the
  combined count adds the two return counts; see targets/soi.py).
- business_net_profits/losses -> self_employment_income_before_lsr;
  rent_and_royalty_net_income/losses -> rental_income (royalties included).
- estate_income/estate_losses (estates and trusts) -> estate_income, drawn last with a
  generator of its own (``_estates``), so the columns above do not change with it.
- Itemized deductions use Table 2.1's bands: charitable_contributions_deductions is
  split into cash and non-cash with NON_CASH_SHARE; itemized_real_estate_tax_deductions
  -> real_estate_taxes; mortgage_interest_deductions -> home_mortgage_interest;
  medical_expense_deductions_uncapped -> other_medical_expenses. Only itemizers carry
  them (as on a real PUF).

The rest of AGI (taxable Social Security, other income, estates, less adjustments) is an
implicit residual AGI - sum(components); only the estate part of it is exported. In the
no-AGI band and low bands components can exceed AGI, as they do on real returns with
offsetting losses.

Demographics are assumptions, not SOI facts (the calibration stage fixes totals): see
``draw_ages`` and ``draw_dependents``. Joint filers and surviving spouses, which SOI combines,
are all MARS 2.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from microplex_assets.files import file_sha256
from microplex_assets.sources.frame import ObservationFrame
from microplex_assets.sources.soi_bands import (
    ITEMIZED_SOI,
    band_lows,
    banded,
    choose_soi_year,
    read_soi_table,
    soi_facts,
)
from microplex_assets.sources.synthetic_puf_evidence import reproduction_summary, soi_reproduction
from microplex_assets.sources.synthetic_puf_returns import (
    MIN_SCALE,
    Context,
    Item,
    Returns,
    Uprate,
    band_cells,
    draw_ages,
    draw_dependents,
    holder_amounts,
    holder_key,
    holders,
    initial_returns,
    raw_amounts,
    uprate_amounts,
)
from microplex_assets.sources.tax_records import (
    AGI,
    FILING_STATUS,
    ID,
    REQUIRED_COLUMNS,
    TAX_RECORD_AMOUNTS,
    TAX_UNIT_TABLE,
    WEIGHT,
    validate_tax_records,
)

SOURCE = "synthetic_puf"
LABEL = (
    "Synthetic tax records drawn to reproduce published IRS SOI aggregates "
    "(Publication 1304 Tables 1.1, 1.2, 1.4, 2.1); not survey or tax data"
)
# Share of a Schedule D net gain (or limited loss) that is long-term. A modelling
# assumption: SOI's Sales of Capital Assets studies (SOI Bulletin, e.g. tax years
# 1999-2015) show net long-term gains as nearly all of net gains, short-term net gains a
# few percent. Capital gain distributions are long-term by law (1099-DIV box 2a).
LONG_TERM_SHARE = 0.95
# Non-cash share of itemized charitable deductions: TY2017 itemizers reported $88.1bn of
# non-cash gifts (SOI Bulletin Fall 2019, Williams & Wilson) of about $256bn deducted
# (Table 2.1), i.e. about one third; 23.2m of the ~37m returns with gifts had non-cash
# gifts (NON_CASH_HOLDER_SHARE of holders carry a non-cash part).
NON_CASH_SHARE = 0.34
NON_CASH_HOLDER_SHARE = 0.6
CAPITAL_LOSS_LIMIT = 3_000.0  # IRC 1211(b); 1,500 for married filing separately


_W, _B, _R, _I = "_wealth", "_business", "_retire", "_itemizer"
# AGI components, in selection order. Losses are chosen among the item's non-earners;
# capital gain distributions (no Schedule D) among returns with no net gain or loss.
_COMPONENTS: tuple[Item, ...] = (
    Item("employment_income", ((_R, -0.8),), 0.2, 0.5),
    Item("taxable_interest_income", ((_W, 1.0),), 0.6, 1.2),
    Item("taxable_pension_income", ((_R, 1.2),)),
    Item("ira_distributions", ((_R, 1.0),)),
    Item("unemployment_compensation", ((_R, -0.5),), -0.3, 0.5),
    Item("business_net_profits", ((_B, 1.0),), 0.8, 1.0),
    Item("business_net_losses", ((_B, 1.0),), 0.3, 1.2),
    Item("s_corporation_net_income", ((_B, 1.0), (_W, 0.5)), 0.8, 1.0),
    Item("s_corporation_net_losses", ((_B, 1.0), (_W, 0.5)), 0.3, 1.2),
    Item("partnership_income", ((_B, 1.0), (_W, 0.5)), 0.8, 1.0),
    Item("partnership_losses", ((_B, 1.0), (_W, 0.5)), 0.3, 1.2),
    Item("rent_and_royalty_net_income", ((_W, 1.0),), 0.8, 1.0),
    Item("rent_and_royalty_net_losses", ((_W, 1.0),), 0.3, 1.2),
    Item("ordinary_dividends", ((_W, 1.2),), 0.8, 1.3),
    Item("capital_gains_gross", ((_W, 1.5),), 1.0, 1.5),
    Item("capital_gains_distributions", ((_W, 0.8),), 0.3, 1.0),
)
_EXCLUSIVE: dict[str, tuple[str, ...]] = {  # chosen among returns holding none of these
    "business_net_losses": ("business_net_profits",),
    "s_corporation_net_losses": ("s_corporation_net_income",),
    "partnership_losses": ("partnership_income",),
    "rent_and_royalty_net_losses": ("rent_and_royalty_net_income",),
    "capital_gains_losses": ("capital_gains_gross",),
    "capital_gains_distributions": ("capital_gains_gross", "capital_gains_losses"),
    "estate_losses": ("estate_income",),
}
_EXEMPT = Item("exempt_interest", ((_W, 1.2),), 0.8, 1.2)
_QUALIFIED = Item("qualified_dividends", ((_W, 1.2),), 0.8)
_CAPITAL_LOSS = Item("capital_gains_losses", ((_W, 1.5),), 0.3)
# Estate and trust income / loss (Table 1.4): part of the AGI residual, not of the composed
# components; drawn last, with a generator of its own, so no other column changes.
_ESTATE = (Item("estate_income", ((_W, 1.2),), 0.8, 1.2),
           Item("estate_losses", ((_W, 1.0),), 0.3, 1.2))  # fmt: skip
_SCHEDULE_A: tuple[tuple[Item, str], ...] = (
    (Item("itemized_real_estate_tax_deductions", ((_I, 1.5),)), "real_estate_taxes"),
    (Item("mortgage_interest_deductions", ((_I, 1.5),), 0.3), "home_mortgage_interest"),
    (Item("medical_expense_deductions_uncapped", ((_I, 1.0), (_R, 0.7)), -0.3, 1.2),
     "other_medical_expenses"),
)  # fmt: skip
_PLAIN_COLUMNS = {
    "employment_income": "employment_income_before_lsr",
    "taxable_interest_income": "taxable_interest_income",
    "taxable_pension_income": "taxable_private_pension_income",
    "ira_distributions": "taxable_ira_distributions",
    "unemployment_compensation": "unemployment_compensation",
}
_SIGNED_COLUMNS = {  # donor column: (income item, loss item)
    "self_employment_income_before_lsr": ("business_net_profits", "business_net_losses"),
    "s_corp_income": ("s_corporation_net_income", "s_corporation_net_losses"),
    "partnership_income": ("partnership_income", "partnership_losses"),
    "rental_income": ("rent_and_royalty_net_income", "rent_and_royalty_net_losses"),
}


def _partnership_targets(ctx: Context) -> dict[str, tuple[dict, dict]]:
    """Partnership = SOI's partnership + S-corp column less the S-corp column (counts too:
    the combined count adds the two return counts)."""
    out = {}
    for name, combined, s_corp in (
        ("partnership_income", "partnership_and_s_corp_income", "s_corporation_net_income"),
        ("partnership_losses", "partnership_and_s_corp_losses", "s_corporation_net_losses"),
    ):
        (c_all, a_all), (c_s, a_s) = ctx.targets(combined), ctx.targets(s_corp)
        out[name] = (
            {b: max(c_all[b] - c_s.get(b, 0.0), 0.0) for b in c_all},
            {b: max(a_all[b] - a_s.get(b, 0.0), 0.0) for b in a_all},
        )
    return out


def _flag(name: str) -> str:
    return f"_has_{name}"


def _select(ctx: Context, ret: Returns, item: Item, eligible: np.ndarray | None = None):
    """Mark holders of ``item`` (column ``_has_<soi>``), returns outside ``_EXCLUSIVE``
    first; splits boundary returns, so masks must be re-read from columns afterwards."""
    itemized = item.soi in ITEMIZED_SOI
    counts, _ = ctx.targets(item.soi)
    band = ctx.band(ret, itemized)
    if eligible is None:
        eligible = np.ones(len(ret), dtype=bool)
    for other in _EXCLUSIVE.get(item.soi, ()):
        eligible = eligible & (ret[_flag(other)] == 0)
    ret[_flag(item.soi)] = np.zeros(len(ret))
    mask = holders(ret, band, counts, holder_key(ret, band, item, ctx.rng), eligible)
    ret[_flag(item.soi)] = mask.astype(float)


def _fill(
    ctx: Context, ret: Returns, item: Item, raw: np.ndarray, cap: np.ndarray | None = None
) -> np.ndarray:
    """Amounts on ``item``'s holders, shaped by ``raw``, scaled to SOI's band totals."""
    itemized = item.soi in ITEMIZED_SOI
    mask = ret[_flag(item.soi)] > 0
    _, totals = ctx.targets(item.soi)
    return holder_amounts(ret, mask, ctx.band(ret, itemized), totals, raw, cap)


def _give(ctx: Context, ret: Returns, item: Item) -> np.ndarray:
    """Select holders and give them AGI-proportional amounts (items outside AGI)."""
    _select(ctx, ret, item)
    return _fill(ctx, ret, item, raw_amounts(ret, ctx.rng, item.sigma))


def _compose(ctx: Context, ret: Returns) -> dict[str, np.ndarray]:
    """Amounts of the AGI components a return holds, sharing |AGI| between them.

    Each held item's share is its SOI mean per holder in the band times lognormal noise,
    normalised over the items the return holds, so one return's components add to about
    |AGI| instead of each being sized to AGI independently; band totals are then exact.
    """
    band = ctx.band(ret)
    shares = {}
    for item in _COMPONENTS:
        counts, totals = ctx.targets(item.soi)
        mean = {b: totals[b] / counts[b] for b in counts if counts[b] > 0}
        per_holder = np.vectorize(lambda b, m=mean: m.get(int(b), 0.0))(band)
        noise = ctx.rng.lognormal(-(item.sigma**2) / 2, item.sigma, len(ret))
        shares[item.soi] = ret[_flag(item.soi)] * per_holder * noise
    held = sum(shares.values())
    scale = np.maximum(np.abs(ret[AGI]), MIN_SCALE) / np.where(held > 0, held, 1.0)
    return {item.soi: _fill(ctx, ret, item, shares[item.soi] * scale) for item in _COMPONENTS}


def _loss_limit(ret: Returns) -> np.ndarray:
    return np.where(ret[FILING_STATUS] == 3, CAPITAL_LOSS_LIMIT / 2, CAPITAL_LOSS_LIMIT)


# ---------------------------------------------------------------- items


def _income(ctx: Context, ret: Returns) -> None:
    """All AGI components, dividends and capital gains included, plus exempt interest."""
    for item in _COMPONENTS[:-1]:
        _select(ctx, ret, item)
        if item.soi == "capital_gains_gross":  # losses come between gains and distributions
            _select(ctx, ret, _CAPITAL_LOSS)
    _select(ctx, ret, _COMPONENTS[-1])
    _select(ctx, ret, _QUALIFIED, eligible=ret[_flag("ordinary_dividends")] > 0)
    amounts = _compose(ctx, ret)
    for soi, column in _PLAIN_COLUMNS.items():
        ret[column] = amounts[soi]
    for column, (income, loss) in _SIGNED_COLUMNS.items():
        ret[column] = amounts[income] - amounts[loss]
    ordinary = amounts["ordinary_dividends"]
    shape = ordinary * ctx.rng.uniform(0.5, 1.0, len(ret))
    qualified = _fill(ctx, ret, _QUALIFIED, shape, cap=ordinary)
    ret["qualified_dividend_income"] = qualified
    ret["non_qualified_dividend_income"] = np.maximum(ordinary - qualified, 0.0)
    limit = _loss_limit(ret)
    loss = _fill(ctx, ret, _CAPITAL_LOSS, limit * ctx.rng.beta(3.0, 1.5, len(ret)), limit)
    net = amounts["capital_gains_gross"] - loss
    ret["long_term_capital_gains_before_response"] = LONG_TERM_SHARE * net
    ret["non_sch_d_capital_gains"] = amounts["capital_gains_distributions"]
    ret["short_term_capital_gains"] = (1 - LONG_TERM_SHARE) * net
    ret["tax_exempt_interest_income"] = _give(ctx, ret, _EXEMPT)


def _itemized(ctx: Context, ret: Returns) -> None:
    """Schedule A items by Table 2.1 band; charitable split into cash and non-cash."""
    gifts = _give(ctx, ret, Item(ITEMIZED_SOI[0], ((_I, 1.5),), 0.8, 1.2))
    has_non_cash = (gifts > 0) & (ctx.rng.random(len(ret)) < NON_CASH_HOLDER_SHARE)
    weighted = ret[WEIGHT] * gifts
    share = min(1.0, NON_CASH_SHARE * weighted.sum() / max(weighted[has_non_cash].sum(), 1.0))
    non_cash = np.where(has_non_cash, gifts * share, 0.0)
    ret["charitable_non_cash_donations"] = non_cash
    ret["charitable_cash_donations"] = gifts - non_cash
    for item, column in _SCHEDULE_A:
        ret[column] = _give(ctx, ret, item)


def _estates(ctx: Context, ret: Returns, seed: int) -> None:
    """``estate_income`` = SOI estate and trust income less losses, each held by SOI's count
    of returns per band with SOI's band total (a return holds one or the other)."""
    own = replace(ctx, rng=np.random.default_rng([seed, zlib.crc32(b"estate_income")]))
    income, loss = _ESTATE
    ret["estate_income"] = _give(own, ret, income)
    losses = _give(own, ret, loss)  # may split returns: read the income column after it
    ret["estate_income"] = ret["estate_income"] - losses


# ---------------------------------------------------------------- the donor


def synthesize_tax_records(
    year: int,
    records: int = 50_000,
    seed: int = 1456,
    soi_year: int | None = None,
    uprate: Uprate | None = None,
    *,
    soi_path: Path | None = None,
) -> ObservationFrame:
    """A PUF-like tax-record donor whose weighted SOI-year totals reproduce the SOI table.

    ``uprate(variable, soi_year, year)`` gives a factor per amount column (and AGI);
    weights stay SOI-year return counts (the calibration stage reweights to the build
    year). ``records`` returns are drawn; boundary splits add up to one per item and band.
    """
    started = time.perf_counter()
    table, path = read_soi_table(soi_path)
    facts = soi_facts(table)
    chosen = choose_soi_year(facts, year, soi_year)
    rng = np.random.default_rng(seed)
    cells = band_cells(facts, chosen)
    ctx = Context(
        facts,
        chosen,
        band_lows(banded(facts, chosen, "count")),
        band_lows(banded(facts, chosen, ITEMIZED_SOI[0])),
        rng,
        {},
    )
    ctx.derived.update(_partnership_targets(ctx))
    ret = initial_returns(cells, records, rng)
    _income(ctx, ret)
    _itemized(ctx, ret)
    _estates(ctx, ret, seed)
    head, spouse = draw_ages(ret, rng)
    frame_table = pd.DataFrame(
        {
            ID: np.arange(1, len(ret) + 1),
            WEIGHT: ret[WEIGHT],
            FILING_STATUS: ret[FILING_STATUS].astype(int),
            "age_head": head,
            "age_spouse": spouse,
            "count_dependents": draw_dependents(ret[FILING_STATUS], head, rng),
            AGI: ret[AGI],
            **{column: ret[column] for column in TAX_RECORD_AMOUNTS},
        }
    )[list(REQUIRED_COLUMNS)]
    uprating = uprate_amounts(frame_table, chosen, year, uprate)
    frame = ObservationFrame(
        source=SOURCE,
        year=year,
        tables={TAX_UNIT_TABLE: frame_table},
        links={},
        provenance={
            "kind": "synthetic",
            "label": LABEL,
            "file": str(path),
            "sha256": file_sha256(path),
            "soi_year": chosen,
            "seed": seed,
            "records": records,
            "rows": len(frame_table),
            "boundary_splits": len(frame_table) - records,
            "uprating": uprating,
            "assumptions": {
                "long_term_share_of_schedule_d": LONG_TERM_SHARE,
                "non_cash_share_of_charitable": NON_CASH_SHARE,
                "non_cash_holder_share": NON_CASH_HOLDER_SHARE,
                "capital_loss_limit": CAPITAL_LOSS_LIMIT,
                "surviving_spouse": "SOI combines them with joint filers: all MARS 2",
                "weights": "SOI-year return counts (not scaled to the build year)",
            },
        },
    )
    validate_tax_records(frame)
    reproduction = soi_reproduction(frame, soi_path=soi_path)
    frame.provenance["reproduction"] = reproduction_summary(reproduction).to_dict("records")
    frame.provenance["seconds"] = round(time.perf_counter() - started, 3)
    return frame
