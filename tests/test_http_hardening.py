"""The web surfaces under hostile input: the coordinator's API and dashboard, the driver's
tablet and the sorter's terminal.

Real servers on 127.0.0.1 throughout (uvicorn in a thread, or ``wayline cloud`` as a
process), real SQLite stores, real Chromium for the cross-site form. Each refusal is a clear
4xx with a JSON reason, counted in ``wayline_http_refused_total{reason}``, and leaves the
server serving.
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cloud import CloudSettings, Coordinator, create_api
from cloud.operations import OperationsSettings
from cloud.ops import (
    DashboardUser,
    DeliveryError,
    OpsSettings,
    Role,
    WebhookEvent,
    hash_password,
)
from cloud.ops import webhooks as webhook_sending
from cloud.ops.webhook_addresses import check_target
from edge.depot import DepotAgent, DepotSettings
from edge.depot.web import create_terminal_app
from edge.pairing import Pairing
from edge.tablet_api import create_tablet_app
from edge.vehicle import VehicleAgent, VehicleSettings
from sync.http_guard import AttemptLimiter
from tests.helpers import MosquittoBroker, free_port, unique_id, wait_for
from tests.paired import PAIRING_CODE, pair_client
from tests.support import FAST, feed_plan, make_plan, tiny_png
from wayline.serve import HttpServer

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery"
SECRETS = {
    "WAYLINE_SESSION_SECRET": "s" * 8 + "-0123456789abcdef0123456789",
    "WAYLINE_TOKEN_PEPPER": "p" * 8 + "-0123456789abcdef0123456789",
    "WAYLINE_WEBHOOK_SECRET": "w" * 8 + "-0123456789abcdef0123456789",
}


# -- fixtures --------------------------------------------------------------------------------


def coordinator(path: Path, **ops: Any) -> Coordinator:
    """A coordinator whose API has no development bypass, with one ops user ``anna``."""
    access = {k: ops.pop(k) for k in list(ops) if k.startswith("login_")}
    settings = CloudSettings(
        db_path=path,
        broker=None,
        sync=FAST,
        operations=OperationsSettings(
            ops=OpsSettings(env="development", **access),
            dashboard_users=(DashboardUser("anna", hash_password(PASSWORD), (Role.OPS,)),),
            open_in_development=False,
            **ops,
        ),
    )
    return Coordinator(settings)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Coordinator, httpx.Client]]:
    c = coordinator(tmp_path / "cloud.db", login_max_failures=3, login_lockout_s=2)
    server = HttpServer(create_api(c), "127.0.0.1", free_port())
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            yield c, client
    finally:
        server.stop()
        c.stop()


def log_in(client: httpx.Client, name: str = "anna", password: str = PASSWORD) -> httpx.Response:
    return client.post(
        "/dashboard/login",
        data={"username": name, "password": password},
        headers={"Accept": "application/json"},
    )


def refused(client: httpx.Client, headers: dict[str, str] | None = None) -> dict[str, float]:
    """``wayline_http_refused_total`` by reason, from the app's ``/metrics``."""
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    text = answer.text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "wayline_http_refused":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    found[sample.labels["reason"]] = sample.value
    return found


def origin(client: httpx.Client) -> dict[str, str]:
    return {"Origin": str(client.base_url).rstrip("/")}


