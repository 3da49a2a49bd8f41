"""eCPS input coverage of the default build path on a small sample of real CPS households.

    python benchmarks/ecps_coverage.py [--households 300] [--cache PATH] [--out PATH]

The path ``asset_resource_tests.build_bundles`` takes (taxcalc CPS scaffold uprated with
policyengine-us, ``--households`` households, the SOI-synthesized tax donor, the SCF-like
asset donor, stage 6; no spine, no calibration), written as a PolicyEngine H5 and counted
by ``publication.coverage.h5_coverage``: provided out of the 235 eCPS inputs (constant
fills not counted), the provided variables and the constant fills. Prints JSON and
writes it to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from asset_resource_tests import ROOT, build_bundles  # noqa: E402

from microplex_assets.files import json_safe, write_json_atomic  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=300)
    parser.add_argument("--cache", type=Path, default=None, help="pickle of the seed")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/ecps_coverage.json")
    args = parser.parse_args()
    from microplex_assets.publication.coverage import h5_coverage
    from microplex_assets.publication.h5_export import write_policyengine_h5
    from microplex_resources.policyengine_runtime import policyengine_system

    _, bundle, _ = build_bundles(args.households, args.cache)
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "sample.h5"
        write_policyengine_h5(bundle, path, policyengine_system())
        coverage = h5_coverage(str(path))
    provided = [row["variable"] for row in coverage["table"] if row["status"] == "provided"]
    result = {
        "households": args.households,
        "ecps_inputs": coverage["ecps_inputs"],
        "provided": coverage["provided"],
        "provided_variables": provided,
        "constant_fills": coverage["constant_fills"],
    }
    write_json_atomic(args.out, json_safe(result))
    print(json.dumps(json_safe(result), indent=2))


if __name__ == "__main__":
    main()
