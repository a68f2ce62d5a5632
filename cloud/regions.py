"""Solving several regions' snapshots at once, each in its own child process.

PyVRP drives its search from Python (threads would share one interpreter lock; not
measured), so each region is
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
    snaps: list[dict[str, Any]], params: dict[str, Any]
) -> list[tuple[dict[str, Any], PlanResult, float]]:
    """Solve ``snaps`` one after another in a fresh ``python -m cloud.regions`` process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([_ROOT, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "cloud.regions"],
        input=pickle.dumps((snaps, params)),
        capture_output=True,
        env=env,
        timeout=WORKER_START_S + float(params["time_limit_s"]) * 2 * len(snaps),
        check=False,
    )
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        logger.warning("region worker failed (%s); solving in process", tail[0][:200])
        return [_solve_timed(s, params) for s in snaps]
    out: list[tuple[dict[str, Any], PlanResult, float]] = pickle.loads(done.stdout)
    return out


def solve_regions(
    snaps: list[dict[str, Any]], params: dict[str, Any], workers: int
) -> list[tuple[dict[str, Any], PlanResult, float]]:
    """Solve region snapshots on up to ``workers`` child processes at once.

    Results come back in the order of ``snaps``, each with its solve time in seconds.
    Snapshots are dealt round-robin to the workers (a child starts once, ~2 s of imports,
    and solves its share one after another); every child is waited for before this
    returns, and a child that fails is replaced by solves in this process.
    """
    n = min(workers, len(snaps))
    if n <= 1:
        return [_solve_timed(s, params) for s in snaps]
    batches = [snaps[i::n] for i in range(n)]
    with ThreadPoolExecutor(max_workers=n) as pool:
        solved = list(pool.map(_solve_in_worker, batches, repeat(params)))
    out: list[tuple[dict[str, Any], PlanResult, float]] = [None] * len(snaps)  # type: ignore[list-item]
    for i, results in enumerate(solved):
        out[i::n] = results
    return out


def _worker_main() -> None:
    snaps, params = pickle.loads(sys.stdin.buffer.read())
    sys.stdout.buffer.write(pickle.dumps([_solve_timed(s, params) for s in snaps]))


if __name__ == "__main__":
    _worker_main()
