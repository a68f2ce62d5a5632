"""Hostile-input campaign: honest devices keep every fact while an attacker and kills hit sync.

    .venv/bin/python -m bench.hostile [--seed 1] [--devices 6] [--messages 400] [--kills 4]
                                      [--broker-kills 1] [--quick]

One Mosquitto (``deploy/mosquitto.conf``, anonymous, with persistence), one real ``wayline
cloud`` process under ``WAYLINE_DEVICE_POLICY=registered`` with the honest devices declared by
``wayline admin add-device --db``, and ``--devices`` honest device nodes (real
:class:`sync.SyncNode` in two child processes) each emitting ``--messages`` telemetry facts
spread over the campaign. Meanwhile a raw paho client, seeded by ``--seed``, sends:

- ``forged_src``: an envelope on an honest device's topic whose ``src`` is another device;
- ``unknown_device``: envelopes from ids the registry does not know;
- ``wrong_role``: an honest van's state saying it is a depot;
- ``replay``: an honest envelope seen on the broker, published again byte for byte;
- ``lc_bound`` / ``seq_bound``: an honest device's envelope with a Lamport clock or a
  sequence number far beyond what it can have sent;
- ``forged_ack`` / ``forged_resend``: an ack or resend request on a device's up topic for
  entries the coordinator never sent it;
- ``forged_ack_to_device``: an ack "from the cloud" on a device's down topic for entries it
  never sent (refused by the device, so it never reaches the coordinator);
- ``oversize``: a payload beyond the 64 KiB limit; ``garbage``: random bytes.

The coordinator is SIGKILLed ``--kills`` times and the broker ``--broker-kills`` times (and
restarted with its persistence) at seeded random moments. Then everything drains (bounded)
and the counts print: honest facts sent, applied, lost, doubled, misordered (per device, in
seq order, in the cloud's ``events`` table), streams stalled, kills, hostile messages by kind,
and the coordinator's refusals by reason.

The refusals come from ``/metrics`` (``wayline_sync_rejected_total``): the attacker pauses,
the counters are read until two reads 0.3 s apart agree, and only then is the coordinator
killed, so no refusal is lost with a process; the totals are the sum over its lives. The log
lines are not counted: the registry logs a device's refusals once a minute with how many came
since, so lines undercount by design.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.sync import _cloud, _device, _sample, _wait_cloud_online  # noqa: E402
from firmware_sim.broker import MosquittoBroker, free_port  # noqa: E402
from protocol import (  # noqa: E402
    Ack,
    DeviceState,
    ResendRequest,
    decode,
    down_topic,
    encode,
    make_envelope,
    state_topic,
    up_topic,
)
from sync import parse_broker_url  # noqa: E402

#: Hostile kinds that reach the coordinator; ``forged_ack_to_device`` goes to a device.
TO_COORDINATOR = (
    "forged_src",
    "unknown_device",
    "wrong_role",
    "replay",
    "lc_bound",
    "seq_bound",
    "forged_ack",
    "forged_resend",
    "oversize",
    "garbage",
)
KINDS = (*TO_COORDINATOR, "forged_ack_to_device")


def device_id(k: int) -> str:
    return f"hostile-van-{k}"


# -- child process: honest devices emitting over the campaign, then draining ---------------


def fleet_main(argv: list[str]) -> int:
    """Emit ``--messages`` facts per device over ``--seconds``, then wait (at most
    ``--drain`` s) for every outbox to empty; print what is left and the nodes' refusals."""
    p = argparse.ArgumentParser()
    p.add_argument("--url")
    p.add_argument("--dir", type=Path)
    p.add_argument("--first", type=int)
    p.add_argument("--count", type=int)
    p.add_argument("--messages", type=int)
    p.add_argument("--seconds", type=float)
    p.add_argument("--drain", type=float)
    a = p.parse_args(argv)
    ids = [device_id(k) for k in range(a.first, a.first + a.count)]
    nodes = [_device(a.dir / f"{i}.db", i, a.url) for i in ids]
    for n in nodes:
        n.start()
    print("ready", flush=True)
    t0 = time.monotonic()
    for i in range(a.messages):
        for n in nodes:
            with n.transaction() as tx:
                tx.emit("cloud", _sample(i))
        time.sleep(max(0.0, t0 + a.seconds * (i + 1) / a.messages - time.monotonic()))
    print("emitted", flush=True)
    sys.stdin.readline()  # the campaign is over: drain
    deadline = time.monotonic() + a.drain
    while any(n.pending() for n in nodes) and time.monotonic() < deadline:
        time.sleep(0.05)
    out = {
        "pending": {i: n.pending() for i, n in zip(ids, nodes, strict=True)},
        "refused": sum(v for n in nodes for k, v in n.stats.items() if k.startswith("rejected_")),
    }
    print(json.dumps(out), flush=True)
    for n in nodes:
        n.stop()
    return 0


