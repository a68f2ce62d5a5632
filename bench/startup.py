"""Benchmark of an edge process's start-up and footprint: what a gateway pays to run Wayline.

    .venv/bin/python -m bench.startup [--runs 5] [--idle 2.0] [--quick]

*Agents*: ``wayline vehicle`` and ``wayline depot`` (``--id``, ``--broker``, ``--db``, no
HTTP), each started ``--runs`` times (after one start not counted, which writes the
byte-code as an install would) as a process of its own against a real Mosquitto
(``tests.helpers.MosquittoBroker``), with a fresh store and device id every run. The command
is this environment's ``wayline`` script running this checkout's code (``PYTHONPATH``).
"Online" is the time from just before the process is spawned to the agent's retained
``online`` state arriving at a client subscribed beforehand (``wayline/v1/<id>/state``); the
resident set is ``VmRSS`` from ``/proc/PID/status`` after ``--idle`` more seconds (``VmHWM``
is its peak). The largest imports of one ``wayline vehicle`` start are listed from
``-X importtime``.

*CLI*: wall time of ``wayline --help`` and, for scale, of ``python -c pass``, ``--runs``
times each (at least 5).

*Install size* (skipped with ``--quick``): for each of ``edge`` and ``cloud``, a fresh
virtual environment (no pip in it) in a temporary directory, into which this checkout's
files (those git tracks or would add, as they are in the working tree) are installed
non-editable with ``pip --python VENV install SRC[extra]`` (the C extension compiled on the
way); reported: ``du`` of its site-packages, the number of distributions, the ten largest (by
the sizes of the files each one's RECORD lists) and whether any cloud-only distribution got
in. From the edge install, ``wayline --help`` and one ``wayline vehicle`` start are timed the
same way as above.

Goals (issue 20): ``wayline vehicle`` idle RSS < 80 MB and online < 0.5 s after start;
``wayline --help`` < 0.3 s. Prints Markdown tables; never fails on a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from protocol import decode, state_topic
from tests.helpers import REPO_ROOT, MosquittoBroker, free_port

CLOUD_ONLY = ("ortools", "pyvrp", "pyvroom", "pandas", "matplotlib")
GOAL_RSS_MB = 80.0
GOAL_ONLINE_S = 0.5
GOAL_HELP_S = 0.3
ONLINE_TIMEOUT_S = 60.0

SIZES_SCRIPT = """
import json, importlib.metadata as md
out = {}
for d in md.distributions():
    size = 0
    for f in d.files or []:
        p = f.locate()
        if p.is_file():
            size += p.stat().st_size
    out[d.metadata["Name"]] = size
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Wayline:
    """How to run the ``wayline`` command of one environment."""

    command: list[str]
    env: dict[str, str] | None = None  # None: this process's environment


@dataclass
class Start:
    """One start of an agent: seconds to online, and its memory once idle (kB)."""

    online_s: float
    rss_kb: int
    hwm_kb: int


def wayline_of(python: Path, source: Path | None = None) -> Wayline:
    """``wayline`` of the environment of ``python``: its console script. With ``source``,
    the packages are imported from that checkout (``PYTHONPATH``), whatever the
    environment's editable install points at."""
    script = python.parent / "wayline"
    command = [str(script)] if script.exists() else [str(python), "-m", "wayline"]
    if source is None:
        return Wayline(command)
    return Wayline(command, {**os.environ, "PYTHONPATH": str(source)})


def this_checkout() -> Wayline:
    """``wayline`` of this interpreter's environment, running this checkout's code."""
    return wayline_of(Path(sys.executable), REPO_ROOT)


