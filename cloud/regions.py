"""Solving several regions' snapshots at once, each in its own child process.

The solvers hold the GIL, so threads alone would not overlap two solves: each region is
solved by a plain child process (``python -m cloud.regions``: a pickled snapshot and
parameters in on stdin, the pickled output, result and seconds out on stdout), with a
thread per running child to wait for it. No process pool and no fork of the coordinator's
threaded process; every child is waited for before :func:`solve_regions` returns. A solve
stopped by its iteration limit gives the same output in a child as in process, so
decisions replay exactly.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloud.decisions import solve_snapshot

if TYPE_CHECKING:
    from cloud.planning import PlanResult

__all__ = ["solve_regions"]

logger = logging.getLogger(__name__)

WORKER_START_S = 30.0
"""Allowance for a child process to start (imports) on top of twice the solve's bound."""
_ROOT = str(Path(__file__).resolve().parents[1])


def _solve_timed(
    snap: dict[str, Any], params: dict[str, Any]
) -> tuple[dict[str, Any], PlanResult, float]:
    t0 = time.perf_counter()
    output, result = solve_snapshot(snap, params)
    return output, result, time.perf_counter() - t0


def _solve_in_worker(
    snap: dict[str, Any], params: dict[str, Any]
) -> tuple[dict[str, Any], PlanResult, float]:
    """Solve in a fresh ``python -m cloud.regions`` process (pickles over its pipes)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([_ROOT, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "cloud.regions"],
        input=pickle.dumps((snap, params)),
        capture_output=True,
        env=env,
        timeout=WORKER_START_S + float(params["time_limit_s"]) * 2,
        check=False,
    )
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        logger.warning("region worker failed (%s); solving in process", tail[0][:200])
        return _solve_timed(snap, params)
    out: tuple[dict[str, Any], PlanResult, float] = pickle.loads(done.stdout)
    return out


def solve_regions(
    snaps: list[dict[str, Any]], params: dict[str, Any], workers: int
) -> list[tuple[dict[str, Any], PlanResult, float]]:
    """Solve region snapshots, up to ``workers`` at once, each in its own worker process.

    Results come back in the order of ``snaps``, each with its solve time in seconds. A
    worker is a plain child process that solves one snapshot and exits (no process pool,
    no fork of this threaded process); it is waited for before this returns, and a worker
    that fails is replaced by a solve in this process.
    """
    if workers <= 1 or len(snaps) <= 1:
        return [_solve_timed(s, params) for s in snaps]
    with ThreadPoolExecutor(max_workers=min(workers, len(snaps))) as pool:
        return list(pool.map(_solve_in_worker, snaps, repeat(params)))


def _worker_main() -> None:
    snap, params = pickle.loads(sys.stdin.buffer.read())
    sys.stdout.buffer.write(pickle.dumps(_solve_timed(snap, params)))


if __name__ == "__main__":
    _worker_main()