# -- the attacker ---------------------------------------------------------------------------


class Attacker:
    """A raw paho client sending hostile messages of seeded random kinds until stopped."""

    def __init__(self, url: str, devices: list[str], rng: random.Random, rate: float) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.devices, self.rng, self.rate = devices, rng, rate
        self.sent: Counter[str] = Counter()
        self.seen: list[bytes] = []  # honest payloads, to replay
        self.running = threading.Event()  # set: sending; clear: paused
        self.idle = threading.Event()  # set while paused and nothing is in flight
        self._stop = False
        addr = parse_broker_url(url)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"intruder-{rng.randrange(10**6)}"
        )
        self.client.on_connect = lambda c, *_: c.subscribe("wayline/v1/+/up", qos=0)
        self.client.on_message = self._seen
        self.client.connect(addr.host, addr.port)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _seen(self, _c, _u, msg):  # type: ignore[no-untyped-def]
        """Keep honest devices' entries (its own forgeries come back here too: skip them)."""
        if msg.topic.split("/")[2] not in self.devices or len(self.seen) >= 5000:
            return
        try:
            env = decode(bytes(msg.payload))
        except Exception:
            return
        if env.src == msg.topic.split("/")[2] and 0 < env.seq < 10**6 and env.lc < 10**9:
            self.seen.append(bytes(msg.payload))

    def message(self, kind: str) -> tuple[str, bytes] | None:
        """The topic and payload of one hostile message of ``kind`` (None: none to replay)."""
        r = self.rng
        dev = r.choice(self.devices)
        if kind == "forged_src":
            other = r.choice([d for d in self.devices if d != dev] or ["someone-else"])
            env = make_envelope(src=other, seq=1, lc=1, body=_sample(0))
            return up_topic(dev), encode(env)
        if kind == "unknown_device":
            ghost = f"ghost-{r.randrange(100)}"
            return up_topic(ghost), encode(make_envelope(src=ghost, seq=1, lc=1, body=_sample(0)))
        if kind == "wrong_role":
            body = DeviceState(status="online", role="depot", at=int(time.time() * 1000))
            return state_topic(dev), encode(make_envelope(src=dev, seq=0, lc=1, body=body))
        if kind == "replay":
            if not self.seen:
                return None
            payload = r.choice(self.seen)
            return up_topic(decode(payload).src), payload
        if kind == "lc_bound":
            env = make_envelope(src=dev, seq=1, lc=2**52 + r.randrange(2**40), body=_sample(0))
            return up_topic(dev), encode(env)
        if kind == "seq_bound":
            env = make_envelope(src=dev, seq=2**40 + r.randrange(2**40), lc=1, body=_sample(0))
            return up_topic(dev), encode(env)
        if kind == "forged_ack":
            env = make_envelope(src=dev, seq=0, lc=1, body=Ack(upto=10**6 + r.randrange(10**9)))
            return up_topic(dev), encode(env)
        if kind == "forged_resend":
            body = ResendRequest(from_seq=10**6 + r.randrange(10**9))
            return up_topic(dev), encode(make_envelope(src=dev, seq=0, lc=1, body=body))
        if kind == "forged_ack_to_device":
            body = Ack(upto=10**6 + r.randrange(10**9))
            return down_topic(dev), encode(make_envelope(src="cloud", seq=0, lc=1, body=body))
        if kind == "oversize":
            return up_topic(dev), r.randbytes(64 * 1024 + 1 + r.randrange(64 * 1024))
        assert kind == "garbage"
        return up_topic(dev), r.randbytes(1 + r.randrange(300))

    def _run(self) -> None:
        while not self._stop:
            if not self.running.is_set():
                self.idle.set()
                self.running.wait(0.1)
                continue
            self.idle.clear()
            kind = self.rng.choice(KINDS)
            msg = self.message(kind)
            if msg is not None:
                info = self.client.publish(msg[0], msg[1], qos=1)
                with contextlib.suppress(RuntimeError):  # not connected: not sent
                    info.wait_for_publish(10)
                if info.is_published():  # the broker has it; otherwise not counted as sent
                    self.sent[kind] += 1
            time.sleep(self.rng.expovariate(self.rate))

    def start(self) -> None:
        self.running.set()
        self._thread.start()

    def pause(self) -> None:
        self.running.clear()
        self.idle.wait(30)

    def resume(self) -> None:
        self.idle.clear()
        self.running.set()

    def close(self) -> None:
        self._stop = True
        self.running.set()
        self._thread.join(30)
        self.client.disconnect()
        self.client.loop_stop()


