"""Code versions for the unpartitioned assets, from their own source files.

A backfill builds the source frames and the target registry once and every shard reads
them from storage (``backfill.stale_unpartitioned``); Dagster calls a stored one stale
when its code version differs from the code's. Hashing the packages that compute them
means an edit there rebuilds them once, with no version number to remember to bump.
(Settings such as the year and seed are checked where a shard reads them:
``source_plan/reuse.py``.)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def source_code_version(*names: str) -> str:
    """sha256 (first 16 hex) of every ``.py`` under the given ``microplex_assets``
    subpackages (or of the given modules), in path order."""
    digest = hashlib.sha256()
    for name in names:
        root = PACKAGE / name
        for path in [root] if root.is_file() else sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(PACKAGE)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


SOURCES_CODE_VERSION = source_code_version("sources", "geography", "uprating.py")
TARGETS_CODE_VERSION = source_code_version("targets", "geography", "uprating.py")
