"""A Dagster daemon for the instance: reuse a live one, or start one for as long as needed.

Backfills, the run queue (``run_queue.max_concurrent_runs`` in dagster.yaml), schedules
and sensors all run in ``dagster-daemon``. ``make ui`` (``dagster dev``) starts one with
the webserver; ``make backfill`` without a UI starts its own here and stops it after.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import DagsterInstance

# The daemons a backfill needs: the backfill daemon submits runs, the queue launches them.
NEEDED = ("BACKFILL", "QUEUED_RUN_COORDINATOR")


def live_daemons(instance: DagsterInstance, since: float | None = None) -> set[str]:
    """Daemon types with a heartbeat after ``since`` (default: the last 60 s; the daemon
    beats every 30 s)."""
    since = time.time() - 60.0 if since is None else since
    return {
        kind for kind, beat in instance.get_daemon_heartbeats().items() if beat.timestamp > since
    }


def daemon_command(workspace: Path) -> list[str]:
    """``dagster-daemon run`` from this interpreter's environment."""
    executable = Path(sys.executable).with_name("dagster-daemon")
    return [str(executable), "run", "-w", str(workspace)]


@contextmanager
def running_daemon(
    instance: DagsterInstance,
    workspace: Path,
    log=print,
    start_timeout_s: float = 180.0,
    log_path: Path | None = None,
) -> Iterator[subprocess.Popen | None]:
    """Yield once the instance has a live backfill daemon and run queue; start
    ``dagster-daemon`` (and stop it afterwards) only when none is running."""
    if set(NEEDED) <= live_daemons(instance):
        log("using the running dagster-daemon")
        yield None
        return
    if not instance.is_persistent:
        raise ValueError("a daemon needs a persistent instance: set DAGSTER_HOME")
    log_path = log_path or Path(instance.root_directory) / "daemon.log"
    env = {**os.environ, "DAGSTER_HOME": str(instance.root_directory)}
    with open(log_path, "ab") as out:
        process = subprocess.Popen(
            daemon_command(workspace),
            cwd=workspace.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stopping it stops its code server too
        )
    started = time.time()
    log(f"started dagster-daemon (pid {process.pid}; log {log_path})")
    try:
        deadline = started + start_timeout_s
        while not set(NEEDED) <= live_daemons(instance, since=started):
            if process.poll() is not None:
                raise RuntimeError(f"dagster-daemon exited ({process.returncode}); see {log_path}")
            if time.time() > deadline:
                raise TimeoutError(f"dagster-daemon gave no heartbeat in {start_timeout_s:.0f}s")
            time.sleep(2)
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM the daemon's process group, then SIGKILL what is left after ``grace_s``."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