def memory_kb(pid: int) -> tuple[int, int]:
    """VmRSS and VmHWM of a process, in kB, from /proc."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found["VmRSS"], found["VmHWM"]


class OnlineWatch:
    """A client subscribed to one device's state; notes when ``online`` first arrives."""

    def __init__(self, broker: MosquittoBroker, device: str) -> None:
        self.at: float | None = None
        self.seen = threading.Event()
        subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bench-watch-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        topic = state_topic(device)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        if not subscribed.wait(10):
            self.close()
            raise RuntimeError("the state watcher could not subscribe")

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        if getattr(decode(bytes(msg.payload)).body, "status", None) == "online":
            if self.at is None:
                self.at = time.perf_counter()
            self.seen.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def start_agent(
    wayline: Wayline,
    role: str,
    broker: MosquittoBroker,
    work: Path,
    idle_s: float,
    python_flags: tuple[str, ...] = (),
    serve: bool = False,
) -> tuple[Start, str]:
    """Start ``wayline ROLE`` once (``serve``: with its tablet or terminal on a loopback
    port); its figures and its stderr. Raises if it never comes online (with the tail of
    its log)."""
    device = f"{role[:3]}-{uuid.uuid4().hex[:8]}"
    err = work / f"{device}.stderr"
    args = [role, "--id", device, "--broker", broker.url, "--db", str(work / f"{device}.db")]
    if serve:
        args += ["--http", f"127.0.0.1:{free_port()}"]
    command = [*wayline.command, *args]
    if python_flags:  # through the interpreter, not the console script
        command = [sys.executable, *python_flags, "-m", "wayline", *args]
    watch = OnlineWatch(broker, device)
    try:
        with err.open("wb") as stderr:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=stderr, env=wayline.env
            )
        try:
            deadline = t0 + ONLINE_TIMEOUT_S
            while not watch.seen.wait(0.01):
                if proc.poll() is not None or time.perf_counter() > deadline:
                    tail = "\n".join(err.read_text().splitlines()[-5:])
                    raise RuntimeError(f"wayline {role} never came online:\n{tail}")
            assert watch.at is not None
            online_s = watch.at - t0
            time.sleep(idle_s)
            rss, hwm = memory_kb(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(20)
    finally:
        watch.close()
    return Start(online_s, rss, hwm), err.read_text()


def wall_times(command: list[str], runs: int, env: dict[str, str] | None = None) -> list[float]:
    """Wall seconds of ``runs`` runs of ``command`` (each must exit 0)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(
            command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        times.append(time.perf_counter() - t0)
    return times


def largest_imports(importtime: str, count: int = 10) -> list[tuple[str, float]]:
    """The top-level imports of an ``-X importtime`` log by cumulative seconds."""
    found = []
    for line in importtime.splitlines():
        if not line.startswith("import time:") or line.rstrip().endswith("imported package"):
            continue
        _, cumulative, name = line.split("|", 2)
        if not name.startswith("  "):  # depth 0: imported by the command itself
            found.append((name.strip(), int(cumulative) / 1e6))
    return sorted(found, key=lambda x: -x[1])[:count]


def mb(kb: float) -> str:
    return f"{kb / 1024:.1f}"


def agents(broker: MosquittoBroker, work: Path, runs: int, idle_s: float) -> None:
    wayline = this_checkout()
    print(f"## Agents ({runs} starts each after one not counted, RSS after {idle_s:g} s idle)")
    print()
    print(
        "| command | online median s | online max s | idle RSS median MB | RSS max MB "
        "| peak (VmHWM) max MB | goals |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for role, serve in (("vehicle", False), ("vehicle", True), ("depot", False), ("depot", True)):
        name = f"wayline {role}" + (" --http (tablet)" if role == "vehicle" else " --http")
        name = name if serve else f"wayline {role}"
        try:
            start_agent(wayline, role, broker, work, 0.0, serve=serve)  # byte-code, disk cache
            starts = [
                start_agent(wayline, role, broker, work, idle_s, serve=serve)[0]
                for _ in range(runs)
            ]
        except RuntimeError as exc:
            print(f"| {name} | {' '.join(str(exc).split())[-300:]} ||||||")
            continue
        online = [s.online_s for s in starts]
        rss = [s.rss_kb for s in starts]
        goals = f"< {GOAL_ONLINE_S} s, < {GOAL_RSS_MB:.0f} MB" if role == "vehicle" else ""
        print(
            f"| {name} | {statistics.median(online):.3f} | {max(online):.3f} "
            f"| {mb(statistics.median(rss))} | {mb(max(rss))} "
            f"| {mb(max(s.hwm_kb for s in starts))} | {goals} |"
        )
    print()
    try:
        _, log = start_agent(wayline, "vehicle", broker, work, 0.0, ("-X", "importtime"))
    except RuntimeError:
        return
    print("Largest imports of one `wayline vehicle` start (`-X importtime`, cumulative):")
    print()
    print("| module | s |")
    print("|---|---:|")
    for name, seconds in largest_imports(log):
        print(f"| {name} | {seconds:.3f} |")
    print()


def cli(runs: int) -> None:
    runs = max(runs, 5)
    wayline = this_checkout()
    print(f"## CLI ({runs} runs each)")
    print()
    print("| command | median s | max s | goal |")
    print("|---|---:|---:|---|")
    rows = [
        ("python -c pass", [sys.executable, "-c", "pass"], ""),
        ("wayline --help", [*wayline.command, "--help"], f"< {GOAL_HELP_S} s"),
        ("wayline vehicle --help", [*wayline.command, "vehicle", "--help"], ""),
    ]
    for label, command, goal in rows:
        try:
            times = wall_times(command, runs, wayline.env)
        except subprocess.CalledProcessError as exc:
            print(f"| {label} | exit {exc.returncode} ||| {goal} |")
            continue
        print(f"| {label} | {statistics.median(times):.3f} | {max(times):.3f} | {goal} |")
    print()


def copy_sources(dest: Path) -> None:
    """This checkout's files (tracked, or untracked and not ignored) copied to ``dest``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        src = REPO_ROOT / os.fsdecode(raw)
        if src.is_file():
            (dest / src.relative_to(REPO_ROOT)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / src.relative_to(REPO_ROOT))


def install(extra: str, src: Path, work: Path) -> tuple[Path, float]:
    """A fresh venv with ``wayline[extra]`` installed from ``src``; its python and the
    install's wall seconds."""
    venv = work / f"venv-{extra}"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    t0 = time.perf_counter()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"{src}[{extra}]",
        ],
        capture_output=True,
        text=True,
    )
    if run.returncode:
        raise RuntimeError(f"pip install wayline[{extra}] failed:\n{run.stderr[-3000:]}")
    return python, time.perf_counter() - t0


