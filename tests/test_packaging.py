"""Packaging by role: what ``wayline[edge]`` pulls in, and what an edge process imports.

The declarations are read from the installed metadata (``importlib.metadata``), the imports
of our packages from their source with ``ast`` (an import inside a function counts too), and
what a running process loaded from ``python -X importtime``: a real ``wayline vehicle`` and
``wayline depot`` (with the driver's tablet and the sorter's terminal served) brought online
on a real Mosquitto, and a real ``wayline resequence`` run by the compiled search.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from paho.mqtt.enums import CallbackAPIVersion

from edge.sequencer import SequencerParams, make_sequencer, problem_from_instance, simulate
from protocol import decode, state_topic
from routing import read_instance
from tests.helpers import (
    DATA_DIR,
    REPO_ROOT,
    MosquittoBroker,
    free_port,
    port_accepts,
    unique_id,
)

#: Distributions an edge install must not pull, directly or through another.
CLOUD_DISTRIBUTIONS = {"ortools", "pyvrp", "pyvroom", "pandas", "matplotlib"}
#: Top-level modules an edge process must not import: those distributions' modules, and
#: the cloud and the simulator of our own.
EDGE_NEVER_LOADS = {
    "ortools",
    "pyvrp",
    "vroom",
    "pandas",
    "matplotlib",
    "sqlite_utils",
    "cloud",
    "firmware_sim",
}

#: Our importable packages, and the extras whose declarations must cover the third-party
#: modules each imports (the core is always included).
ROLE_EXTRAS: dict[str, tuple[str, ...]] = {
    "protocol": (),
    "sync": (),
    "routing": (),
    "edge": ("edge",),
    "cloud": ("cloud",),
    "firmware_sim": ("demo",),
    "wayline": ("edge",),  # the CLI runs on a gateway; cloud commands load their own side
}
#: Modules of a package that may import what another role declares: the re-sequencer's
#: OR-Tools and PyVRP sequencers, made only when asked for (``make_sequencer``).
OPTIONAL_MODULES: dict[str, tuple[str, ...]] = {
    "edge.sequencer.ortools_solver": ("cloud",),
    "edge.sequencer.pyvrp_solver": ("cloud",),
}

ONLINE_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


# --- declarations ------------------------------------------------------------------------


def _requirements(dist: str, extras: frozenset[str]) -> list[Requirement]:
    """The requirements of installed ``dist`` that apply with ``extras`` requested."""
    envs = [{"extra": e} for e in sorted(extras)] or [{"extra": ""}]
    found = []
    for line in importlib.metadata.requires(dist) or []:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate(env) for env in envs):
            found.append(req)
    return found


def declared(*extras: str) -> set[str]:
    """Distributions Wayline names itself with ``extras`` (its own extras followed)."""
    names: set[str] = set()
    todo, seen = [frozenset(extras)], set()
    while todo:
        wanted = todo.pop()
        if wanted in seen:
            continue
        seen.add(wanted)
        for req in _requirements("wayline", wanted):
            if canonicalize_name(req.name) == "wayline":
                todo.append(frozenset(req.extras))
            else:
                names.add(canonicalize_name(req.name))
    return names


def pulled(*extras: str) -> set[str]:
    """Every distribution installing ``wayline[extras]`` brings, through any chain."""
    names: set[str] = set()
    todo = [("wayline", frozenset(extras))]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        dist, wanted = todo.pop()
        if (dist, wanted) in seen:
            continue
        seen.add((dist, wanted))
        names.add(dist)
        for req in _requirements(dist, wanted):
            todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    names.discard("wayline")
    return names


def third_party_imports() -> dict[str, set[str]]:
    """Top-level third-party module → our modules importing it, across ``ROLE_EXTRAS``."""
    ours = set(ROLE_EXTRAS)
    found: dict[str, set[str]] = {}
    for package in ROLE_EXTRAS:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            module = ".".join(parts)
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in ours:
                        found.setdefault(top, set()).add(module)
    return found


def test_the_edge_extra_pulls_no_cloud_solver_data_or_plotting_library() -> None:
    edge = pulled("edge")
    assert "numpy" in edge and "paho-mqtt" in edge  # the closure is read at all
    assert not edge & CLOUD_DISTRIBUTIONS, (
        f"pip install wayline[edge] pulls {sorted(edge & CLOUD_DISTRIBUTIONS)}"
    )
    # the cloud does need them: the check above looks in the right place
    assert {"ortools", "pyvrp", "pyvroom"} <= pulled("cloud")
    assert "matplotlib" in pulled("demo")


def test_every_imported_library_is_declared() -> None:
    providers = importlib.metadata.packages_distributions()
    anywhere = declared("edge", "cloud", "demo")
    problems = []
    for top, importers in sorted(third_party_imports().items()):
        dists = {canonicalize_name(d) for d in providers.get(top, [])}
        if not dists:
            problems.append(f"{top} (imported by {sorted(importers)}): no installed distribution")
        elif not dists & anywhere:
            problems.append(f"{top} (imported by {sorted(importers)}): {sorted(dists)} undeclared")
    assert not problems, "declare these in pyproject.toml:\n" + "\n".join(problems)


def test_each_package_imports_only_what_its_role_declares() -> None:
    providers = importlib.metadata.packages_distributions()
    problems = []
    for top, importers in sorted(third_party_imports().items()):
        dists = {canonicalize_name(d) for d in providers.get(top, [])}
        for module in sorted(importers):
            extras = OPTIONAL_MODULES.get(module, ROLE_EXTRAS[module.split(".")[0]])
            if not dists & declared(*extras):
                role = "core" + "".join(f" + {e}" for e in extras)
                problems.append(f"{module} imports {top}, which {role} does not declare")
    assert not problems, "\n".join(problems)


def test_numpy_is_declared_for_the_edge() -> None:
    assert "numpy" in declared("edge")  # the re-sequencer and travel times use it


# --- the edge processes ------------------------------------------------------------------


def loaded_modules(importtime: str) -> dict[str, list[str]]:
    """Modules named by ``-X importtime`` output → the chain of modules that imported each
    (innermost first). A line's importer is the next line indented one level less."""
    rows: list[tuple[int, str]] = []
    for line in importtime.splitlines():
        if not line.startswith("import time:") or line.rstrip().endswith("imported package"):
            continue
        name = line.split("|", 2)[2]
        stripped = name.lstrip(" ")
        rows.append(((len(name) - len(stripped)) // 2, stripped.strip()))
    found: dict[str, list[str]] = {}
    for i, (depth, name) in enumerate(rows):
        chain, want = [], depth - 1
        for later_depth, later in rows[i + 1 :]:
            if want < 0:
                break
            if later_depth == want:
                chain.append(later)
                want -= 1
        found.setdefault(name, chain)
    return found


def offenders(importtime: str) -> list[str]:
    """The forbidden modules an importtime log shows, each with what imported it."""
    loaded = loaded_modules(importtime)
    return [
        f"{name} (via {' <- '.join(chain) or 'the command itself'})"
        for name, chain in sorted(loaded.items())
        if name in EDGE_NEVER_LOADS  # a submodule's package is always loaded first
    ]


def test_loaded_modules_reads_importtime_chains() -> None:
    log = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:        10 |         10 |     pandas._libs",
            "import time:        20 |         30 |   pandas",
            "import time:        40 |         70 | sync.store",
            "import time:         5 |          5 | cloud",
        ]
    )
    assert loaded_modules(log)["pandas._libs"] == ["pandas", "sync.store"]
    assert offenders(log) == ["cloud (via the command itself)", "pandas (via sync.store)"]


