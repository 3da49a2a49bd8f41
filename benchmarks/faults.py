"""Run the fault suite (tests/faults) and print what it shows: cases tried, caught with a
clear error, and data lost.

    python benchmarks/faults.py [--json benchmarks/results/faults_<date>.json] [--slow]

Each test in tests/faults is one case: a fault (a malformed, truncated or non-finite
source file, a bad weight, an infeasible or contradictory target, a stored input of
another build, a missing upstream cell, an unpinned baseline, a fan-in shard of another
target set or year or with a damaged H5, a disk that fills during publication, two
concurrent runs of one cell, a run SIGKILLed during calibration or publication and
re-executed from failure...) and the assertion that it is refused with a message naming
the file, column, target, cell or setting, or (for kills and concurrency) that the
result is the uninterrupted one, with the published bundle and ``current`` unchanged.
A case that fails is a fault that got through (or an earlier bundle that changed), so
"data lost" counts failed cases; it must be 0. ``--slow`` adds fault cases marked slow
(none today: the killed build on the real pipeline failed its one run and was removed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_suite(junit: Path, slow: bool = False) -> float:
    """pytest on tests/faults with a junit report; returns wall seconds."""
    started = time.perf_counter()
    marks = [] if slow else ["-m", "not slow"]
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *marks, "-p", "no:cacheprovider",
         "tests/faults", f"--junitxml={junit}", "-o", "junit_family=xunit1"],
        cwd=ROOT, check=False,
    )  # fmt: skip
    return time.perf_counter() - started


def cases(junit: Path) -> list[dict[str, object]]:
    """One row per test case: group (module), name, outcome, the message it recorded."""
    rows = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        outcome = "caught"
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "let through"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        rows.append(
            {
                "group": case.get("classname", "").rsplit(".", 1)[-1].removeprefix("test_"),
                "case": case.get("name"),
                "outcome": outcome,
                "message": properties.get("message", ""),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    parser.add_argument("--slow", action="store_true", help="include the slow case")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        junit = Path(folder) / "faults.xml"
        seconds = run_suite(junit, args.slow)
        rows = cases(junit)
    outcomes = Counter(r["outcome"] for r in rows)
    tried = len(rows) - outcomes["skipped"]
    summary = {
        "tried": tried,
        "caught_with_clear_error": outcomes["caught"],
        "let_through": outcomes["let through"],
        "data_lost": outcomes["let through"],
        "skipped": outcomes["skipped"],
        "slow_cases_included": args.slow,
        "seconds": round(seconds, 1),
        "by_group": {
            group: dict(Counter(r["outcome"] for r in rows if r["group"] == group))
            for group in sorted({r["group"] for r in rows})
        },
    }
    print(f"\nfault suite: {tried} cases tried, {outcomes['caught']} caught with a clear error, "
          f"{outcomes['let through']} let through, data lost {summary['data_lost']} "
          f"({seconds:.0f} s)")  # fmt: skip
    for group, counts in summary["by_group"].items():
        print(f"  {group:<24} {counts}")
    examples = [r for r in rows if r["message"]][:: max(1, len(rows) // 8)]
    for row in examples[:8]:
        print(f"  e.g. {row['case']}: {str(row['message'])[:160]}")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "cases": rows}, indent=2) + "\n")
    return 0 if summary["data_lost"] == 0 and tried > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
