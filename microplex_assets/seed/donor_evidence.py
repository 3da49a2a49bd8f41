"""Evidence of donor integration: where each variable comes from, weighted totals before
and after, and the held-out pinball loss of the forest against hot-deck and zero."""

from __future__ import annotations

import numpy as np
import pandas as pd

from microplex_assets.seed.donor_forest import (
    DERIVED_FROM_FILING_STATUS,
    _rng,
    conditional_quantiles,
    donor_unit_features,
    draw_records,
    fit_donor_forest,
)
from microplex_assets.seed.donor_inputs import (
    EVIDENCE_QUANTILES,
    NOT_IMPUTED_SOURCE,
    OVERRIDE_SOURCE,
    DonorIntegrationConfig,
    choose_conditioning,
    eligible_donor_rows,
    unit_weights,
)
from microplex_assets.seed.hot_deck import hot_deck, pinball_loss
from microplex_assets.sources import tax_records as tr
from microplex_assets.sources.frame import ObservationFrame


def donor_sources(
    donor: str, donor_columns: pd.Index, config: DonorIntegrationConfig
) -> dict[str, str]:
    """Variable -> where its values come from: the donor, or the scaffold and why."""
    sources = {v: donor for v in config.imputed}
    for variable in config.overrides:
        sources[variable] = OVERRIDE_SOURCE
    for variable in tr.TAX_RECORD_AMOUNTS:
        if variable in donor_columns:
            sources.setdefault(variable, NOT_IMPUTED_SOURCE)
    return sources


def _weighted_total(frame: ObservationFrame, variable: str) -> tuple[float, float]:
    """Weighted total and weighted share of tax units with a zero unit amount."""
    person = frame.tables["person"]
    weights = unit_weights(frame).set_axis(frame.tables["tax_unit"]["tax_unit_id"])
    if variable not in person.columns:
        return 0.0, 1.0
    amount = person.groupby("tax_unit_id")[variable].sum().reindex(weights.index, fill_value=0)
    total = float((amount * weights).sum())
    return total, float(weights[amount == 0].sum() / weights.sum())


def totals_table(
    before: ObservationFrame, after: ObservationFrame, rows: pd.DataFrame, imputed: list[str]
) -> pd.DataFrame:
    """Weighted totals and zero shares per imputed variable: scaffold, imputed, donor."""
    weight = rows[tr.WEIGHT].to_numpy(dtype=float)
    records = []
    for variable in imputed:
        scaffold_total, scaffold_zero = _weighted_total(before, variable)
        imputed_total, imputed_zero = _weighted_total(after, variable)
        donor_values = rows[variable].to_numpy(dtype=float)
        records.append(
            {
                "variable": variable,
                "scaffold_total": scaffold_total,
                "imputed_total": imputed_total,
                "imputed_over_scaffold": imputed_total / scaffold_total
                if scaffold_total
                else float("nan"),
                "donor_total": float(weight @ donor_values),
                "scaffold_zero_share": scaffold_zero,
                "imputed_zero_share": imputed_zero,
                "donor_zero_share": float(weight[donor_values == 0].sum() / weight.sum()),
            }
        )
    return pd.DataFrame(records)


# --- evidence --------------------------------------------------------------------------


def imputation_evidence(
    donor: ObservationFrame,
    config: DonorIntegrationConfig | None = None,
    conditioning: list[str] | None = None,
    rows: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Held-out pinball loss and total ratios per imputed variable: QRF, hot-deck, zero.

    A seeded ``held_out_share`` of eligible donor rows plays the scaffold: the forest is
    fitted on the rest and predicts the held-out rows from the conditioning variables
    only. Losses are divided by the held-out weighted mean |value| so variables compare.
    Without ``conditioning`` the donor-side candidates that vary are used.
    """
    config = config or DonorIntegrationConfig()
    if rows is None:
        rows, _ = eligible_donor_rows(donor, config)
    if conditioning is None:
        known = set(rows.columns) | set(DERIVED_FROM_FILING_STATUS)
        names = [c for c in config.conditioning if c in known]
        candidates = donor_unit_features(rows, names)
        conditioning, _ = choose_conditioning(candidates, rows, config)
    imputed = list(dict.fromkeys(config.imputed))
    order = _rng(config, 4).permutation(len(rows))
    held = max(1, min(len(rows) - 2, round(config.held_out_share * len(rows))))
    test, train = rows.iloc[order[:held]], rows.iloc[order[held:]].reset_index(drop=True)
    model = fit_donor_forest(train, conditioning, imputed, config)
    x = donor_unit_features(test, conditioning).to_numpy(dtype=float)
    qrf_quantiles = conditional_quantiles(model, x, EVIDENCE_QUANTILES)
    qrf_draw = model.values[draw_records(model, x, _rng(config, 5).random(len(test)))]
    deck_quantiles, deck_draw = hot_deck(train, test, imputed, EVIDENCE_QUANTILES, _rng(config, 6))
    actual = test[imputed].to_numpy(dtype=float)
    weight = test[tr.WEIGHT].to_numpy(dtype=float)
    zero = np.zeros((len(test), len(EVIDENCE_QUANTILES)))
    records = []
    for j, variable in enumerate(imputed):
        scale = float(weight @ np.abs(actual[:, j]) / weight.sum())
        total = float(weight @ actual[:, j])

        def loss(predicted: np.ndarray, j: int = j, scale: float = scale) -> float:
            value = pinball_loss(actual[:, j], predicted, weight, EVIDENCE_QUANTILES)
            return value / scale if scale > 0 else float("nan")

        def ratio(drawn: np.ndarray, total: float = total) -> float:
            return float(weight @ drawn) / total if total else float("nan")

        qrf, deck, none = loss(qrf_quantiles[:, j]), loss(deck_quantiles[:, j]), loss(zero)
        records.append(
            {
                "variable": variable,
                "qrf_loss": qrf,
                "hot_deck_loss": deck,
                "zero_loss": none,
                "qrf_beats_hot_deck": bool(qrf < deck),
                "qrf_beats_zero": bool(qrf < none),
                "qrf_total_ratio": ratio(qrf_draw[:, j]),
                "hot_deck_total_ratio": ratio(deck_draw[:, j]),
                "zero_total_ratio": 0.0 if total else float("nan"),
                "heldout_zero_share": float(weight[actual[:, j] == 0].sum() / weight.sum()),
                "qrf_zero_share": float(weight[qrf_draw[:, j] == 0].sum() / weight.sum()),
                "heldout_mean_abs": scale,
                "heldout_rows": len(test),
                "train_rows": len(train),
            }
        )
    return pd.DataFrame(records)