# -- the coordinator: start, scrape, kill ------------------------------------------------


_METRIC = re.compile(r'^wayline_sync_(?:rejected|duplicates)_total(?:\{reason="([^"]+)"\})? (\S+)$')


def scrape(port: int, token: str) -> Counter[str]:
    """The coordinator's refusals by reason, and its duplicates, from ``/metrics``."""
    import httpx

    text = httpx.get(
        f"http://127.0.0.1:{port}/metrics",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).text
    out: Counter[str] = Counter()
    for line in text.splitlines():
        if m := _METRIC.match(line):
            reason, value = m.groups()
            out[reason or "duplicates"] += int(float(value))
    return out


def settled(port: int, token: str, timeout_s: float = 20.0) -> Counter[str]:
    """Read the counters until two reads 0.3 s apart agree (the inbox has been worked)."""
    last, deadline = scrape(port, token), time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = scrape(port, token)
        if now == last:
            return now
        last = now
    return last


class Cloud:
    """The ``wayline cloud`` process of the campaign, restartable, its counters kept."""

    def __init__(self, url: str, work: Path, token: str) -> None:
        self.url, self.db, self.log, self.token = url, work / "cloud.db", work / "cloud.log", token
        self.port = free_port()
        self.counts: Counter[str] = Counter()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        since = int(time.time() * 1000)
        self.proc = _cloud(
            self.url,
            self.db,
            self.log,
            env={"WAYLINE_DEVICE_POLICY": "registered"},
            args=("--http", f"127.0.0.1:{self.port}"),
        )
        _wait_cloud_online(self.url, since, self.log)
        deadline = time.monotonic() + 60
        while True:  # the HTTP side may come up a little after the sync side
            try:
                scrape(self.port, self.token)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def bank(self) -> None:
        """Add this life's settled counters to the totals (before it ends)."""
        self.counts.update(settled(self.port, self.token))

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _admin(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "wayline", "admin", *args],
        cwd=ROOT,
        env={**os.environ, "WAYLINE_ENV": "development"},
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def honest_facts(db: Path, devices: list[str]) -> dict[str, list[int]]:
    """Per device, the sample index of each applied fact, in the cloud's seq order."""
    out: dict[str, list[int]] = {d: [] for d in devices}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as c:
        for src, payload in c.execute(
            "SELECT src, payload FROM events WHERE kind = 'telemetry' ORDER BY src, seq"
        ):
            if src in out:
                out[src].append(round(decode(payload).body.odometer_km - 1000.0))  # type: ignore[union-attr]
    return out


# -- the campaign ---------------------------------------------------------------------------


