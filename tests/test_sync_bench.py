"""The sync benchmark's CPU split reads real processes' CPU time from /proc."""

from __future__ import annotations

import os
import time

from bench.sync import _cpu_s


def test_cpu_seconds_of_a_process_grow_while_it_works() -> None:
    before = _cpu_s(os.getpid())
    spin_until = time.process_time() + 0.3
    while time.process_time() < spin_until:
        pass
    after = _cpu_s(os.getpid())
    assert 0.2 <= after - before <= 5.0


def test_no_process_used_no_cpu() -> None:
    assert _cpu_s(None) == 0.0