def site_packages(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip())


def du_mb(path: Path) -> float:
    out = subprocess.run(["du", "-sk", str(path)], check=True, capture_output=True, text=True)
    return int(out.stdout.split()[0]) / 1024


def install_sizes(broker: MosquittoBroker, work: Path, idle_s: float) -> None:
    src = work / "src"
    copy_sources(src)
    print("## Install size (fresh venv, non-editable, without pip itself)")
    print()
    edge_python: Path | None = None
    tables = []
    for extra in ("edge", "cloud"):
        python, seconds = install(extra, src, work)
        if extra == "edge":
            edge_python = python
        sizes = json.loads(
            subprocess.run(
                [str(python), "-c", SIZES_SCRIPT], check=True, capture_output=True, text=True
            ).stdout
        )
        normalized = {name.lower().replace("_", "-") for name in sizes}
        cloud_only = [d for d in CLOUD_ONLY if d in normalized]
        print(
            f"- `wayline[{extra}]`: site-packages {du_mb(site_packages(python)):.0f} MB (du), "
            f"{len(sizes)} distributions, installed in {seconds:.0f} s; "
            f"cloud-only distributions: {', '.join(cloud_only) or 'none'}"
        )
        tables.append((extra, sorted(sizes.items(), key=lambda x: -x[1])[:10]))
    print()
    for extra, top in tables:
        print(f"Ten largest distributions of `wayline[{extra}]`:")
        print()
        print("| distribution | MB |")
        print("|---|---:|")
        for name, size in top:
            print(f"| {name} | {size / 1e6:.1f} |")
        print()
    assert edge_python is not None
    wayline = wayline_of(edge_python)
    try:
        help_s = wall_times([*wayline.command, "--help"], 5)
        start_agent(wayline, "vehicle", broker, work, 0.0)
        start, _ = start_agent(wayline, "vehicle", broker, work, idle_s)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"From the edge install: `wayline vehicle` did not come online: {exc}")
    else:
        print(
            f"From the edge install: `wayline vehicle` online in {start.online_s:.3f} s, "
            f"idle RSS {mb(start.rss_kb)} MB; `wayline --help` median "
            f"{statistics.median(help_s):.3f} s"
        )
    print()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="starts per agent (default 5)")
    parser.add_argument("--idle", type=float, default=2.0, help="seconds online before RSS")
    parser.add_argument("--quick", action="store_true", help="3 starts; no install sizes")
    args = parser.parse_args(argv)
    runs = 3 if args.quick else args.runs

    print(
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs; {' '.join(this_checkout().command)} on {REPO_ROOT}"
    )
    print()
    with tempfile.TemporaryDirectory(prefix="wayline-startup-") as tmp:
        work = Path(tmp)
        broker = MosquittoBroker(work / "broker")
        broker.start()
        try:
            agents(broker, work, runs, args.idle)
            cli(runs)
            if not args.quick:
                install_sizes(broker, work, args.idle)
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