class StateWatch:
    """Waits for a device's retained ``online`` state stamped at or after ``since_ms``."""

    def __init__(self, broker: MosquittoBroker, device: str, since_ms: int) -> None:
        self.online = threading.Event()
        self.since_ms = since_ms
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=unique_id("watch"), protocol=mqtt.MQTTv5
        )
        topic = state_topic(device)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        body = decode(bytes(msg.payload)).body
        if getattr(body, "status", None) == "online" and body.at >= self.since_ms:  # type: ignore[union-attr]
            self.online.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run_until_online(
    command: list[str], device: str, broker: MosquittoBroker, http_port: int, work: Path
) -> str:
    """Run ``python -X importtime -m wayline COMMAND`` until ``device`` is online on
    ``broker`` and serves HTTP on ``http_port``, stop it with SIGTERM, and return its
    stderr (the importtime log and the agent's own log)."""
    err = work / f"{device}.stderr"
    watch = StateWatch(broker, device, int(time.time() * 1000) - 1000)
    try:
        with err.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-X", "importtime", "-m", "wayline", *command],
                cwd=REPO_ROOT,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        try:
            deadline = time.monotonic() + ONLINE_TIMEOUT_S
            while not (watch.online.is_set() and port_accepts("127.0.0.1", http_port)):
                if proc.poll() is not None:
                    pytest.fail(f"{command[0]} exited {proc.returncode}:\n{_tail(err)}")
                if time.monotonic() > deadline:
                    pytest.fail(f"{command[0]} not online in {ONLINE_TIMEOUT_S} s:\n{_tail(err)}")
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            # 0 once the command waits for the signal; -SIGTERM if it came a moment before
            # (the imports under test are all done by then either way)
            assert proc.wait(STOP_TIMEOUT_S) in (0, -signal.SIGTERM), _tail(err)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(STOP_TIMEOUT_S)
    finally:
        watch.close()
    return err.read_text()


