"""Small matplotlib charts for asset metadata: saved as PNG and embedded as markdown."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np
import pandas as pd  # noqa: E402


def grouped_bar_png(table: pd.DataFrame, category: str, title: str, ylabel: str) -> bytes:
    """A grouped bar chart of every numeric column of ``table`` by ``category``."""
    figure, axis = plt.subplots(figsize=(8, 3.6), dpi=100)
    table.set_index(category).plot.bar(ax=axis, rot=0)
    axis.set_title(title)
    axis.set_ylabel(ylabel)
    axis.set_xlabel("")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def save_png(png: bytes, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path


def png_markdown(png: bytes, alt: str) -> str:
    """Markdown that shows the PNG inline in the Dagster UI."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def loss_curves_png(
    histories: dict[str, pd.DataFrame], title: str, chosen: dict[str, int] | None = None
) -> bytes:
    """Train (solid) and held-out (dashed) loss per epoch for each method, log scale; a
    dotted line marks each method's returned epoch. A chi-square path (a history with an
    ``alpha`` column, one row per pull strength) gets its own panel against alpha."""
    paths = {m: h for m, h in histories.items() if "alpha" in h}
    epochs = {m: h for m, h in histories.items() if "alpha" not in h}
    panels = [p for p in (epochs, paths) if p]
    figure, axes = plt.subplots(
        1, max(len(panels), 1), figsize=(8 * max(len(panels), 1), 4), dpi=100
    )
    axes = np.atleast_1d(axes)
    colors = {method: f"C{number}" for number, method in enumerate(histories)}
    for axis, panel in zip(axes, panels, strict=False):
        along = "alpha" if panel is paths else "epoch"
        for method, history in panel.items():
            color = colors[method]
            x = history[along]
            axis.plot(
                x,
                history["train_loss"],
                color=color,
                marker="o" if along == "alpha" else None,
                label=f"{method} train",
            )
            axis.plot(
                x, history["holdout_loss"], color=color, linestyle="--", label=f"{method} held-out"
            )
            if chosen and method in chosen:
                mark = history.loc[history["epoch"] == chosen[method], along]
                if len(mark):
                    axis.axvline(
                        float(mark.iloc[0]),
                        color=color,
                        linestyle=":",
                        linewidth=1,
                        label=f"{method} returned {along} {float(mark.iloc[0]):g}",
                    )
        axis.set_yscale("log")
        if along == "alpha":
            axis.set_xscale("log")
            axis.invert_xaxis()  # weaker pull to the right, as later epochs are
            axis.set_xlabel("chi-square pull alpha (the path runs right)")
        else:
            axis.set_xlabel("epoch")
        axis.set_ylabel("target loss")
        axis.set_title(title if along == "epoch" else f"{title}: the chi-square path")
        axis.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
