"""Run simulation slices in forked child processes, so their memory goes back to the OS.

A build runs every asset in one process (Dagster's in-process executor). A PolicyEngine
simulation allocates gigabytes in many small objects held in reference cycles; once freed,
glibc keeps most of those pages in the process (fragmentation), so each slice left the
process larger. A forked child starts with everything the parent holds (policyengine-us
imported, the baseline's inputs: no 25 s import, nothing pickled in), returns only the
small per-household results through a pipe, and exits: the kernel takes back all of it.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from microplex_assets.simulation.memory import current_rss_gb, peak_rss_gb

T = TypeVar("T")


def fork_available() -> bool:
    """The 'fork' start method exists (Linux, macOS) and this process may have children
    (a daemonic one may not: a Dask worker process is one); else slices run in-process."""
    return (
        "fork" in multiprocessing.get_all_start_methods()
        and not multiprocessing.current_process().daemon
    )


def _map_in_process(
    fn: Callable[..., T],
    calls: list[tuple[Any, ...]],
    done: Callable[[int, T, dict[str, float]], None] | None,
    prepare: Callable[[int, tuple[Any, ...]], tuple[Any, ...]] | None,
) -> list[tuple[T, dict[str, float]]]:
    """``map_in_forks`` where no child can be forked: one call after another, here."""
    results = []
    for index, args in enumerate(calls):
        if prepare is not None:
            args = prepare(index, args)
        started = time.perf_counter()
        result = fn(*args)
        memory = {"seconds": time.perf_counter() - started, "peak_rss_gb": peak_rss_gb()}
        results.append((result, memory))
        if done:
            done(index, result, memory)
    return results


def _die_with_parent() -> None:
    """Linux: the kernel kills this child when the parent dies (a killed or cancelled run
    must not leave a slice simulating on its own, gigabytes and a core for minutes)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def _child(send: Connection, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Child body: the result and the child's memory, or the formatted exception."""
    _die_with_parent()
    try:
        result = fn(*args)
        rss = current_rss_gb()  # the kernel updates the peak lazily: never report it lower
        send.send(("ok", result, {"rss_gb": rss, "peak_rss_gb": max(rss, peak_rss_gb())}))
    except BaseException:  # noqa: BLE001 - every failure goes back to the parent
        send.send(("error", traceback.format_exc(), {}))
    finally:
        send.close()


@dataclass
class _Running:
    index: int
    child: Any
    receive: Connection
    started: float


def _start(fn: Callable[..., Any], args: tuple[Any, ...], index: int) -> _Running:
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(send, fn, args), daemon=True)
    # The child's garbage collector would otherwise walk every object it inherited (the
    # build's heap), writing each one's header and so copying the parent's pages into
    # the child: frozen, they stay shared (measured: 2.08 GB private against 3.02 GB for
    # a 2,000-household simulation forked from a 5m-object parent, same wall time).
    # No gc.collect() first: a full collection of a build-sized heap takes seconds per
    # fork and held the second worker back past the first one's end (CI, stop 30).
    gc.freeze()
    try:
        child.start()
    finally:
        gc.unfreeze()  # the parent collects its own garbage as before
    send.close()  # the child holds the only write end: a dead child reads as EOF here
    return _Running(index, child, receive, time.perf_counter())


def _finish(running: _Running) -> tuple[Any, dict[str, float]]:
    try:
        status, payload, memory = running.receive.recv()
    except EOFError:
        running.child.join()
        raise RuntimeError(
            f"slice process died without a result (exit code {running.child.exitcode})"
        ) from None
    finally:
        running.receive.close()
    running.child.join()
    if status != "ok":
        raise RuntimeError(f"slice failed in its process:\n{payload}")
    memory["seconds"] = time.perf_counter() - running.started
    return payload, memory


def call_in_fork(fn: Callable[..., T], *args: Any) -> tuple[T, dict[str, float]]:
    """``fn(*args)`` computed in a forked child: its result and the child's memory (GB)
    and wall seconds.

    Raises RuntimeError with the child's traceback, or its exit code when it died without
    one (killed for memory, say).
    """
    return _finish(_start(fn, args, 0))


def map_in_forks(
    fn: Callable[..., T],
    calls: list[tuple[Any, ...]],
    workers: int,
    done: Callable[[int, T, dict[str, float]], None] | None = None,
    prepare: Callable[[int, tuple[Any, ...]], tuple[Any, ...]] | None = None,
) -> list[tuple[T, dict[str, float]]]:
    """``fn(*args)`` for every args of ``calls``, at most ``workers`` forked children at
    a time (a simulation uses one core; the build machine has two). Results come back in
    the order of ``calls``; ``done(index, result, memory)`` is told as each finishes. A
    failed child stops the others and raises its error. ``prepare(index, args)``, when
    given, returns the args actually forked with, in the parent just before that fork:
    what is costly to hold is built when a child first needs it and dropped after the
    last one has it. (Preparing one call ahead, while the workers run, was measured on
    a whole build: suite 862 -> 849 s, within run-to-run noise, and peak PSS 6.60 ->
    7.22 GB with a second reformed system held; not kept.) Where no child can be forked
    (``fork_available``), the calls run one after another in this process, with the
    same results."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if not fork_available():
        return _map_in_process(fn, calls, done, prepare)
    results: list[Any] = [None] * len(calls)
    pending = list(enumerate(calls))
    running: list[_Running] = []
    try:
        while pending or running:
            while pending and len(running) < workers:
                index, args = pending.pop(0)
                if prepare is not None:
                    args = prepare(index, args)
                running.append(_start(fn, args, index))
                del args  # the child has its copy; the parent keeps nothing of a slice
            ready = wait([r.receive for r in running])
            for item in [r for r in running if r.receive in ready]:
                running.remove(item)
                results[item.index] = _finish(item)
                if done:
                    done(item.index, *results[item.index])
    finally:
        for item in running:  # only after a failure: stop the siblings, leave no orphans
            item.child.kill()
            item.child.join()
            item.receive.close()
    return results
