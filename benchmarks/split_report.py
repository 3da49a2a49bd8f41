"""The markdown tables and the printed split of ``calibration_split.py``."""

from __future__ import annotations

from typing import Any

from split_problem import SPLITS, SUPPORT_FLOOR

# --- output --------------------------------------------------------------------------------


def markdown(rows: list[dict[str, Any]]) -> str:
    header = (
        "| method | train | validation | test | ESS (share) | max w/w0 | top 1% | "
        "within 10% (all / train) | epoch | s |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [header]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['train_loss']:.4f} | {r['validation_loss']:.4f} | "
            f"{r['test_loss']:.4f} | {r['ess']:,.0f} ({r['ess_share']:.1%}) | "
            f"{r['max_ratio']:.1f} | {r['top_1pct_weight_share']:.1%} | "
            f"{r['within_10pct']:.1%} / {r['train_within_10pct']:.1%} | "
            f"{r.get('chosen_epoch', '-')} | {r.get('seconds', 0.0):.0f} |"
        )
    return "\n".join(lines)


GOAL_NAMES = {
    "test_below_design": "test < design",
    "test_at_most_half_ecps": "test <= 0.5 eCPS",
    "train_no_worse_than_ecps": "train <= eCPS",
    "ess_share_at_least_25pct": "ESS >= 25%",
    "max_ratio_at_most_50": "max w/w0 <= 50",
    "kept_within_10pct_at_least_90pct": ">= 90% within 10%",
}


def goals_markdown(rows: list[dict[str, Any]]) -> str:
    """Which done-criteria each method meets (yes / no), the supported-target losses and
    the count met."""
    names = list(GOAL_NAMES)
    header = (
        "| method | "
        + " | ".join(GOAL_NAMES[n] for n in names)
        + f" | met | val / test loss, support >= {SUPPORT_FLOOR} |\n|"
        + "---|" * (len(names) + 3)
    )
    lines = [header]
    for r in rows:
        marks = [{True: "yes", False: "no", None: "-"}[r["goals"][n]] for n in names]
        met = sum(bool(r["goals"][n]) for n in names)
        lines.append(
            f"| {r['method']} | " + " | ".join(marks) + f" | {met} | "
            f"{r[f'validation_loss_support{SUPPORT_FLOOR}']:.4f} / "
            f"{r[f'test_loss_support{SUPPORT_FLOOR}']:.4f} |"
        )
    return "\n".join(lines)


def print_split(summary: dict[str, Any], spine_note: str) -> None:
    print(f"spine: {spine_note}")
    print(f"donor families (never in test): {', '.join(summary['donor_families'])}")
    for name in SPLITS:
        part = summary[name]
        print(
            f"\n{name}: {part['targets']} targets ({part['national']} national, "
            f"{part['state']} state, {part[f'support_below_{SUPPORT_FLOOR}']} with fewer than "
            f"{SUPPORT_FLOOR} supporting households), {len(part['groups'])} groups"
        )
        if name != "train":
            for g in part["groups"]:
                print(f"  {g['family']:<12} {g['group']:<48} {g['targets']:>4}")
