"""Processes killed with SIGKILL mid-stream and restarted: nothing lost, nothing twice, in order.

The cloud is the real ``wayline cloud`` command; the vehicle is a real vehicle agent in a
process of its own that reports telemetry (``tests/procs/vehicle_emitter.py``).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import MosquittoBroker, unique_id, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

ROOT = Path(__file__).resolve().parents[1]
COUNT = 3000


def cloud_seqs(db: Path, src: str) -> list[int]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return [
            r[0] for r in conn.execute("SELECT seq FROM events WHERE src = ? ORDER BY seq", (src,))
        ]
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def telemetry_at(db: Path, src: str) -> list[int]:
    sys.path.insert(0, str(ROOT))
    from protocol import decode

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute(
            "SELECT payload FROM events WHERE src = ? AND kind = 'telemetry' ORDER BY seq", (src,)
        ).fetchall()
    finally:
        conn.close()
    return [decode(r[0]).body.at for r in rows]


class Proc:
    def __init__(self, args: list[str], log: Path) -> None:
        self.args, self.log = args, log
        self.p: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.p = subprocess.Popen(self.args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        assert self.p is not None
        self.p.kill()
        self.p.wait()

    def terminate(self) -> None:
        if self.p is not None and self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def test_vehicle_and_cloud_killed_mid_stream(broker: MosquittoBroker, tmp_path: Path) -> None:
    van = unique_id("van")
    cloud_db, van_db = tmp_path / "cloud.db", tmp_path / "van.db"
    cloud = Proc(
        [sys.executable, "-m", "wayline", "cloud", "--broker", broker.url, "--db", str(cloud_db)],
        tmp_path / "cloud.log",
    )
    vehicle = Proc(
        [
            sys.executable,
            "-m",
            "tests.procs.vehicle_emitter",
            "--id",
            van,
            "--broker",
            broker.url,
            "--db",
            str(van_db),
            "--count",
            str(COUNT),
        ],
        tmp_path / "van.log",
    )
    try:
        cloud.start()
        vehicle.start()
        wait_for(lambda: len(cloud_seqs(cloud_db, van)) > 500, timeout=60)
        vehicle.kill()  # SIGKILL mid-stream, likely inside a transaction
        vehicle.start()
        wait_for(lambda: len(cloud_seqs(cloud_db, van)) > 1500, timeout=60)
        cloud.kill()  # SIGKILL the coordinator while the stream flows
        wait_for(lambda: vehicle.p.poll() is not None or True, timeout=1)
        cloud.start()
        assert vehicle.p is not None
        vehicle.p.wait(timeout=120)
        assert vehicle.p.returncode == 0, (tmp_path / "van.log").read_text()[-2000:]
    finally:
        vehicle.terminate()
        cloud.terminate()
    seqs = cloud_seqs(cloud_db, van)
    assert seqs == list(range(1, len(seqs) + 1)), "a gap or a repeat in the cloud's log"
    stamps = telemetry_at(cloud_db, van)
    assert len(stamps) == COUNT, "every sample the van stored reached the cloud"
    assert stamps == sorted(stamps) and len(set(stamps)) == COUNT, "in order, none twice"
    assert "Traceback" not in (tmp_path / "cloud.log").read_text()
