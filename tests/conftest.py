"""Fixtures for the whole Wayline test suite.

Brokers
    ``mosquitto`` (session): one real Mosquitto from ``deploy/mosquitto.conf`` on a free
    127.0.0.1 port, shared by all tests. Use unique device/client ids
    (``tests.helpers.unique_id``). If a test stops or kills it, it is started again after
    that test, but prefer ``broker`` for tests that stop, kill or restart the broker.
    ``broker`` (function): a private Mosquitto for one test.
    Both are ``tests.helpers.MosquittoBroker``: ``.host .port .url .start() .stop()
    .kill() .restart(persistence=True, kill=False) .log_text()``.

Strictness (autouse)
    A log record at ERROR or above fails the test unless expected: mark the test
    ``@pytest.mark.allow_errors`` (all) or ``@pytest.mark.allow_errors("regex", ...)``, or
    append regexes to the ``allowed_errors`` fixture. Threads and child processes a test
    started must be gone when it ends.

Browser
    ``chromium_path``, ``browser`` (session, Playwright sync API over the system Chromium;
    never ``playwright install``) and ``page`` (function, fresh context).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BrokerError, MosquittoBroker

# Tests run the coordinator on loopback with development secrets; the processes they start
# inherit this. Anywhere else, an unset WAYLINE_ENV means production.
os.environ["WAYLINE_ENV"] = "development"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Seconds a test's threads and child processes get to finish after it ends.
LEFTOVER_GRACE = 5.0
#: Session-owned brokers: their processes are not a test's leftovers.
_SESSION_BROKERS: list[MosquittoBroker] = []


# --- brokers -------------------------------------------------------------------------


def _start_broker(workdir: Path, attempts: int = 3) -> MosquittoBroker:
    """Start a broker on a free port, retrying if another process grabbed the port."""
    for attempt in range(attempts):
        broker = MosquittoBroker(workdir / f"try{attempt}" if attempt else workdir)
        try:
            broker.start()
        except BrokerError:
            if attempt == attempts - 1:
                raise
            continue
        return broker
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    """A real Mosquitto shared by the session (see module docstring)."""
    broker = _start_broker(tmp_path_factory.mktemp("mosquitto"))
    _SESSION_BROKERS.append(broker)
    try:
        yield broker
    finally:
        broker.stop()
        _SESSION_BROKERS.remove(broker)


@pytest.fixture(autouse=True)
def _restore_session_broker(request: pytest.FixtureRequest) -> Iterator[None]:
    """Restart the session broker after a test that left it stopped."""
    yield
    if "mosquitto" in request.fixturenames:
        broker: MosquittoBroker = request.getfixturevalue("mosquitto")
        if not broker.running:
            broker.start()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A private Mosquitto for one test, free to stop, kill and restart."""
    instance = _start_broker(tmp_path / "broker")
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def cloud(broker: MosquittoBroker, tmp_path: Path) -> Iterator[Any]:
    """A real cloud coordinator on the test's private broker, with fast sync timings."""
    from cloud import CloudSettings, Coordinator
    from sync import parse_broker_url
    from tests.support import FAST

    coordinator = Coordinator(
        CloudSettings(db_path=tmp_path / "cloud.db", broker=parse_broker_url(broker.url), sync=FAST)
    )
    coordinator.start()
    try:
        yield coordinator
    finally:
        coordinator.stop()


# --- errors in logs ----------------------------------------------------------------------


@pytest.fixture
def allowed_errors() -> list[str]:
    """Regexes of ERROR log messages this test expects; append to it."""
    return []


@pytest.fixture(autouse=True)
def _fail_on_error_logs(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture, allowed_errors: list[str]
) -> Iterator[None]:
    """A record at ERROR or above that the test did not expect fails it (Home Assistant)."""
    yield
    marker = request.node.get_closest_marker("allow_errors")
    if marker is not None and not marker.args:
        return
    patterns = [re.compile(p) for p in [*allowed_errors, *(marker.args if marker else ())]]
    unexpected = []
    for when in ("setup", "call", "teardown"):
        for record in caplog.get_records(when):  # type: ignore[arg-type]
            if record.levelno < logging.ERROR:
                continue
            message = record.getMessage()
            if any(p.search(message) for p in patterns):
                continue
            unexpected.append(f"{record.levelname} {record.name}: {message[:300]}")
    if unexpected:
        pytest.fail(
            "unexpected error log records (mark the test allow_errors('regex') or append to "
            "allowed_errors if they are expected):\n  " + "\n  ".join(unexpected),
            pytrace=False,
        )


# --- no leftover threads or processes ---------------------------------------------------


def _child_pids() -> set[int]:
    """Live (non-zombie) direct children of this process, from /proc."""
    pids: set[int] = set()
    task_dir = Path(f"/proc/{os.getpid()}/task")
    if not task_dir.exists():
        return pids
    for task in task_dir.iterdir():
        try:
            pids.update(int(p) for p in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return {pid for pid in pids if _proc_state(pid) not in ("Z", "X", None)}


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _proc_cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:200]


@pytest.fixture(autouse=True)
def _no_leftovers(request: pytest.FixtureRequest) -> Iterator[None]:
    """Threads and child processes a test started must be gone when it ends."""
    threads_before = set(threading.enumerate())
    children_before = _child_pids()
    yield
    deadline = time.monotonic() + LEFTOVER_GRACE
    leftover_threads = [t for t in threading.enumerate() if t not in threads_before]
    for thread in leftover_threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    leftover_threads = [t for t in leftover_threads if t.is_alive()]

    def new_children() -> set[int]:
        session_pids = {b.pid for b in _SESSION_BROKERS}
        return _child_pids() - children_before - session_pids

    leftover_children = new_children()
    while leftover_children and time.monotonic() < deadline:
        time.sleep(0.05)
        leftover_children = new_children()
    problems = [f"thread {t.name!r} (daemon={t.daemon})" for t in leftover_threads]
    problems += [f"process {pid}: {_proc_cmdline(pid)}" for pid in sorted(leftover_children)]
    if problems:
        pytest.fail(
            f"{request.node.nodeid} left these running:\n  " + "\n  ".join(problems),
            pytrace=False,
        )


@pytest.hookimpl(trylast=True)  # after the runner has torn down session fixtures
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After all fixtures are torn down, no child process may survive; kill and report."""
    survivors = _child_pids()
    if not survivors:
        return
    lines = [f"{pid}: {_proc_cmdline(pid)}" for pid in sorted(survivors)]
    for pid in survivors:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("child processes left at session end (killed):", red=True)
        for line in lines:
            reporter.write_line(f"  {line}", red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --- browser -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The system Chromium (Playwright's own browser downloads cannot work here)."""
    path = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    path = path or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium not found; `make test` installs it (apt-get)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    """Playwright (sync API) Chromium for the session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page in a fresh browser context, closed after the test."""
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()
