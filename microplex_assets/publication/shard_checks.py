"""What the ``local|US`` fan-in checks of each shard before it reads the shard's H5.

A fan-in joins 51 bundles built by 51 runs; one of them built with another target
registry or year, or whose H5 lost bytes on the way, would still concatenate (its ids
and arrays are well-formed) and the national file would silently mix two builds. So each
shard's manifest must record this fan-in's year and target-set hash, and its H5 must
have the SHA256 the manifest recorded when the shard was published; the hash is checked
before h5py opens the file, so a truncated H5 is named as such, not as an HDF5 error.
"""

from __future__ import annotations

import json
from pathlib import Path

from microplex_assets.files import dataset_filename, file_sha256


class ShardMismatchError(ValueError):
    """A shard is not of this fan-in's build or its H5 is not the published one; the
    message names each shard, the setting or file, and what was expected."""


def shard_problems(label: str, folder: Path, year: int, target_set_hash: str) -> list[str]:
    """Why shard ``label`` (its bundle ``folder``) cannot join a fan-in of ``year`` on
    the target set ``target_set_hash``; empty when it can."""
    folder = Path(folder).resolve()
    manifest = json.loads((folder / "manifest.json").read_text())
    problems = []
    built_year = manifest.get("year")
    if built_year is None or int(built_year) != int(year):
        problems.append(
            f"{label} ({folder}): built for year {built_year}, this fan-in is for year {year}"
        )
    recorded = (manifest.get("targets") or {}).get("target_set_hash")
    if recorded != target_set_hash:
        problems.append(
            f"{label} ({folder}): built with target-set hash {recorded}, this fan-in's "
            f"calibration_targets hash is {target_set_hash}"
        )
    h5_path = folder / dataset_filename(year)
    if h5_path.exists():  # another year's file name is the year problem above
        expected = (manifest.get("h5") or {}).get("sha256")
        actual = file_sha256(h5_path)
        if actual != expected:
            size = h5_path.stat().st_size
            recorded_size = (manifest.get("h5") or {}).get("size_bytes")
            problems.append(
                f"{label}: {h5_path} has SHA256 {actual} ({size} bytes) but its "
                f"manifest.json records {expected} ({recorded_size} bytes): corrupted or "
                "truncated since publication"
            )
    return problems


def raise_shard_problems(problems: list[str], refused: list[str], shards: int) -> None:
    """One error for every refused shard (a fan-in is re-run once, not once per shard)."""
    if problems:
        raise ShardMismatchError(
            f"local|US refuses {len(refused)} of {shards} shards ({', '.join(refused)}); "
            "rebuild them with this build's settings:\n  - " + "\n  - ".join(problems)
        )
