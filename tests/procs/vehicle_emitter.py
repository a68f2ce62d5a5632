"""A vehicle agent process that reports a steady stream of telemetry, for kill tests.

``python -m tests.procs.vehicle_emitter --id V --broker URL --db PATH --count N``: reports
samples until N have been stored in total (a restart continues where the store says),
then waits until the cloud has acked them all and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from edge.vehicle import VehicleAgent, VehicleSettings
from protocol import Telemetry
from sync import SyncSettings, parse_broker_url


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--id", required=True)
    p.add_argument("--broker", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--pause", type=float, default=0.002)
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    fast = SyncSettings(ack_timeout_s=0.5, ack_timeout_max_s=2.0, tick_s=0.01)
    agent = VehicleAgent(
        VehicleSettings(
            vehicle_id=a.id, db_path=Path(a.db), broker=parse_broker_url(a.broker), sync=fast
        )
    )
    agent.start()
    rows = agent.store.read("SELECT next_seq FROM sync_out WHERE peer = 'cloud'")
    done = int(rows[0][0]) - 1 if rows else 0
    for i in range(done, a.count):
        agent.telemetry(
            Telemetry(
                at=1_790_000_000_000 + i,
                lat=52.5,
                lon=13.4,
                speed_kmh=30.0,
                heading_deg=float(i % 360),
                odometer_km=1000.0 + i,
                door_open=False,
                ignition=True,
            )
        )
        time.sleep(a.pause)
    while agent.node.pending():
        time.sleep(0.05)
    agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
