"""Stage 9 microsimulation benchmark report: a markdown table and a decile chart.

Both put the datasets side by side per reform, since the question the suite answers is
how far the candidate's weights move a reform's estimated effects from the eCPS-method
weights on the same records.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from microplex_assets.validation.microsim.outputs import IMPACT_COLUMNS  # noqa: E402

# column of impacts_table -> (header, factor for display); shares are shown in percent.
METRICS: dict[str, tuple[str, float]] = {
    "budget_impact_bn": ("budget $bn", 1.0),
    "income_tax_change_bn": ("income tax $bn", 1.0),
    "household_net_income_change_bn": ("net income $bn", 1.0),
    "gain_more_than_1pct": ("% gain >1%", 100.0),
    "lose_more_than_1pct": ("% lose >1%", 100.0),
    "spm_poverty_rate_change_pp": ("SPM poverty pp", 1.0),
    "child_spm_poverty_rate_change_pp": ("child SPM poverty pp", 1.0),
}


def impacts_markdown(table: pd.DataFrame) -> str:
    """One row per reform; for each metric, one column per dataset label (in table order)."""
    reforms = list(pd.unique(table["reform"]))
    datasets = list(pd.unique(table["dataset"]))
    wide = pd.DataFrame(index=pd.Index(reforms, name="reform"))
    for column in IMPACT_COLUMNS:
        header, factor = METRICS[column]
        values = table.pivot(index="reform", columns="dataset", values=column)
        values = values.reindex(index=reforms, columns=datasets)
        for dataset in datasets:
            wide[f"{header}: {dataset}"] = values[dataset] * factor
    return wide.reset_index().to_markdown(index=False, floatfmt=".2f")


def decile_table(results: dict[str, dict[str, dict]], reform_id: str) -> pd.DataFrame:
    """Relative change of household net income (%) by decile, one column per dataset."""
    table = pd.DataFrame({"decile": range(1, 11)})
    for dataset, impacts in results[reform_id].items():
        changes = {row["decile"]: row["relative_change"] for row in impacts["deciles"]}
        table[dataset] = [100 * changes.get(decile, math.nan) for decile in table["decile"]]
    return table


def decile_chart_png(results: dict[str, dict[str, dict]], reform_ids: Sequence[str]) -> bytes:
    """Per reform, grouped bars of relative change by baseline-income decile per dataset.

    Same drawing as ``microplex_assets.plots.grouped_bar_png``, but that helper makes one
    figure per table and this needs one panel per reform in a single image.
    """
    if not reform_ids:
        raise ValueError("no reforms to chart")
    columns = min(2, len(reform_ids))
    rows = math.ceil(len(reform_ids) / columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(5 * columns, 2.8 * rows), dpi=80, squeeze=False
    )
    for axis, reform_id in zip(axes.flat, reform_ids, strict=False):
        decile_table(results, reform_id).set_index("decile").plot.bar(ax=axis, rot=0)
        axis.axhline(0, color="black", linewidth=0.5)
        axis.set_title(reform_id, fontsize=9)
        axis.set_xlabel("baseline net income decile")
        axis.set_ylabel("% change in net income")
        axis.legend(fontsize=7)
    for axis in axes.flat[len(reform_ids) :]:
        axis.set_visible(False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
