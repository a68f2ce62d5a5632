"""Sync benchmark: what one cloud process durably applies and acks through Mosquitto.

    .venv/bin/python -m bench.sync [--devices 20] [--events 2500] [--quick]

Runs, on one Mosquitto started from ``deploy/mosquitto.conf``:

1. **Cloud drains a queued backlog**: ``--devices`` x ``--events`` envelopes are queued at
   the broker for the cloud's persistent session while it is down; the real ``wayline
   cloud`` process then applies each durably (SQLite WAL, synchronous=FULL) and publishes
   the acks. Figure: events per second from the first applied to the last.
2. **Raw paho ceiling, same run**: one bare paho subscriber at QoS 1 draining the same
   number of messages queued for it, doing nothing with them (no decode, no store, no ack),
   over MQTT 3.1.1 as the cloud's link speaks, and over MQTT 5.
3. **Live, many devices on this machine**: ``--devices`` device nodes (two processes) each
   with ``--events`` events in its outbox, sending under the sync protocol's window while
   the cloud applies and acks; devices and cloud share the same two cores.
4. **End-to-end latency**: one device emits an event, waits until the cloud's ack has
   removed it from the outbox, repeats; p50/p99 of that round trip, with the cloud idle
   and again while the many-device drain runs.
5. **Drain of one device's 10,000-event backlog** after it reconnects.

Figures print as a table; times on a shared 2-core machine are noisy, so compare the rows of
one run with each other.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from firmware_sim.broker import MosquittoBroker  # noqa: E402
from protocol import Telemetry, encode, make_envelope, up_topic  # noqa: E402
from sync import SyncNode, SyncSettings, open_store, parse_broker_url  # noqa: E402


class _Quiet:
    def apply(self, tx, peer, envelope):  # type: ignore[no-untyped-def]
        pass

    def on_state(self, tx, peer, envelope):  # type: ignore[no-untyped-def]
        pass


def _sample(i: int) -> Telemetry:
    return Telemetry(
        at=1_790_000_000_000 + i,
        lat=52.5,
        lon=13.4,
        speed_kmh=30.0,
        heading_deg=float(i % 360),
        odometer_km=1000.0 + i,
        door_open=False,
        ignition=True,
    )


def _device(path: Path, dev_id: str, url: str) -> SyncNode:
    return SyncNode(
        node_id=dev_id,
        role="device",
        store=open_store(path),
        handler=_Quiet(),
        broker=parse_broker_url(url),
        settings=SyncSettings(window=2000),
    )


# -- child process: a fleet of devices draining their outboxes -----------------------------


def fleet_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--url")
    p.add_argument("--dir", type=Path)
    p.add_argument("--first", type=int)
    p.add_argument("--count", type=int)
    p.add_argument("--events", type=int)
    a = p.parse_args(argv)
    nodes = []
    for k in range(a.first, a.first + a.count):
        node = _device(a.dir / f"dev{k}.db", f"bench-dev-{k}", a.url)
        with node.transaction() as tx:
            for i in range(a.events):
                tx.emit("cloud", _sample(i))
        nodes.append(node)
    print("ready", flush=True)
    sys.stdin.readline()  # go
    t0, cpu0 = time.perf_counter(), time.process_time()
    for n in nodes:
        n.start()
    while any(n.pending() for n in nodes):
        time.sleep(0.01)
    out = {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - cpu0}
    print(json.dumps(out), flush=True)
    for n in nodes:
        n.stop()
    return 0


# -- the parts -----------------------------------------------------------------------------


def _cloud(
    url: str, db: Path, log: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    """A ``wayline cloud`` process (development settings, plus ``env``) logging to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "wayline", "cloud", "--broker", url, "--db", str(db), *args],
            env={**os.environ, "WAYLINE_ENV": "development", **(env or {})},  # a local cloud
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(p: subprocess.Popen[bytes]) -> None:
    p.terminate()
    try:
        p.wait(20)
    except subprocess.TimeoutExpired:
        p.kill()


def _cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def many_devices(
    url: str, work: Path, devices: int, events: int, watch: dict[str, int | None]
) -> tuple[float, dict[str, float]]:
    """Events/s the cloud applies and acks from ``devices`` devices' backlogs, and the CPU
    seconds each party used meanwhile (the devices, and every process in ``watch``)."""
    half = devices // 2
    fleets = []
    for first, count in ((0, half), (half, devices - half)):
        fleets.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.sync",
                    "--fleet",
                    "--url",
                    url,
                    "--dir",
                    str(work),
                    "--first",
                    str(first),
                    "--count",
                    str(count),
                    "--events",
                    str(events),
                ],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    for f in fleets:
        assert f.stdout is not None and f.stdout.readline().strip() == "ready"
    before = {name: _cpu_s(pid) for name, pid in watch.items()}
    for f in fleets:
        assert f.stdin is not None
        f.stdin.write("go\n")
        f.stdin.flush()
    done = []
    for f in fleets:
        assert f.stdout is not None
        done.append(json.loads(f.stdout.readline()))
    cpu = {name: _cpu_s(pid) - before[name] for name, pid in watch.items()}
    cpu["devices"] = sum(d["cpu"] for d in done)
    cpu["wall"] = max(d["seconds"] for d in done)
    for f in fleets:
        f.wait(60)
    return devices * events / cpu["wall"], cpu