def campaign(
    work: Path,
    *,
    seed: int,
    devices: int,
    messages: int,
    kills: int,
    broker_kills: int,
    seconds: float,
    drain_s: float,
    rate: float,
) -> dict[str, Any]:
    """Run the campaign in ``work``; return its counts."""
    rng = random.Random(seed)
    ids = [device_id(k) for k in range(devices)]
    db = work / "cloud.db"
    for i, dev in enumerate(ids):
        _admin("add-device", "--id", dev, "--role", "vehicle", "--password-file",
               str(work / "passwd"), "--db", str(db), "--generate-password",
               *(("--init",) if i == 0 else ()))  # fmt: skip
    token = _admin("create-token", "--db", str(db), "--name", "bench", "--role", "viewer")
    token = token.strip().splitlines()[0]
    broker = MosquittoBroker(work / "broker")
    broker.start()
    cloud = Cloud(broker.url, work, token)
    fleets: list[subprocess.Popen[str]] = []
    attacker: Attacker | None = None
    try:
        cloud.start()
        half = (devices + 1) // 2
        for first, count in ((0, half), (half, devices - half)):
            if count:
                fleets.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "bench.hostile", "--fleet", "--url", broker.url,
                         "--dir", str(work), "--first", str(first), "--count", str(count),
                         "--messages", str(messages), "--seconds", str(seconds),
                         "--drain", str(drain_s)],
                        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                    )
                )  # fmt: skip
        for f in fleets:
            assert f.stdout is not None and f.stdout.readline().strip() == "ready"
        attacker = Attacker(broker.url, ids, rng, rate)
        attacker.start()
        t0 = time.monotonic()
        events = sorted(
            [(rng.uniform(0.1, 0.9) * seconds, "cloud") for _ in range(kills)]
            + [(rng.uniform(0.1, 0.9) * seconds, "broker") for _ in range(broker_kills)]
        )
        done: Counter[str] = Counter()
        for at, what in events:
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            attacker.pause()
            cloud.bank()
            if what == "cloud":
                cloud.kill()
                time.sleep(rng.uniform(0.0, 1.0))
            else:
                time.sleep(2.5)  # past the broker's autosave: what it took is on disk
                broker.restart(persistence=True, kill=True)
                cloud.kill()  # its counters are banked; a fresh life after the broker's
            done[what] += 1
            cloud.start()
            attacker.resume()
        for f in fleets:
            assert f.stdout is not None and f.stdout.readline().strip() == "emitted"
        attacker.pause()
        for f in fleets:
            assert f.stdin is not None
            f.stdin.write("drain\n")
            f.stdin.flush()
        results = []
        for f in fleets:
            assert f.stdout is not None
            results.append(json.loads(f.stdout.readline()))
            f.wait(60)
        cloud.bank()
    finally:
        if attacker is not None:
            attacker.close()
        for f in fleets:
            if f.poll() is None:
                f.kill()
                f.wait(30)
            for pipe in (f.stdin, f.stdout):
                if pipe is not None:
                    pipe.close()
        cloud.stop()
        broker.stop()
    facts = honest_facts(db, ids)
    pending = {d: n for r in results for d, n in r["pending"].items()}
    applied = sum(len(set(v)) for v in facts.values())
    refusals = {k: v for k, v in cloud.counts.items() if k != "duplicates"}
    hostile = dict(sorted(attacker.sent.items()))
    reaching = sum(n for k, n in hostile.items() if k in TO_COORDINATOR)
    return {
        "seed": seed,
        "devices": devices,
        "honest_sent": devices * messages,
        "applied": applied,
        "lost": devices * messages - applied,
        "doubled": sum(len(v) - len(set(v)) for v in facts.values()),
        "misordered": sum(
            sum(1 for a, b in itertools.pairwise(v) if b <= a) for v in facts.values()
        ),
        "stalled": sum(1 for n in pending.values() if n),
        "coordinator_kills": done["cloud"],
        "broker_kills": done["broker"],
        "hostile_sent": hostile,
        "hostile_total": sum(hostile.values()),
        "hostile_reaching_coordinator": reaching,
        "hostile_replays": hostile.get("replay", 0),
        "refusals": dict(sorted(refusals.items())),
        "refusals_total": sum(refusals.values()),
        "duplicates_dropped": cloud.counts["duplicates"],
        "refused_by_devices": sum(r["refused"] for r in results),
    }


def goal_met(r: dict[str, Any]) -> bool:
    """0 lost, 0 doubled, 0 misordered, 0 stalled; every hostile message that reached the
    coordinator refused with a reason, except exact replays, which are dropped as duplicates
    (correct: the entry is the device's own and already applied)."""
    reaching, replays = r["hostile_reaching_coordinator"], r["hostile_replays"]
    return (
        r["lost"] == r["doubled"] == r["misordered"] == r["stalled"] == 0
        and r["refusals_total"] >= reaching - replays
        and r["refusals_total"] + r["duplicates_dropped"] >= reaching
    )


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--fleet":
        return fleet_main(sys.argv[2:])
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--devices", type=int, default=6)
    p.add_argument("--messages", type=int, default=400, help="honest facts per device")
    p.add_argument("--kills", type=int, default=4, help="SIGKILLs of the coordinator")
    p.add_argument("--broker-kills", type=int, default=1, help="SIGKILLs of the broker")
    p.add_argument("--seconds", type=float, help="how long the devices emit (default by size)")
    p.add_argument("--rate", type=float, default=40.0, help="hostile messages per second")
    p.add_argument("--drain", type=float, default=120.0, help="drain timeout, seconds")
    p.add_argument("--quick", action="store_true", help="2 devices x 40, 1 coordinator kill")
    a = p.parse_args()
    if a.quick:
        a.devices, a.messages, a.kills, a.broker_kills = 2, 40, 1, 0
        a.seconds, a.drain = a.seconds or 6.0, min(a.drain, 60.0)
    seconds = a.seconds or max(10.0, 8.0 * (a.kills + a.broker_kills))
    with tempfile.TemporaryDirectory(prefix="wayline-hostile-") as tmp:
        r = campaign(
            Path(tmp), seed=a.seed, devices=a.devices, messages=a.messages, kills=a.kills,
            broker_kills=a.broker_kills, seconds=seconds, drain_s=a.drain, rate=a.rate,
        )  # fmt: skip
    width = max(len(k) for k in r)
    for k, v in r.items():
        print(f"{k:<{width}}  {v}")
    ok = goal_met(r)
    print(
        f"goal: 0 lost, 0 doubled, 0 misordered, 0 stalled, every hostile message refused "
        f"with a reason (exact replays dropped as duplicates): {'met' if ok else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
