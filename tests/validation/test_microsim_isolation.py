"""Reform slices in forked children: results come back, failures surface, memory does not."""

from __future__ import annotations

import gc
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from microplex_assets.simulation.forks import (
    _die_with_parent,
    call_in_fork,
    fork_available,
    map_in_forks,
)
from microplex_assets.simulation.memory import current_rss_gb

pytestmark = pytest.mark.skipif(not fork_available(), reason="needs the 'fork' start method")


def _frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"x": np.arange(rows, dtype=float)}, index=pd.RangeIndex(rows))


def _fail() -> None:
    raise ValueError("slice went wrong")


def _die() -> None:
    os._exit(9)


def _allocate_and_sum(megabytes: int) -> tuple[float, float]:
    """The block's sum and how much the child's own RSS rose while it held the block
    (read inside the child: its peak counter also carries the parent's shared pages)."""
    start = current_rss_gb()
    block = np.ones(megabytes * 2**20 // 8)
    return float(block.sum()), current_rss_gb() - start


def test_result_comes_back_with_the_childs_memory():
    frame, memory = call_in_fork(_frame, 1_000)
    pd.testing.assert_frame_equal(frame, _frame(1_000))
    assert memory["peak_rss_gb"] >= memory["rss_gb"] > 0


def test_an_exception_in_the_child_is_raised_with_its_traceback():
    with pytest.raises(RuntimeError, match="ValueError: slice went wrong"):
        call_in_fork(_fail)


def test_a_child_that_dies_without_a_result_names_its_exit_code():
    with pytest.raises(RuntimeError, match="exit code 9"):
        call_in_fork(_die)


def test_memory_the_child_allocates_does_not_stay_in_the_parent():
    before = current_rss_gb()
    (total, rise), memory = call_in_fork(_allocate_and_sum, 400)
    assert total == 400 * 2**20 // 8
    assert rise > 0.3  # the child held the 400 MiB block
    assert memory["peak_rss_gb"] > 0
    assert current_rss_gb() < before + 0.1  # and none of it stayed in the parent


def _orphan_probe(pid_file: str) -> None:
    """Forks a process that arms the parent-death signal and sleeps, then dies first."""
    pid = os.fork()
    if pid == 0:
        _die_with_parent()
        time.sleep(60)
        os._exit(0)
    time.sleep(0.5)  # let it arm the signal
    Path(pid_file).write_text(str(pid))
    os._exit(0)


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_a_slice_process_dies_with_its_parent(tmp_path):
    pid_file = tmp_path / "pid"
    with pytest.raises(RuntimeError, match="exit code 0"):
        call_in_fork(_orphan_probe, str(pid_file))
    pid = int(pid_file.read_text())
    deadline = time.time() + 10
    while time.time() < deadline and _running(pid):
        time.sleep(0.05)
    assert not _running(pid)


def _timed_nap(seconds: float) -> tuple[float, float, int]:
    start = time.time()
    time.sleep(seconds)
    return start, time.time(), os.getpid()


def _nap_or_fail(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("negative nap")
    time.sleep(seconds)


def test_map_in_forks_keeps_order_and_runs_workers_at_once() -> None:
    told: list[int] = []
    results = map_in_forks(_timed_nap, [(0.6,), (0.1,), (0.6,)], 2, lambda i, r, m: told.append(i))
    (a_start, a_end, a_pid), (b_start, b_end, b_pid), (c_start, _, c_pid) = (r for r, _ in results)
    assert len({a_pid, b_pid, c_pid, os.getpid()}) == 4  # each call in its own child
    assert b_start < a_end and a_start < b_end  # the first two ran side by side
    assert c_start >= b_end  # the third waited for a free worker (the short one)
    assert sorted(told) == [0, 1, 2] and told[0] == 1  # told as each finished
    assert all(memory["seconds"] > 0 for _, memory in results)


def test_map_in_forks_prepares_each_call_in_the_parent_just_before_its_fork() -> None:
    """``prepare`` runs in the parent, in call order, each time a worker is free: the
    second call's args are made only after the first child was forked."""
    prepared: list[tuple[int, float]] = []

    def prepare(index: int, args: tuple) -> tuple:
        prepared.append((index, time.time()))
        return (args[0] * 2,)

    results = map_in_forks(_timed_nap, [(0.2,), (0.2,)], 1, prepare=prepare)
    (first_start, first_end, _), (second_start, second_end, _) = (r for r, _ in results)
    assert [i for i, _ in prepared] == [0, 1]
    assert prepared[1][1] >= first_end  # one worker: made when the first child was done
    assert second_end - second_start >= 0.4  # the child ran with the prepared (doubled) nap


def test_map_in_forks_one_worker_runs_one_at_a_time() -> None:
    results = [r for r, _ in map_in_forks(_timed_nap, [(0.2,), (0.2,)], 1)]
    assert results[1][0] >= results[0][1]


def test_map_in_forks_failure_raises_and_stops_the_others() -> None:
    started = time.time()
    with pytest.raises(RuntimeError, match="negative nap"):
        map_in_forks(_nap_or_fail, [(-1,), (30,)], 2)
    assert time.time() - started < 20  # the 30 s sibling was killed, not waited for


def _frozen_objects() -> int:
    return gc.get_freeze_count()


def test_children_start_with_the_parents_objects_frozen_and_the_parent_does_not():
    """The child's collector leaves inherited objects alone (their pages stay shared);
    the parent's own collector is untouched."""
    ballast = [[i] for i in range(50_000)]  # container objects the collector tracks
    frozen_in_child, _ = call_in_fork(_frozen_objects)
    assert frozen_in_child >= len(ballast)
    assert gc.get_freeze_count() == 0


def _map_in_a_daemon(queue: Any) -> None:
    results = map_in_forks(_timed_nap, [(0.05,), (0.05,)], 2)
    queue.put([(pid, memory["seconds"] > 0) for (_, _, pid), memory in results] + [os.getpid()])


def test_a_daemonic_process_maps_in_process() -> None:
    """A daemonic process (a Dask worker) may not fork children: the calls run in it."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    daemon = context.Process(target=_map_in_a_daemon, args=(queue,), daemon=True)
    daemon.start()
    *calls, daemon_pid = queue.get(timeout=30)
    daemon.join(timeout=30)
    assert daemon.exitcode == 0
    assert calls == [(daemon_pid, True), (daemon_pid, True)]