def _count(db: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
            return int(c.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _queue_at_broker(url: str, devices: int, events: int, prefix: str) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    addr = parse_broker_url(url)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{prefix}-pub", protocol=mqtt.MQTTv5)
    pub.max_inflight_messages_set(1000)
    pub.connect(addr.host, addr.port)
    pub.loop_start()
    infos = []
    for d in range(devices):
        dev = f"{prefix}-{d}"
        for i in range(events):
            env = make_envelope(src=dev, seq=i + 1, lc=i + 1, body=_sample(i))
            infos.append(pub.publish(up_topic(dev), encode(env), qos=1))
    for info in infos:
        info.wait_for_publish(60)
    pub.disconnect()
    pub.loop_stop()


def _wait_cloud_online(url: str, since_ms: int, log: Path, timeout_s: float = 90.0) -> None:
    """Wait for the cloud's retained "online" state newer than ``since_ms``.

    The cloud subscribes before it announces itself on the same connection, so once the
    state is seen its subscriptions are in place at the broker."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from protocol import decode, state_topic

    seen = threading.Event()

    def on_message(_c, _u, msg):  # type: ignore[no-untyped-def]
        env = decode(bytes(msg.payload))
        if env.body.status == "online" and env.body.at >= since_ms:  # type: ignore[union-attr]
            seen.set()

    addr = parse_broker_url(url)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-watch", protocol=mqtt.MQTTv5)
    c.on_message = on_message
    c.on_connect = lambda cl, *_: cl.subscribe(state_topic("cloud"), qos=1)
    c.connect(addr.host, addr.port)
    c.loop_start()
    try:
        if not seen.wait(timeout_s):
            tail = log.read_text()[-2000:]
            raise RuntimeError(f"the cloud never came online; see {log}:\n{tail}")
    finally:
        c.disconnect()
        c.loop_stop()


def cloud_drain(url: str, work: Path, devices: int, events: int) -> float:
    """Events/s the real cloud applies durably (and acks) from a backlog queued for it."""
    db, log = work / "drain-cloud.db", work / "drain-cloud.log"
    since_ms = int(time.time() * 1000)
    first = _cloud(url, db, log)
    try:
        _wait_cloud_online(url, since_ms, log)  # its persistent session and subscriptions exist
    finally:
        _stop(first)
    total = devices * events
    _queue_at_broker(url, devices, events, "bench-q")
    cloud = _cloud(url, db, log)
    try:
        start = time.perf_counter()
        while _count(db) == 0:
            if cloud.poll() is not None or time.perf_counter() - start > 60:
                raise RuntimeError(
                    f"the cloud applied nothing; see {log}:\n{log.read_text()[-2000:]}"
                )
            time.sleep(0.005)
        t0 = time.perf_counter()
        deadline = t0 + 300
        while _count(db) < total and time.perf_counter() < deadline:
            time.sleep(0.02)
        return _count(db) / (time.perf_counter() - t0)
    finally:
        _stop(cloud)


def raw_paho_ceiling(url: str, n: int, *, v5: bool) -> float:
    """A bare paho subscriber draining ``n`` QoS 1 messages queued for it (MQTT 5 or 3.1.1)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    addr = parse_broker_url(url)
    topic = f"bench/raw{5 if v5 else 4}"
    got = threading.Event()
    count = [0]

    def on_message(_c, _u, _m):  # type: ignore[no-untyped-def]
        count[0] += 1
        if count[0] == n:
            got.set()

    def connect(c: mqtt.Client) -> None:
        if v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 600
            c.connect(addr.host, addr.port, clean_start=False, properties=props)
        else:
            c.connect(addr.host, addr.port)

    if v5:
        sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=topic, protocol=mqtt.MQTTv5)
    else:
        sub = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=topic.replace("/", "-"),
            protocol=mqtt.MQTTv311,
            clean_session=False,
        )
    sub.on_message = on_message
    connect(sub)
    sub.subscribe(topic, qos=1)
    sub.loop_start()
    time.sleep(0.5)
    sub.disconnect()
    sub.loop_stop()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub", protocol=mqtt.MQTTv5)
    pub.max_inflight_messages_set(1000)
    pub.connect(addr.host, addr.port)
    pub.loop_start()
    payload = encode(make_envelope(src="bench", seq=1, lc=1, body=_sample(1)))
    infos = [pub.publish(topic, payload, qos=1) for _ in range(n)]
    for info in infos:
        info.wait_for_publish(30)
    pub.disconnect()
    pub.loop_stop()
    t0 = time.perf_counter()
    connect(sub)
    sub.loop_start()
    got.wait(120)
    secs = time.perf_counter() - t0
    sub.disconnect()
    sub.loop_stop()
    return n / secs


