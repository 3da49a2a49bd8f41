"""Process memory for the suite: readings for its progress log (Linux /proc; 0 elsewhere)
and handing freed heap back to the OS."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import resource
from pathlib import Path


def current_rss_gb() -> float:
    """Resident memory now (VmRSS): unlike the peak, it shows whether memory comes back."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def return_freed_memory() -> None:
    """Collect cycles, then ask glibc to hand freed heap pages back to the OS.

    Freed small objects leave glibc's arenas fragmented, so a process that released a
    simulation stays as large as it was; ``malloc_trim(0)`` returns the free pages.
    A no-op where libc has no ``malloc_trim`` (musl, macOS).
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)