def _tail(path: Path) -> str:
    """The process's own log, without the importtime lines."""
    lines = path.read_text().splitlines()
    return "\n".join(line for line in lines if not line.startswith("import time:"))[-3000:]


@pytest.mark.broker
@pytest.mark.e2e
@pytest.mark.parametrize("role", ["vehicle", "depot"])
def test_an_edge_agent_imports_no_cloud_solver_or_simulator(
    role: str, broker: MosquittoBroker, tmp_path: Path
) -> None:
    device = unique_id("van" if role == "vehicle" else "dep")
    port = free_port()
    command = [
        role,
        "--id",
        device,
        "--broker",
        broker.url,
        "--db",
        str(tmp_path / f"{device}.db"),
        "--http",
        f"127.0.0.1:{port}",
    ]
    log = run_until_online(command, device, broker, port, tmp_path)
    loaded = loaded_modules(log)
    assert "sync.store" in loaded and "edge" in loaded  # the log is read at all
    found = offenders(log)
    assert not found, f"wayline {role} imported: " + "; ".join(found)
    # numpy (declared) loads with the search at the first re-sequence, not at start
    assert "numpy" not in loaded, f"numpy at start, via {' <- '.join(loaded['numpy'])}"


def test_wayline_resequence_imports_no_cloud_solver() -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "wayline",
            "resequence",
            str(DATA_DIR / "solomon" / "C101.txt"),
            "--stops",
            "40",
            "--seconds",
            "0.1",
            "--json",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(json.loads(run.stdout)["order"]) == list(range(1, 41))
    loaded = loaded_modules(run.stderr)
    assert "edge.sequencer.lsearch" in loaded  # the compiled search ran
    found = offenders(run.stderr)
    assert not found, "wayline resequence imported: " + "; ".join(found)


# --- the re-sequencer without the cloud's solvers ----------------------------------------

RESEQUENCE = """
import json, sys
from edge.sequencer import SequencerParams, make_sequencer, problem_from_instance
from routing import read_instance
problem = problem_from_instance(read_instance(sys.argv[1]), list(range(1, 31)))
result = make_sequencer().solve(problem, SequencerParams(time_limit_s=0.05, seed=1))
print(json.dumps({"order": list(result.order), "modules": sorted(sys.modules)}))
"""


def test_the_default_resequencer_loads_no_cloud_solver() -> None:
    run = subprocess.run(
        [sys.executable, "-c", RESEQUENCE, str(DATA_DIR / "solomon" / "C101.txt")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout)
    assert len(out["order"]) == 30
    assert "edge.sequencer._lsearch" in out["modules"]  # the compiled search ran
    loaded = sorted({m.split(".")[0] for m in out["modules"]} & EDGE_NEVER_LOADS)
    assert not loaded, f"the default re-sequencer loaded {loaded}"


def _hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` unimportable, as on an install without them."""
    for name in modules:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            monkeypatch.delitem(sys.modules, loaded)
        monkeypatch.setitem(sys.modules, name, None)
    for ours in ("edge.sequencer.pyvrp_solver", "edge.sequencer.ortools_solver"):
        monkeypatch.delitem(sys.modules, ours, raising=False)


def _solve_c101(solver: str) -> Any:
    """``make_sequencer(solver=solver)``, after checking it routes 30 stops of C101."""
    problem = problem_from_instance(
        read_instance(str(DATA_DIR / "solomon" / "C101.txt")), list(range(1, 31))
    )
    params = SequencerParams(time_limit_s=0.05, seed=1)
    seq = make_sequencer(solver=solver)
    result = seq.solve(problem, params)
    assert sorted(result.order) == sorted(s.id for s in problem.stops)
    assert result.cost == pytest.approx(simulate(problem, result.order).cost(params))
    return seq


def test_without_the_cloud_solvers_the_default_is_the_compiled_search(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _hide(monkeypatch, "ortools", "pyvrp")
    assert type(_solve_c101("lsearch").primary).__name__ == "LocalSearchSequencer"


@pytest.mark.parametrize(
    ("hidden", "primary"),
    [(("pyvrp",), "OrToolsSequencer"), (("pyvrp", "ortools"), "NoneType")],
    ids=["no-pyvrp", "neither"],
)
def test_asked_for_pyvrp_the_next_installed_solver_or_the_greedy_answers(
    monkeypatch: pytest.MonkeyPatch, hidden: tuple[str, ...], primary: str
) -> None:
    _hide(monkeypatch, *hidden)
    assert type(_solve_c101("pyvrp").primary).__name__ == primary