def latency(url: str, work: Path, name: str, n: int) -> tuple[float, float]:
    """p50/p99 (ms) of emit → cloud applies durably → ack back → outbox empty."""
    node = _device(work / f"{name}.db", name, url)
    node.start()
    node.link.wait_connected(10)  # type: ignore[union-attr]
    time.sleep(0.3)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        with node.transaction() as tx:
            tx.emit("cloud", _sample(i))
        while node.pending():
            time.sleep(0.0002)
        out.append((time.perf_counter() - t0) * 1000)
    node.stop()
    qs = statistics.quantiles(out, n=100)
    return qs[49], qs[98]


def drain_one(url: str, work: Path, events: int) -> float:
    node = _device(work / "drain.db", "bench-drain", url)
    with node.transaction() as tx:
        for i in range(events):
            tx.emit("cloud", _sample(i))
    t0 = time.perf_counter()
    node.start()
    while node.pending():
        time.sleep(0.005)
    secs = time.perf_counter() - t0
    node.stop()
    return secs


def main() -> int:
    if "--fleet" in sys.argv:
        return fleet_main([a for a in sys.argv[1:] if a != "--fleet"])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=20)
    p.add_argument("--events", type=int, default=2500)
    p.add_argument("--latency-samples", type=int, default=500)
    p.add_argument("--quick", action="store_true", help="smaller runs")
    a = p.parse_args()
    if a.quick:
        a.devices, a.events, a.latency_samples = 6, 1000, 200
    with tempfile.TemporaryDirectory(prefix="wayline-bench-") as tmp:
        work = Path(tmp)
        broker = MosquittoBroker(work / "broker")
        broker.start()
        total = a.devices * a.events
        drained = cloud_drain(broker.url, work, a.devices, a.events)
        ceiling = raw_paho_ceiling(broker.url, total, v5=False)
        ceiling_v5 = raw_paho_ceiling(broker.url, total, v5=True)
        cloud = _cloud(broker.url, work / "cloud.db", work / "cloud.log")
        try:
            time.sleep(1.5)
            rows = []
            idle = latency(broker.url, work, "bench-lat-idle", a.latency_samples)
            box: dict[str, tuple[float, float]] = {}
            loaded = threading.Thread(
                target=lambda: box.update(
                    v=latency(broker.url, work, "bench-lat-busy", a.latency_samples // 2)
                )
            )
            loaded.start()
            rate, cpu = many_devices(
                broker.url,
                work,
                a.devices,
                a.events,
                {"cloud": cloud.pid, "broker": broker.pid},
            )
            loaded.join()
            drain = drain_one(broker.url, work, 10_000)
            rows = [
                (
                    f"cloud drains {total:,} queued events of {a.devices} devices (durable + ack)",
                    f"{drained:,.0f} events/s",
                ),
                (
                    f"raw paho subscriber draining {total:,} queued, MQTT 3.1.1 as the cloud",
                    f"{ceiling:,.0f} msgs/s",
                ),
                (
                    f"raw paho subscriber draining {total:,} queued, MQTT 5",
                    f"{ceiling_v5:,.0f} msgs/s",
                ),
                (
                    f"live: {a.devices} device outboxes x {a.events} here (durable + ack)",
                    f"{rate:,.0f} events/s",
                ),
                (
                    "live: CPU seconds over the live run's wall time (cloud / devices / broker)",
                    f"{cpu['cloud']:.1f} / {cpu['devices']:.1f} / {cpu['broker']:.1f}"
                    f" of {cpu['wall']:.1f} s",
                ),
                (
                    "live: events per CPU second of the cloud process",
                    f"{a.devices * a.events / max(cpu['cloud'], 1e-9):,.0f} events/s",
                ),
                ("end-to-end latency, cloud idle (p50 / p99)", f"{idle[0]:.1f} / {idle[1]:.1f} ms"),
                (
                    "end-to-end latency, during the drain (p50 / p99)",
                    f"{box['v'][0]:.1f} / {box['v'][1]:.1f} ms" if "v" in box else "n/a",
                ),
                ("drain of one device's 10,000-event backlog", f"{drain:.2f} s"),
            ]
        finally:
            _stop(cloud)
            broker.stop()
    width = max(len(r[0]) for r in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