# -- body size ------------------------------------------------------------------------------


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def post_raw(port: int, head: bytes, body_chunks: Iterator[bytes], limit_s: float) -> bytes:
    """Send a request head and then body chunks until the server answers or closes; the
    answer's bytes (the status line first)."""
    with socket.create_connection(("127.0.0.1", port), timeout=limit_s) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        answer = b""
        deadline = time.monotonic() + limit_s
        for chunk in body_chunks:
            with contextlib.suppress(BlockingIOError):
                answer += sock.recv(65536)
            if answer or time.monotonic() > deadline:
                break
            try:
                sock.sendall(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            while b"\r\n\r\n" not in answer:
                more = sock.recv(65536)
                if not more:
                    break
                answer += more
            head_end = answer.find(b"\r\n\r\n")
            if head_end >= 0 and b"content-length" in answer[:head_end].lower():
                length = int(
                    next(
                        line.split(b":")[1]
                        for line in answer[:head_end].split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    )
                )
                while len(answer) < head_end + 4 + length:
                    more = sock.recv(65536)
                    if not more:
                        break
                    answer += more
        except (TimeoutError, ConnectionResetError):
            pass
        return answer


def megabytes(total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    block = b"x" * chunk
    for _ in range(total // chunk):
        yield block


def chunked(total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    block = b"x" * chunk
    for _ in range(total // chunk):
        yield b"%x\r\n" % chunk + block + b"\r\n"
    yield b"0\r\n\r\n"


@pytest.mark.broker
def test_an_unauthenticated_60_mb_post_is_refused_unread(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    """A real ``wayline cloud`` in production: 60 MB declared, 60 MB streamed in chunks, both
    answered 413 at once, and the process does not grow by the body."""
    port = free_port()
    env = {**os.environ, **SECRETS, "WAYLINE_ENV": "production"}
    log = (tmp_path / "cloud.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wayline", "cloud", "--broker", broker.url,
         "--db", str(tmp_path / "cloud.db"), "--http", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(lambda: _answers(port, proc), timeout=60, interval=0.1, message="the coordinator")
        assert httpx.post(f"http://127.0.0.1:{port}/v1/orders", json={}).status_code == 401
        before = rss_kb(proc.pid)
        size = 60 * 1024 * 1024
        head = (
            f"POST /v1/orders HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
        ).encode()
        t0 = time.monotonic()
        answer = post_raw(port, head, megabytes(size), limit_s=20)
        took = time.monotonic() - t0
        assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
        assert b"body_too_large" in answer and b"1.0 MiB limit" in answer
        assert took < 5, f"the refusal took {took:.1f} s"

        head = (
            f"POST /v1/orders HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
        answer = post_raw(port, head, chunked(size), limit_s=20)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
        after = rss_kb(proc.pid)
        assert after - before < 8 * 1024, f"RSS {before} kB -> {after} kB"
        # the coordinator serves on; both refusals are in its log
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    text = (tmp_path / "cloud.log").read_text()
    assert text.count("(body_too_large)") == 2, text[-3000:]
    print(f"coordinator RSS {before} kB before, {after} kB after two 60 MB posts")


def _answers(port: int, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, "the coordinator exited"
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_the_tablet_takes_a_photo_but_no_oversized_body(tmp_path: Path) -> None:
    van = unique_id("van")
    settings = VehicleSettings(
        vehicle_id=van, db_path=tmp_path / "van.db", broker=None, pairing_code=PAIRING_CODE,
        http_max_body_bytes=64 * 1024, max_photo_bytes=512 * 1024,
    )  # fmt: skip
    agent = VehicleAgent(settings)
    agent.start()
    server = HttpServer(create_tablet_app(agent), "127.0.0.1", free_port())
    server.start()
    try:
        feed_plan(agent, make_plan(van, 3), seq=1)
        wait_for(lambda: agent.book.route() is not None)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            pair_client(client, PAIRING_CODE)
            r = client.post("/api/break", content=b"{" + b" " * 70_000 + b"}")
            assert r.status_code == 413 and r.json()["reason"] == "body_too_large"
            # a photo of 300 KiB: over the body limit of other calls, within a delivery's
            photo = tiny_png() + bytes(300 * 1024)
            r = client.post(
                "/api/stops/s00/deliver",
                data={"event_id": "d-1"},
                files={"photo": ("door.png", photo, "image/png")},
            )
            assert r.status_code == 200, r.text
            # past photo and body limit together: refused before the form is parsed
            huge = tiny_png() + bytes(700 * 1024)
            r = client.post(
                "/api/stops/s01/deliver",
                data={"event_id": "d-2"},
                files={"photo": ("door.png", huge, "image/png")},
            )
            assert r.status_code == 413 and "limit" in r.json()["error"]
            assert not agent.book.stop("s01").final
            assert refused(client)["body_too_large"] == 2
    finally:
        server.stop()
        agent.stop()


# -- logins ---------------------------------------------------------------------------------


def test_failed_logins_lock_the_name_then_let_it_in_again(api, caplog) -> None:
    c, client = api
    caplog.set_level(logging.WARNING, logger="sync.http_guard")
    for _ in range(3):
        r = log_in(client, password="wrong")
        assert r.status_code == 303 and r.headers["location"].endswith("error=1")
    r = log_in(client)  # the right password: locked all the same
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert "too many failed logins" in r.json()["error"]
    page = client.post(
        "/dashboard/login", data={"username": "anna", "password": PASSWORD},
        headers={"Accept": "text/html"},
    )  # fmt: skip
    assert page.status_code == 429 and 'id="login-error"' in page.text
    assert "too many failed logins" in page.text
    wait_for(lambda: log_in(client).status_code == 303, timeout=10, interval=0.5)
    assert "wayline_session" in client.cookies
    client.cookies.clear()
    counts = refused(client, _bearer(c, "ops"))
    assert counts["login_failed"] == 3 and counts["login_locked"] >= 2
    logged = [r.getMessage() for r in caplog.records if "login_locked" in r.getMessage()]
    assert logged and "'anna'" in logged[0]


def test_failed_logins_from_one_address_lock_the_address(api) -> None:
    _c, client = api
    for k in range(12):  # four times the per-name limit, over many names
        assert log_in(client, name=f"guess-{k}", password="x").status_code == 303
    r = log_in(client)
    assert r.status_code == 429, "the address is locked, whatever the name"


def test_the_attempt_limiter_forgets_and_bounds() -> None:
    now = [0.0]
    limiter = AttemptLimiter(2, 10, 30, clock=lambda: now[0], max_keys=3)
    assert limiter.failed("a") == 0
    now[0] = 11  # the first failure left the window
    assert limiter.failed("a") == 0
    assert limiter.failed("a") == 30 and limiter.retry_after("a") == 30
    now[0] = 41
    assert limiter.retry_after("a") == 0
    for k in range(10):
        limiter.failed(f"k{k}")
    assert len(limiter._failures) <= 3


# -- sessions and logout --------------------------------------------------------------------


def test_a_cookie_copied_before_logout_is_refused_after_it(api) -> None:
    _c, client = api
    assert log_in(client).status_code == 303
    cookie = client.cookies["wayline_session"]
    assert client.get("/v1/whoami").json()["via"] == "session"
    r = client.post("/dashboard/logout", headers=origin(client))
    assert r.status_code == 303
    with httpx.Client(base_url=client.base_url) as thief:
        thief.cookies.set("wayline_session", cookie)
        r = thief.get("/v1/whoami")
        assert r.status_code == 401 and "ended" in r.json()["detail"]
        assert thief.get("/dashboard", follow_redirects=False).status_code == 303
    # a new login is a new session, and works
    assert log_in(client).status_code == 303
    assert client.get("/v1/whoami").status_code == 200


# -- CSRF -----------------------------------------------------------------------------------


def test_cookie_writes_need_this_sites_origin_bearer_calls_do_not(api) -> None:
    c, client = api
    assert log_in(client).status_code == 303
    body = {"name": "oms", "roles": ["integration"]}
    r = client.post("/v1/tokens", json=body, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and r.json()["reason"] == "cross_origin"
    assert "evil.example" in r.json()["error"]
    r = client.post("/v1/tokens", json=body)  # neither Origin nor Referer
    assert r.status_code == 403 and "Origin or Referer" in r.json()["error"]
    r = client.post("/v1/tokens", json=body, headers={"Referer": "http://evil.example/x"})
    assert r.status_code == 403
    r = client.post("/v1/tokens", json=body, headers={"Origin": "null"})
    assert r.status_code == 403
    assert not [t for t in c.db.tokens() if t["name"] == "oms"], "nothing was made"
    r = client.post("/v1/tokens", json=body, headers=origin(client))
    assert r.status_code == 201
    r = client.post(
        "/v1/tokens", json=body, headers={"Referer": origin(client)["Origin"] + "/dashboard"}
    )
    assert r.status_code == 201
    # a bearer token is not a cookie: its calls need no Origin, a cross-site form cannot send it
    token = r.json()["token"]
    with httpx.Client(base_url=client.base_url) as program:
        r = program.post(
            "/v1/webhooks", json={"url": "https://93.184.216.34/hook"},
            headers={"Authorization": f"Bearer {token}", "Origin": "http://elsewhere"},
        )  # fmt: skip
        assert r.status_code == 201
    assert client.get("/v1/whoami").status_code == 200  # reads need no Origin
    # a login form posted from another site is refused too (login CSRF)
    with httpx.Client(base_url=client.base_url) as other:
        r = other.post(
            "/dashboard/login", data={"username": "anna", "password": PASSWORD},
            headers={"Origin": "http://evil.example"},
        )  # fmt: skip
        assert r.status_code == 403


class _Attacker:
    """Another origin (another port of 127.0.0.1) serving a page with a form aimed at the
    coordinator, submitted as soon as it loads."""

    def __init__(self, target: str) -> None:
        page = (
            f'<html><body><form id="f" method="post" action="{target}">'
            '<input name="x" value="1"></form>'
            "<script>document.getElementById('f').submit()</script></body></html>"
        ).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.mark.browser
def test_a_cross_site_form_with_the_session_cookie_is_refused(api, page) -> None:
    """In Chromium: logged in to the dashboard, the user opens another site whose form posts
    to the dashboard's logout; the browser sends the session cookie (the same site: another
    port of the same host) and the coordinator refuses it, 403. The dashboard's own logout
    button, on the same origin, works."""
    _c, client = api
    url = str(client.base_url).rstrip("/")
    attacker = _Attacker(f"{url}/dashboard/logout")
    try:
        page.goto(f"{url}/dashboard")
        page.fill("#username", "anna")
        page.fill("#password", PASSWORD)
        page.click("#login-button")
        page.wait_for_url(f"{url}/dashboard")
        with page.expect_response(f"{url}/dashboard/logout") as answer:
            page.goto(attacker.url)
        response = answer.value
        assert response.status == 403
        assert response.json()["reason"] == "cross_origin"
        page.goto(f"{url}/dashboard")
        assert page.url == f"{url}/dashboard", "still logged in"
        page.click("form[action='/dashboard/logout'] button")
        page.wait_for_url(f"{url}/dashboard/login")
        page.goto(f"{url}/dashboard")
        assert page.url.endswith("/dashboard/login"), "logged out by its own button"
    finally:
        page.context.close()
        attacker.close()


# -- webhooks -------------------------------------------------------------------------------


def _bearer(c: Coordinator, *roles: str, name: str = "tool") -> dict[str, str]:
    token, _ = c.operations.access.issue(name, roles)
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/hook",  # not https
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://172.16.5.4/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/hook",
        "https://0.0.0.0/hook",
        "https://224.0.0.251/hook",
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://240.0.0.1/hook",
        "ftp://93.184.216.34/hook",
        "https://93.184.216.34:99999/hook",
    ],
)
def test_webhook_targets_must_be_public_https(url: str) -> None:
    with pytest.raises(DeliveryError) as refused_target:
        check_target(url, allow_private=False)
    assert not refused_target.value.retryable
    assert check_target("https://93.184.216.34/hook", allow_private=False) == "93.184.216.34"
    assert check_target("http://127.0.0.1:9/x", allow_private=True) is None


def test_a_name_that_resolves_to_a_private_address_is_refused() -> None:
    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        assert host == "hooks.example.com"
        return [(2, 1, 6, "", ("93.184.216.34", port)), (2, 1, 6, "", ("10.0.0.7", port))]

    with pytest.raises(DeliveryError, match=r"10\.0\.0\.7, a private address"):
        check_target("https://hooks.example.com/x", allow_private=False, resolve=resolve)

    def down(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        raise socket.gaierror("temporary failure in name resolution")

    with pytest.raises(DeliveryError, match="cannot resolve") as failed:
        check_target("https://hooks.example.com/x", allow_private=False, resolve=down)
    assert failed.value.retryable


def test_webhook_targets_are_owned_by_the_integration_that_made_them(api) -> None:
    c, client = api
    a, b = _bearer(c, "integration", name="oms-a"), _bearer(c, "integration", name="oms-b")
    ops = _bearer(c, "ops", name="admin")
    for url in ("https://127.0.0.1:8080/x", "https://169.254.169.254/", "http://10.0.0.1/"):
        r = client.post("/v1/webhooks", json={"url": url}, headers=a)
        assert r.status_code == 422 and "webhook target refused" in r.json()["error"]
    r = client.post("/v1/webhooks", json={"url": "https://93.184.216.34/a"}, headers=a)
    assert r.status_code == 201
    mine = r.json()["target_id"]
    r = client.post("/v1/webhooks", json={"url": "https://93.184.216.34/b"}, headers=b)
    theirs = r.json()["target_id"]
    assert [t["target_id"] for t in client.get("/v1/webhooks", headers=a).json()] == [mine]
    assert [t["target_id"] for t in client.get("/v1/webhooks", headers=b).json()] == [theirs]
    assert len(client.get("/v1/webhooks", headers=ops).json()) == 2
    assert client.get(f"/v1/webhooks/{mine}/deliveries", headers=b).status_code == 404
    r = client.delete(f"/v1/webhooks/{mine}", headers=b)
    assert r.status_code == 404 and "no webhook target" in r.json()["error"]
    assert len(client.get("/v1/webhooks", headers=ops).json()) == 2, "nothing removed"
    assert client.delete(f"/v1/webhooks/{mine}", headers=a).status_code == 200
    assert client.delete(f"/v1/webhooks/{theirs}", headers=ops).status_code == 200
    assert client.get("/v1/webhooks", headers=ops).json() == []
    r = client.put(
        "/v1/customers/c-1/contact", json={"webhook_url": "http://127.0.0.1:9/x"}, headers=a
    )
    assert r.status_code == 422 and "webhook_url refused" in r.json()["error"]


@pytest.mark.allow_errors(r"failed after 1 attempts: .*loopback")
def test_the_sender_checks_the_address_again_before_each_attempt(tmp_path: Path) -> None:
    """A target stored while its name pointed elsewhere (here: written straight into the
    store) is checked again when a delivery goes out: refused, never connected to."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.5)
    c = coordinator(tmp_path / "cloud.db", tick_s=0.05)
    try:
        c.start()
        with c.store.transaction() as conn:
            c.db.put_webhook_target(
                conn,
                {
                    "target_id": "wh-rebound", "secret": "whsec_" + "A" * 32,
                    "url": f"https://127.0.0.1:{listener.getsockname()[1]}/hook", "events": [],
                    "carrier_id": None, "created_by": "test", "created_ms": 0, "owner": None,
                },
            )  # fmt: skip
        event = WebhookEvent.exception_raised({"item_id": "x"})
        with c.store.transaction() as conn:
            targets = [("msg_rebound", t) for t in c.db.webhook_target_objects(conn)]
            assert c.db.add_webhook_deliveries(conn, event, targets, 0) == 1
        c.operations.webhooks.wake()
        wait_for(lambda: c.db.webhook_deliveries("wh-rebound", "failed"), timeout=10, interval=0.05)
        [failed] = c.db.webhook_deliveries("wh-rebound", "failed")
        assert "loopback" in failed["last_error"] and failed["attempts"] == 1
        with pytest.raises(TimeoutError):
            listener.accept()  # no connection was ever made
    finally:
        c.stop()
        listener.close()


def test_the_sender_connects_to_the_address_it_checked(monkeypatch) -> None:
    """``send`` connects to the checked address, not to what the name resolves to later;
    ``Host`` keeps the name."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.headers["Host"])
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(webhook_sending, "check_target", lambda url, **_: "127.0.0.1")
    try:
        status = webhook_sending.send(
            f"http://receiver.invalid:{port}/hook", b"{}", {}, 5, allow_private=False
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert status == 204 and seen == [f"receiver.invalid:{port}"]


# -- the tablet and the terminal: pairing ---------------------------------------------------


@pytest.fixture
def tablet(tmp_path: Path) -> Iterator[tuple[VehicleAgent, Any, str]]:
    van = unique_id("van")
    agent = VehicleAgent(VehicleSettings(vehicle_id=van, db_path=tmp_path / "van.db", broker=None))
    agent.start()
    app = create_tablet_app(agent)
    server = HttpServer(app, "127.0.0.1", free_port())
    try:
        feed_plan(agent, make_plan(van, 4), seq=1)
        wait_for(lambda: agent.book.route() is not None)
        server.start()
        yield agent, app, server.url
    finally:
        server.stop()
        agent.stop()


def test_the_tablet_serves_only_a_paired_device(tablet) -> None:
    agent, app, url = tablet
    code = app.state.pairing.code
    assert len(code) == 8 and code.isdigit(), "made at the first start"
    with httpx.Client(base_url=url, timeout=10) as client:
        for method, path in (("GET", "/api/status"), ("POST", "/api/stops/s00/arrive")):
            r = client.request(method, path, headers=origin(client))
            assert r.status_code == 401 and r.json()["pair"] is True
        assert client.get("/").status_code == 200 and client.get("/healthz").status_code == 200
        r = client.post("/api/pair", json={"code": "12345678" if code != "12345678" else "0"})
        assert r.status_code == 401 and r.json()["error"] == "wrong pairing code"
        # the page pairs with the cookie; the cookie's writes need the page's origin
        r = client.post("/api/pair", json={"code": code})
        assert r.status_code == 200 and r.json()["paired"] is True
        assert "wayline_paired" in r.headers["set-cookie"].lower()
        assert "httponly" in r.headers["set-cookie"].lower()
        assert client.get("/api/status").status_code == 200
        r = client.post("/api/stops/s00/arrive", headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and r.json()["reason"] == "cross_origin"
        assert agent.book.stop("s00").status == "pending"
        r = client.post("/api/stops/s00/arrive", json={"event_id": "a-1"}, headers=origin(client))
        assert r.status_code == 200
        counts = refused(client)
    assert counts["not_paired"] == 2 and counts["pairing_failed"] == 1
    assert counts["cross_origin"] == 1
    # a forged or stale token is refused
    with httpx.Client(base_url=url, timeout=10) as forger:
        r = forger.get("/api/status", headers={"Authorization": "Bearer abc.def"})
        assert r.status_code == 401


def test_wrong_codes_lock_pairing_for_a_while(tablet) -> None:
    _agent, app, url = tablet
    with httpx.Client(base_url=url, timeout=10) as client:
        answers = [client.post("/api/pair", json={"code": "nope-0"}) for _ in range(5)]
        assert [a.status_code for a in answers] == [401, 401, 401, 401, 429]
        r = client.post("/api/pair", json={"code": app.state.pairing.code})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        assert "too many wrong pairing codes" in r.json()["error"]


def test_pairing_survives_a_restart_and_a_new_code_unpairs(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="edge.pairing")
    settings = DepotSettings(depot_id="depot-p", db_path=tmp_path / "depot.db", broker=None)
    agent = DepotAgent(settings)
    try:
        first = Pairing(agent.store, None, device="depot-p")
        token = first.pair(first.code, "127.0.0.1")
        app = create_terminal_app(agent)  # the next start: same code, same sessions
        assert app.state.pairing.code == first.code and app.state.pairing.valid(token)
        assert f"pairing code {first.code}" in caplog.text
        chosen = Pairing(agent.store, "depot-p-code-2", device="depot-p")
        assert not chosen.valid(token), "another code: every device pairs again"
    finally:
        agent.stop()
    from edge.errors import SettingsError

    with pytest.raises(SettingsError, match="pairing_code"):
        DepotSettings(depot_id="d", db_path=tmp_path / "x.db", broker=None, pairing_code="12")


@pytest.mark.browser
def test_the_tablet_stays_paired_across_reloads(tablet, page) -> None:
    _agent, app, url = tablet
    page.goto(url)
    page.get_by_test_id("pairing").wait_for()
    page.fill("#pair-code", app.state.pairing.code)
    page.click("#pair-confirm")
    page.get_by_test_id("pairing").wait_for(state="hidden")
    page.locator("#remaining li").first.wait_for()
    page.reload()
    page.locator("#remaining li").first.wait_for()
    assert page.get_by_test_id("pairing").is_hidden()


# -- malformed names and plans too large for one message ------------------------------------


def test_malformed_paths_are_400_never_500(api, tablet, tmp_path: Path) -> None:
    _c, client = api
    _agent, _app, tablet_url = tablet
    depot = DepotAgent(DepotSettings(depot_id="depot-m", db_path=tmp_path / "d.db", broker=None))
    terminal = HttpServer(create_terminal_app(depot), "127.0.0.1", free_port())
    terminal.start()
    try:
        for base in (str(client.base_url).rstrip("/"), tablet_url, terminal.url):
            for path in ("/app%00.js", "/dashboard/static/x%00.css", "/%0a", "/a/%2e%2e/b"):
                r = httpx.get(base + path, timeout=10)
                assert r.status_code == 400, (base, path, r.text)
                assert r.json()["reason"] == "malformed_path"
            raw = httpx.get(base + "/dashboard/static/..%2f..%2fapi.py", timeout=10)
            assert raw.status_code in (400, 404)
        assert client.get("/dashboard/static/nothing.js").status_code == 404
        assert client.get("/dashboard/static/dashboard.js").status_code == 200
    finally:
        terminal.stop()
        depot.stop()


def test_a_plan_over_the_payload_limit_is_a_clear_422_not_a_500(api) -> None:
    c, client = api
    ops = _bearer(c, "ops")
    plan = make_plan("van-big", 400).model_dump(mode="json")
    r = client.post("/v1/routes", json=plan, headers=ops)
    assert r.status_code == 422, r.text
    assert "over the" in r.json()["error"] and "max_payload" in r.json()["error"]
    assert c.db.query("SELECT count(*) AS n FROM routes")[0]["n"] == 0, "nothing stored"
    small = make_plan("van-big", 10).model_dump(mode="json")
    assert client.post("/v1/routes", json=small, headers=ops).status_code == 202
    assert refused(client, ops)["message_too_large"] == 1
