"""The readiness dashboard: one self-contained HTML page (inline CSS and SVG, no scripts,
no network) rendered from the run index, so "is the candidate ready to replace the
eCPS?" is answered by opening a file rather than reading logs.

Per cell (national|US first): which bundle is current; the latest candidate's losses
against the eCPS-method baseline (and the pinned baseline where recorded); records,
nonzero weights, ESS, largest weight share, H5 size; every gate as a pass / fail / warn
/ unmeasured cell (unmeasured: a gate some run of the cell measured but this one did
not); top family wins and losses; the benchmark suite's budget impacts; and the loss
and failing-gate history over runs as an SVG plot beside the run table.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from microplex_assets.files import write_atomic
from microplex_assets.release.index import INDEX_NAME, table
from microplex_assets.release.pointer import artifacts_root

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;
font-size:.85em;text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}
td.pass{background:#c8f0c8}td.fail{background:#f6b8b8}td.warn{background:#fbe3a8}
td.unmeasured{background:#ddd;color:#555}.cur{font-weight:bold}.row{display:flex;gap:2em;
flex-wrap:wrap;align-items:flex-start}.note{color:#666;font-size:.85em}
"""
SPLITS = ("train", "validation", "test", "held_out")


def _fmt(value: Any, digits: int = 4) -> str:
    """A cell's text: numbers from the index arrive as numpy scalars (``numpy.int64`` is
    no ``int``), and counts such as ESS or households above 10,000 read as 13,412, not
    1.341e+04."""
    if value is None or (isinstance(value, float | np.floating) and pd.isna(value)):
        return "–"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, Integral):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    if isinstance(value, Real):
        value = float(value)
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.{digits}g}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]], classes: list[list[str]] | None = None) -> str:
    left = {0} | {c for c, css in enumerate(classes[0] if classes else []) if css == "l"}
    head = "".join(
        f"<th class='l'>{escape(h)}</th>" if i in left else f"<th>{escape(h)}</th>"
        for i, h in enumerate(header)
    )  # a text column's heading sits over its text (gate, source, summary)
    body = []
    for r, row in enumerate(rows):
        cells = []
        for c, value in enumerate(row):
            css = (classes[r][c] if classes else "") or ("l" if c == 0 else "")
            cells.append(f"<td class='{css}'>{escape(_fmt(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


HISTORY_SERIES = {"train": "#1f77b4", "validation": "#2ca02c", "test": "#d62728"}


def history_svg(runs: pd.DataFrame, width: int = 460, height: int = 170) -> str:
    """Candidate train / validation / test loss (lines; a split no run of the cell has, such
    as a local shard's test, is left out of the plot and its legend) and blocking failures
    (bars) over runs, each run labelled by its short run id, the current one in bold."""
    if runs.empty:
        return ""
    shown = {s: c for s, c in HISTORY_SERIES.items() if s in runs and runs[s].notna().any()}
    values = [v for s in shown for v in runs[s].dropna()]
    top = max(values + [1e-9]) * 1.1
    n = len(runs)
    base = height - 30  # the x axis; run labels below it
    x = [50 + (width - 100) * (i / max(n - 1, 1)) for i in range(n)]  # room for labels
    parts = [
        f"<svg width='{width}' height='{height}' role='img' aria-label='loss and gate history'>",
        f"<line x1='30' y1='{base}' x2='{width - 10}' y2='{base}' stroke='#999'/>",
    ]
    most = max(int(runs["blocking_failures"].max() or 0), 1)
    for xi, fails in zip(x, runs["blocking_failures"], strict=True):
        h = (base - 20) * 0.4 * (fails or 0) / most
        parts.append(
            f"<rect x='{xi - 4:.1f}' y='{base - h:.1f}' width='8' "
            f"height='{h:.1f}' fill='#f6b8b8'><title>{fails} failing</title></rect>"
        )
    if n <= 8:  # more would overlap; each point's title still names its run
        for xi, key, current in zip(x, runs["run_key"], runs["is_current"], strict=True):
            weight = " font-weight='bold'" if current else ""
            label = escape(str(key).rsplit("-", 1)[-1]) + (" (current)" if current else "")
            parts.append(
                f"<text x='{xi:.1f}' y='{base + 14}' font-size='9' text-anchor='middle'"
                f"{weight}>{label}</text>"
            )
    for name, colour in shown.items():
        points = [(xi, v, k) for xi, v, k in zip(x, runs[name], runs["run_key"], strict=True)
                  if pd.notna(v)]  # fmt: skip
        y = {xi: base - (base - 20) * v / top for xi, v, _ in points}
        coords = " ".join(f"{xi:.1f},{y[xi]:.1f}" for xi, _, _ in points)
        parts.append(
            f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{coords}'/>"
        )
        parts += [
            f"<circle cx='{xi:.1f}' cy='{y[xi]:.1f}' r='3' fill='{colour}'>"
            f"<title>{escape(str(key))} {name} {v:.4g}</title></circle>"
            for xi, v, key in points
        ]
    legend = " ".join(f"<tspan fill='{c}'>{s}</tspan>" for s, c in shown.items())
    parts.append(
        f"<text x='32' y='12' font-size='11'>loss (max {top:.3g}): {legend or 'none recorded'}"
        "; bars: failing blocking gates</text></svg>"
    )
    return "".join(parts)


def _cell_section(index: Path, product: str, geography: str) -> str:
    where = "product = ? AND geography = ?"
    cell = [product, geography]
    runs = table(index, f"SELECT * FROM bundles WHERE {where} ORDER BY run_key", cell)
    losses = table(index, f"SELECT * FROM losses WHERE {where}", cell)
    gates = table(index, f"SELECT * FROM gates WHERE {where}", cell)
    latest = runs.iloc[-1]
    key = latest["run_key"]
    current = runs.loc[runs["is_current"], "run_key"].tolist()
    out = [
        f"<h2 id='{escape(product)}-{escape(geography)}'>{escape(product)}|"
        f"{escape(geography)}</h2>",
        f"<p>current: <span class='cur'>{escape(current[0]) if current else 'none'}</span>"
        f"; latest candidate: <b>{escape(key)}</b> ({len(runs)} run bundles)</p>",
    ]
    mine = losses[losses["run_key"] == key]
    methods = [
        m for m in ("candidate", "ecps_method", "pinned_baseline") if m in set(mine["method"])
    ]
    methods += sorted(set(mine["method"]) - set(methods))
    grid = mine.pivot_table(index="method", columns="split", values="loss", aggfunc="first")
    loss_rows = [
        [m, *[grid.loc[m].get(s) if m in grid.index else None for s in SPLITS]] for m in methods
    ]
    facts = [
        ["weights", _weights_label(latest["loss_record"])],
        ["households", latest["households"]],
        ["nonzero weights", latest["nonzero_weights"]],
        ["ESS", latest["effective_sample_size"]],
        ["largest weight share", latest["largest_weight_share"]],
        ["H5 MiB", None if pd.isna(latest["h5_size_bytes"]) else latest["h5_size_bytes"] / 2**20],
        ["loss record schema", latest["loss_record_schema_version"]],
    ]
    out.append(
        "<div class='row'><div>"
        + _table(["method", *SPLITS], loss_rows)
        + "</div><div>"
        + _table(["", "latest"], facts)
        + "</div></div>"
    )
    out.append(_gate_table(gates, key))
    out.append(_families(index, where, cell, key))
    out.append(_reforms(index, where, cell, key))
    out.append(_history(runs, losses))
    return "".join(out)


def _weights_label(loss_record: Any) -> str | None:
    """What the bundle's weights are, from its loss record's calibration summary; a
    design-weights bundle (``calibration_backend: none``) says that its gates were reported,
    not enforced, since that is why its failed gates show as warn."""
    if not isinstance(loss_record, str):
        return None
    calibration = json.loads(loss_record).get("calibration") or {}
    label = calibration.get("label") or calibration.get("backend")
    if calibration.get("backend") == "none":
        label = f"{label or 'not calibrated'}: gates reported, not enforced"
    return label


def _gate_table(gates: pd.DataFrame, key: str) -> str:
    known = gates[["source", "gate"]].drop_duplicates().sort_values(["source", "gate"])
    if known.empty:
        return "<p class='note'>no gates recorded (a derived cell: scored against its fallback)</p>"
    mine = gates[gates["run_key"] == key].set_index(["source", "gate"])
    rows, classes = [], []
    for source, gate in known.itertuples(index=False):
        if (source, gate) in mine.index:
            row = mine.loc[(source, gate)]
            status = str(row["status"])
            rows.append([gate, source, status, row["value"], row["threshold"], row["summary"]])
        else:
            status = "unmeasured"
            rows.append([gate, source, status, None, None, "not measured by this run"])
        classes.append(["l", "l", status, "", "", "l"])
    return "<h3>release gates</h3>" + _table(
        ["gate", "source", "verdict", "value", "threshold", "summary"], rows, classes
    )


def _families(index: Path, where: str, cell: list[str], key: str) -> str:
    families = table(index, f"SELECT * FROM families WHERE {where} AND run_key = ?", [*cell, key])
    if families.empty:
        return ""
    families["delta"] = families["candidate"] - families["ecps_method"]
    ordered = families.sort_values("delta")
    pick = pd.concat([ordered.head(5), ordered.tail(5)]).drop_duplicates("family")
    rows = [[r.family, r.targets, r.candidate, r.ecps_method, r.delta] for r in pick.itertuples()]
    return "<h3>top family wins (negative) and losses vs the eCPS method</h3>" + _table(
        ["family", "targets", "candidate", "ecps_method", "delta"], rows
    )


def _reforms(index: Path, where: str, cell: list[str], key: str) -> str:
    reforms = table(index, f"SELECT * FROM reforms WHERE {where} AND run_key = ?", [*cell, key])
    if reforms.empty:
        return ""
    grid = reforms.pivot_table(index="reform", columns="method", values="budget_impact_bn")
    columns = list(grid.columns)
    rows = [[reform, *[grid.loc[reform, c] for c in columns]] for reform in grid.index]
    return "<h3>benchmark suite: budget impact ($bn)</h3>" + _table(["reform", *columns], rows)


def _history(runs: pd.DataFrame, losses: pd.DataFrame) -> str:
    candidate = losses[losses["method"] == "candidate"].pivot_table(
        index="run_key", columns="split", values="loss", aggfunc="first"
    )
    runs = runs.set_index("run_key").join(candidate, how="left").reset_index()
    for split in HISTORY_SERIES:
        if split not in runs:
            runs[split] = float("nan")
    rows = [
        [
            r["run_key"],
            "current" if r["is_current"] else "",
            *[r[split] for split in HISTORY_SERIES],
            r["blocking_failures"],
            r["published_at"],
        ]
        for _, r in runs.iterrows()
    ]
    header = ["run", "", *HISTORY_SERIES, "failing gates", "published"]
    return (
        "<h3>history</h3><div class='row'><div>"
        + _table(header, rows)
        + "</div><div>"
        + history_svg(runs)
        + "</div></div>"
    )


def render_dashboard(index: Path) -> str:
    """The page's HTML from the index at ``index``."""
    cells = table(index, "SELECT DISTINCT product, geography FROM bundles")
    order = sorted(
        cells.itertuples(index=False),
        key=lambda c: (c.product != "national" or c.geography != "US", c.product, c.geography),
    )
    links = " · ".join(
        f"<a href='#{escape(c.product)}-{escape(c.geography)}'>"
        f"{escape(c.product)}|{escape(c.geography)}</a>"
        for c in order
    )
    body = "".join(_cell_section(index, c.product, c.geography) for c in order)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Microplex-US readiness"
        f"</title><style>{CSS}</style></head><body><h1>Microplex-US release readiness</h1>"
        f"<p class='note'>from {escape(str(index))} at {stamp}; {len(order)} cells</p>"
        f"<p>{links}</p>{body or '<p>no run bundles indexed yet</p>'}</body></html>"
    )


def write_dashboard(index: Path, path: Path) -> Path:
    """Render and write the page atomically (a reader never sees half a page)."""
    html = render_dashboard(index)
    return write_atomic(path, lambda handle: handle.write(html))


def main() -> None:
    """Re-render $DAGSTER_HOME/artifacts/_release/readiness.html from the run index."""
    release = artifacts_root() / "_release"
    print(write_dashboard(release / INDEX_NAME, release / "readiness.html"))


if __name__ == "__main__":
    main()
