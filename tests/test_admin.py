"""``wayline admin``: the first ops user and API tokens open a production coordinator, and a
device's broker login works on a broker configured like ``deploy/mosquitto-prod.conf``.

Real parts: the coordinator's SQLite store in tmp_path; a coordinator process started with
production settings (``WAYLINE_ENV`` unset, long random secrets in its environment) and
asked over HTTP; a Mosquitto with the production example's authentication lines, the
password file the command wrote and ``deploy/acl``, asked by raw paho clients; a
pseudo-terminal for the password prompt. Every refusal is checked to be one line, with its
exit code, and to leave the store and the password file as they were.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import secrets
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud import admin_cli
from cloud.admin import (
    add_cloud_login,
    add_device,
    broker_url,
    coordinator_store,
    create_token,
    create_user,
)
from cloud.errors import ConflictError, InvalidError, NotFoundError
from cloud.mosquitto_passwords import encode_password, read_entries, verify_password
from cloud.ops import OpsSettings, check_password
from cloud.password_policy import weakness
from tests.helpers import REPO_ROOT, MosquittoBroker, free_port, wait_for

DEPLOY = REPO_ROOT / "deploy"
STRONG = "kT9#mQ2vX7!pL4zR"
OTHER_STRONG = "Zr5&wN8qB3@xJ6hY"


def production_env() -> dict[str, str]:
    """The environment of a production coordinator: no WAYLINE_ENV, long random secrets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYLINE_")}
    for name in ("SESSION_SECRET", "TOKEN_PEPPER", "WEBHOOK_SECRET"):
        env[f"WAYLINE_{name}"] = secrets.token_urlsafe(48)
    return env


def cli(*argv: str, stdin: str | None = None) -> int:
    """``wayline admin ARGV`` through a parser built here, as the ``wayline`` command does."""
    parser = argparse.ArgumentParser(prog="wayline admin")
    admin_cli.configure(parser)
    args = parser.parse_args(argv)
    if stdin is None:
        return admin_cli.run(args)
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        return admin_cli.run(args)
    finally:
        sys.stdin = saved


def one_line(capsys: pytest.CaptureFixture[str], command: str, *words: str) -> str:
    """The refusal on stderr: exactly one line, naming the command and ``words``; nothing on
    stdout."""
    captured = capsys.readouterr()
    assert captured.out == "", captured.out
    err = captured.err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith(f"wayline admin {command}: "), err
    for word in words:
        assert word in err, (word, err)
    return err


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "cloud.db"
    with coordinator_store(path, create=True):
        pass
    return path


def rows(path: Path, table: str) -> int:
    with coordinator_store(path) as db:
        return int(db.query(f"SELECT count(*) AS n FROM {table}")[0]["n"])


# --- passwords ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("Sh0rt!pw", "8 characters; at least 12"),
        ("password1234", "common words"),
        ("P@ssw0rd2024!", "common words"),
        ("qwertyuiop123456", "common words"),
        ("aaaaaaaaaaaaaaaa", "common words"),
        ("abcabcabcabcabc", "common words"),
        ("Summer2024!!Summer", "common words"),
        ("veh-0042veh-0042!", "common words"),  # the device's own id
        ("tab\there-and-long-x9", "control characters"),
        (" kT9#mQ2vX7!pL4zR", "white space"),
        ("x" * 300, "at most 256"),
    ],
)
def test_weak_passwords_are_refused_with_their_reason(password: str, why: str) -> None:
    found = weakness(password, context=("veh-0042",))
    assert found is not None and why in found


@pytest.mark.parametrize(
    "password",
    [STRONG, "correct horse battery staple", "Tr0ub4dor&3xyz", secrets.token_urlsafe(24)],
)
def test_long_unpredictable_passwords_pass(password: str) -> None:
    assert weakness(password, context=("veh-0042", "ana@example.com")) is None


def test_mosquitto_entries_have_the_mosquitto_passwd_format() -> None:
    encoded = encode_password(STRONG, salt=bytes(range(12)))
    assert re.fullmatch(r"\$7\$101\$AAECAwQFBgcICQoL\$[A-Za-z0-9+/]{86}==", encoded), encoded
    assert verify_password(STRONG, encoded)
    assert not verify_password(OTHER_STRONG, encoded)
    assert encode_password(STRONG) != encode_password(STRONG)  # a fresh salt each time
    assert not verify_password(STRONG, "$6$not$ours")
    assert not verify_password(STRONG, "$7$101$!!!$???")


# --- users and tokens in the store ----------------------------------------------------------


def test_users_and_tokens_are_refused_on_bad_input_and_nothing_is_stored(store: Path) -> None:
    settings = OpsSettings(env="development")
    with coordinator_store(store) as db:
        create_user(db, name="ana", email="ana@example.com", password=STRONG, roles=["ops"])
        create_token(db, settings, name="oms", roles=["integration"])
        refused: list[tuple[type[Exception], str, dict[str, object]]] = [
            (InvalidError, "at least 12", {"password": "short"}),
            (InvalidError, "common words", {"password": "ana-password-2024"}),
            (ConflictError, "already exists", {"name": "ANA", "email": None}),
            (ConflictError, "e-mail ANA@example.com", {"name": "bob", "email": "ANA@example.com"}),
            (InvalidError, "user name", {"name": "ana smith"}),
            (InvalidError, "user name", {"name": "-ana"}),
            (InvalidError, "not an e-mail", {"name": "bob", "email": "bob@localhost"}),
            (InvalidError, "unknown role", {"name": "bob", "roles": ["superuser"]}),
            (InvalidError, "--carrier", {"name": "bob", "roles": ["carrier"]}),
            (InvalidError, "carrier role only", {"name": "bob", "carrier_id": "swiftgo"}),
        ]
        for error, words, change in refused:
            kwargs: dict[str, object] = {
                "name": "bob",
                "email": "bob@example.com",
                "password": OTHER_STRONG,
                "roles": ["ops"],
            } | change
            with pytest.raises(error, match=re.escape(words)):
                create_user(db, **kwargs)  # type: ignore[arg-type]
        for error, words, name in (
            (ConflictError, "already exists", "OMS"),
            (InvalidError, "token name", ""),
            (InvalidError, "token name", "x\ny"),
        ):
            with pytest.raises(error, match=words):
                create_token(db, settings, name=name, roles=["viewer"])
        assert [u["name"] for u in db.dashboard_users()] == ["ana"]
        assert [t["name"] for t in db.tokens()] == ["oms"]
        stored = db.dashboard_users()[0]
        assert stored["password_hash"].startswith("scrypt$") and STRONG not in str(stored)
    with pytest.raises(NotFoundError, match="--init"), coordinator_store(store.parent / "typo.db"):
        pass
    assert not (store.parent / "typo.db").exists()


# --- a production coordinator ---------------------------------------------------------------


@contextlib.contextmanager
def production_coordinator(
    db: Path, broker: MosquittoBroker, env: dict[str, str], log: Path
) -> Iterator[str]:
    """``wayline cloud`` in a process with production settings; its base URL."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wayline", "cloud", "--broker", broker.url, "--db", str(db),
             "--http", f"127.0.0.1:{port}"],
            cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert proc.poll() is None, log.read_text(errors="replace")
        try:
            httpx.get(f"{url}/v1/whoami", timeout=1.0)
        except httpx.TransportError:
            return False
        return True

    try:
        wait_for(answers, timeout=60, interval=0.1, message="the coordinator's API")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_first_user_and_tokens_open_a_production_coordinator(
    tmp_path: Path, broker: MosquittoBroker, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    env = production_env()
    db_path = tmp_path / "cloud.db"
    with coordinator_store(db_path, create=True) as db:
        create_user(db, name="ana", email="ana@example.com", password=STRONG, roles=["ops"])
        oms, _ = create_token(db, OpsSettings.from_env(env), name="oms", roles=["integration"])
    # a viewer token through the command line, with the coordinator's environment
    monkeypatch.delenv("WAYLINE_ENV")
    for name, value in env.items():
        if name.startswith("WAYLINE_"):
            monkeypatch.setenv(name, value)
    assert cli("create-token", "--db", str(db_path), "--name", "wallboard", "--role", "viewer") == 0
    out = capsys.readouterr()
    viewer = out.out.strip()
    assert re.fullmatch(r"wl_[0-9a-f]{16}_[A-Za-z0-9_-]{40,}", viewer), out.out
    assert "shown only this once" in out.err
    with coordinator_store(db_path) as db:
        assert viewer not in str(db.tokens()) and oms not in str(db.tokens())

    with production_coordinator(db_path, broker, env, tmp_path / "cloud.log") as url:
        http = httpx.Client(base_url=url, timeout=10.0)
        with http:
            # nothing works without them
            for path in ("/v1/whoami", "/v1/exceptions", "/v1/orders", "/dashboard/summary"):
                assert http.get(path).status_code in (401, 404), path
            assert http.get("/v1/exceptions").status_code == 401
            assert http.get("/v1/orders").status_code == 401
            forged = oms[:-4] + ("AAAA" if not oms.endswith("AAAA") else "BBBB")
            assert http.get("/v1/whoami", headers=bearer(forged)).status_code == 401
            dev = http.post("/dashboard/login", data={"username": "ops", "password": "wayline-dev"})
            assert dev.headers["location"].endswith("error=1") and "set-cookie" not in dev.headers

            # the tokens, each with its role
            me = http.get("/v1/whoami", headers=bearer(oms))
            assert me.status_code == 200 and me.json()["name"] == "oms"
            assert me.json()["roles"] == ["integration"]
            assert http.get("/v1/orders", headers=bearer(oms)).status_code == 200
            assert http.get("/v1/exceptions", headers=bearer(viewer)).status_code == 200
            issue = {"name": "x", "roles": ["viewer"]}
            answer = http.post("/v1/tokens", headers=bearer(viewer), json=issue)
            assert answer.status_code == 403 and "viewer" in answer.text

            # the user logs in; a wrong password does not
            wrong = http.post(
                "/dashboard/login", data={"username": "ana", "password": OTHER_STRONG}
            )
            assert wrong.status_code == 303 and wrong.headers["location"].endswith("error=1")
            good = http.post("/dashboard/login", data={"username": "ana", "password": STRONG})
            assert good.status_code == 303 and good.headers["location"] == "/dashboard"
            cookie = good.headers["set-cookie"]
            assert "Secure" in cookie and "HttpOnly" in cookie  # production: HTTPS only
            session = {"cookie": cookie.split(";", 1)[0]}
            me = http.get("/v1/whoami", headers=session)
            assert me.status_code == 200
            assert me.json() | {"via": "session"} == {
                "name": "ana", "roles": ["ops", "viewer"], "carrier_id": None, "via": "session"
            }  # fmt: skip
            assert http.get("/dashboard", headers=session).status_code == 200
            same_site = session | {"origin": str(http.base_url).rstrip("/")}  # CSRF rule
            made = http.post("/v1/tokens", headers=same_site, json=issue)
            assert made.status_code == 201, made.text  # ops may issue tokens


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


# --- the command line: users and tokens -----------------------------------------------------


def test_create_user_from_stdin_and_every_refusal(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(store)
    named = ("create-user", "--db", db, "--name")
    base = (*named, "ana", "--email", "ana@example.com")
    piped = "--password-stdin"
    assert cli(*base, "--role", "ops", "--password-stdin", stdin=STRONG + "\n") == 0
    assert "dashboard user ana created (roles ops)" in capsys.readouterr().out

    refused = [
        # (argv, stdin, exit code, words in the one line)
        ((*named, "bob", "--role", "ops", piped), "password1234\n", 1, "common words"),
        ((*named, "bob", "--role", "ops", piped), "short\n", 1, "at least 12"),
        ((*named, "ANA", "--role", "ops", piped), OTHER_STRONG, 1, "already exists"),
        ((*base, "--role", "viewer", piped), OTHER_STRONG, 1, "already exists"),
        ((*named, "bob", "--email", "ANA@example.com", "--role", "ops", piped),
         OTHER_STRONG, 1, "e-mail"),
        ((*named, "b o b", "--role", "ops", piped), OTHER_STRONG, 1, "user name"),
        ((*named, "bob", "--email", "bob", "--role", "ops", piped),
         OTHER_STRONG, 1, "not an e-mail"),
        ((*named, "bob", "--role", "root", piped), OTHER_STRONG, 2, "unknown role"),
        ((*named, "bob", "--role", "carrier", piped), OTHER_STRONG, 2, "--carrier"),
        ((*named, "bob", "--role", "ops", "--carrier", "swiftgo", piped),
         OTHER_STRONG, 2, "carrier role only"),
        ((*named, "bob", "--role", "ops", piped), "", 2, "no password on stdin"),
        ((*named, "bob", "--role", "ops"), "", 2, piped),  # no terminal
        ((*named, "b o b", "--role", "ops"), "", 1, "user name"),  # checked before asking
        (("create-user", "--db", str(tmp_path / "nope.db"), "--name", "bob", "--role", "ops",
          piped), OTHER_STRONG, 1, "no coordinator store"),
    ]  # fmt: skip
    for argv, stdin, code, words in refused:
        assert cli(*argv, stdin=stdin) == code, argv
        one_line(capsys, "create-user", words)
    assert rows(store, "dashboard_users") == 1
    assert not (tmp_path / "nope.db").exists()

    # roles given as a list, a carrier user, and a new store with --init
    fresh = tmp_path / "new" / "cloud.db"
    assert cli(
        "create-user", "--db", str(fresh), "--init", "--name", "swift.ops", "--role", "carrier",
        "--carrier", "swiftgo", "--password-stdin", stdin=OTHER_STRONG,
    ) == 0  # fmt: skip
    assert cli(*named, "viv", "--role", "viewer,integration", "--password-stdin",
               stdin=OTHER_STRONG) == 0  # fmt: skip
    with coordinator_store(store) as cloud_db:
        assert cloud_db.dashboard_user("viv")["roles"] == "integration,viewer"  # type: ignore[index]
    with coordinator_store(fresh) as cloud_db:
        [row] = cloud_db.dashboard_users()
        assert (row["roles"], row["carrier_id"]) == ("carrier", "swiftgo")

    with pytest.raises(SystemExit) as exit_:
        cli("create-user", "--db", db)  # no name, no role: argparse's usage error
    assert exit_.value.code == 2
    capsys.readouterr()
    assert cli("create-user", "--name", "x", "--role", "ops") == 2  # no store named anywhere
    assert "--db, WAYLINE_DB or db in --config" in capsys.readouterr().err


def test_the_store_comes_from_the_coordinators_settings_as_for_wayline_cloud(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "cloud.toml"
    config.write_text(f'broker = "mqtt://127.0.0.1:1883"\ndb = "{store}"\n')
    monkeypatch.setenv("WAYLINE_TOKEN_PEPPER", "p" * 40)
    assert cli("create-token", "--config", str(config), "--name", "oms", "--role", "viewer") == 0
    monkeypatch.setenv("WAYLINE_CONFIG", str(config))
    assert cli("create-token", "--name", "erp", "--role", "viewer") == 0
    monkeypatch.setenv("WAYLINE_DB", str(tmp_path / "elsewhere.db"))  # the environment wins
    assert cli("create-token", "--name", "bi", "--role", "viewer") == 1
    assert "no coordinator store at" in capsys.readouterr().err
    with coordinator_store(store) as cloud_db:
        assert {t["name"] for t in cloud_db.tokens()} >= {"oms", "erp"}
    config.write_text("db = [1, 2]\n")
    monkeypatch.delenv("WAYLINE_DB")
    assert cli("create-token", "--name", "x1", "--role", "viewer") == 2
    assert "db must be a path" in capsys.readouterr().err


def test_create_token_refusals(
    store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(store)
    assert cli("create-token", "--db", db, "--name", "oms", "--role", "integration") == 0
    token = capsys.readouterr().out.strip()
    refused = [
        (("--name", "OMS", "--role", "viewer"), 1, "already exists"),
        (("--name", "", "--role", "viewer"), 1, "token name"),
        (("--name", "oms2", "--role", "admin"), 2, "unknown role"),
        (("--name", "3pl", "--role", "carrier"), 2, "--carrier"),
    ]
    for argv, code, words in refused:
        assert cli("create-token", "--db", db, *argv) == code, argv
        one_line(capsys, "create-token", words)
    # unsafe settings: production with a short pepper names the variable, writes nothing
    monkeypatch.delenv("WAYLINE_ENV")
    for name, value in production_env().items():
        if name.startswith("WAYLINE_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("WAYLINE_TOKEN_PEPPER", "too-short")
    assert cli("create-token", "--db", db, "--name", "erp", "--role", "integration") == 2
    one_line(capsys, "create-token", "WAYLINE_TOKEN_PEPPER")
    with coordinator_store(store) as cloud_db:
        assert [t["name"] for t in cloud_db.tokens()] == ["oms"]
        assert token not in str(cloud_db.tokens())


def test_the_password_prompt_asks_twice_on_a_terminal_and_never_echoes(store: Path) -> None:
    def prompted(first: str, second: str, name: str) -> tuple[int, str]:
        main, terminal = os.openpty()
        script = (
            "import argparse, os, sys\n"
            "os.open(os.ttyname(0), os.O_RDWR)  # the pseudo-terminal becomes ours\n"
            "from cloud import admin_cli\n"
            "p = argparse.ArgumentParser(prog='wayline admin')\n"
            "admin_cli.configure(p)\n"
            "sys.exit(admin_cli.run(p.parse_args(sys.argv[1:])))\n"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", script, "create-user", "--db", str(store), "--name", name,
             "--role", "ops"],
            cwd=REPO_ROOT, stdin=terminal, stdout=terminal, stderr=terminal,
            start_new_session=True,
        )  # fmt: skip
        os.close(terminal)
        seen = b""
        try:
            for expect, answer in ((b"password for", first), (b"again", second)):
                seen = read_until(main, seen, expect)
                os.write(main, answer.encode() + b"\n")
            seen = read_until(main, seen, None)
            return proc.wait(30), seen.decode(errors="replace")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(main)

    code, shown = prompted(STRONG, STRONG, "ana")
    assert code == 0 and "dashboard user ana created" in shown and STRONG not in shown
    code, shown = prompted(STRONG, OTHER_STRONG, "bob")
    assert code == 1 and "the two passwords differ" in shown
    assert rows(store, "dashboard_users") == 1


def read_until(fd: int, seen: bytes, expect: bytes | None, timeout: float = 30.0) -> bytes:
    """Read the terminal until ``expect`` shows (None: until the other side closes)."""
    deadline = time.monotonic() + timeout
    while expect is None or expect not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"waited for {expect!r}; saw {seen!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side closed the terminal
            chunk = b""
        if not chunk:
            assert expect is None, f"closed before {expect!r}; saw {seen!r}"
            return seen
        seen += chunk
    return seen


# --- devices on a broker configured like production -----------------------------------------


def production_broker(folder: Path, password_file: Path) -> MosquittoBroker:
    """Mosquitto from ``deploy/mosquitto-prod.conf`` with this password file and
    ``deploy/acl``; its loopback listener moves to a free port (MosquittoBroker adds it)."""
    lines, replaced = [], set()
    for line in (DEPLOY / "mosquitto-prod.conf").read_text().splitlines():
        key = line.split(" ", 1)[0]
        if key == "password_file":
            line = f"password_file {password_file}"
        elif key == "acl_file":
            line = f"acl_file {DEPLOY / 'acl'}"
        elif key == "listener":
            replaced.add(key)
            continue
        elif key == "allow_anonymous":
            assert line == "allow_anonymous false"
        else:
            lines.append(line)
            continue
        replaced.add(key)
        lines.append(line)
    assert replaced == {"password_file", "acl_file", "listener", "allow_anonymous"}, replaced
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "mosquitto-prod.conf"
    config.write_text("\n".join(lines) + "\n")
    return MosquittoBroker(folder / "run", config=config)


class Raw:
    """A paho MQTT 5 client that records what it receives."""

    def __init__(self, broker: MosquittoBroker, user: str | None, password: str | None) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"raw-{secrets.token_hex(4)}",
            protocol=mqtt.MQTTv5,
        )  # fmt: skip
        if user is not None:
            self.client.username_pw_set(user, password)
        self.connack = threading.Event()
        self.reason: object = None
        self.received: list[tuple[str, bytes]] = []
        self.subscribed = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, m: self.received.append((m.topic, m.payload))
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        assert self.connack.wait(10), "no CONNACK"

    def _on_connect(self, _c: object, _u: object, _f: object, reason: object, _p: object) -> None:
        self.reason = reason
        self.connack.set()

    @property
    def accepted(self) -> bool:
        return not self.reason.is_failure  # type: ignore[attr-defined]

    def subscribe(self, topic: str) -> None:
        self.subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(10)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.contextmanager
def clients() -> Iterator[list[Raw]]:
    made: list[Raw] = []
    try:
        yield made
    finally:
        for c in made:
            c.close()


def test_a_device_login_works_on_the_production_broker_and_only_for_its_topics(
    tmp_path: Path, store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    passwd = tmp_path / "etc" / "wayline.passwd"
    passwd.parent.mkdir()
    cloud_password = secrets.token_urlsafe(24)
    add_cloud_login(passwd, password=cloud_password)
    assert cli(
        "add-device", "--id", "veh-a", "--role", "vehicle", "--fleet", "own-ams",
        "--password-file", str(passwd), "--db", str(store), "--password-stdin",
        "--broker", "mqtts://broker.example.com:8883", stdin=STRONG + "\n",
    ) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "broker URL: mqtts://veh-a@broker.example.com:8883" in out
    assert "veh-a (vehicle, fleet own-ams): broker login added" in out and STRONG not in out
    assert cli(
        "add-device", "--id", "depot-ams", "--role", "depot", "--password-file", str(passwd),
        "--generate-password",
    ) == 0  # fmt: skip
    depot_password = re.search(r"password: (\S+)", capsys.readouterr().out).group(1)  # type: ignore[union-attr]
    assert len(depot_password) >= 32
    assert sorted(read_entries(passwd)) == ["cloud", "depot-ams", "veh-a"]
    assert os.stat(passwd).st_mode & 0o777 == 0o600
    with coordinator_store(store) as db:
        assert db.registered_device("veh-a") | {"created_ms": 0} == {
            "device_id": "veh-a", "role": "vehicle", "fleet_id": "own-ams", "created_ms": 0
        }  # fmt: skip
        assert db.registered_device("depot-ams") is None  # no --db: the file only

    broker = production_broker(tmp_path / "broker", passwd)
    broker.start()
    try:
        with clients() as made:
            cloud = Raw(broker, "cloud", cloud_password)
            made.append(cloud)
            assert cloud.accepted
            cloud.subscribe("wayline/v1/+/up")
            for user, password in (("veh-a", OTHER_STRONG), ("veh-a", ""), (None, None),
                                   ("veh-zz", STRONG), ("cloud", STRONG)):  # fmt: skip
                refused = Raw(broker, user, password)
                made.append(refused)
                assert not refused.accepted, (user, refused.reason)
            van = Raw(broker, "veh-a", STRONG)
            depot = Raw(broker, "depot-ams", depot_password)
            made += [van, depot]
            assert van.accepted and depot.accepted
            depot.subscribe("wayline/v1/depot-ams/down")

            van.publish("wayline/v1/veh-a/up", b"own")
            van.publish("wayline/v1/depot-ams/up", b"forged uplink")
            van.publish("wayline/v1/depot-ams/down", b"forged downlink")
            van.publish("wayline/v1/veh-a/up", b"marker")  # after the forged ones, in order
            wait_for(lambda: b"marker" in [p for _, p in cloud.received], timeout=10)
            assert cloud.received == [("wayline/v1/veh-a/up", b"own"),
                                      ("wayline/v1/veh-a/up", b"marker")]  # fmt: skip
            cloud.client.publish("wayline/v1/depot-ams/down", b"plan").wait_for_publish(10)
            wait_for(lambda: depot.received, timeout=10)
            assert depot.received == [("wayline/v1/depot-ams/down", b"plan")]

            # a device added while the broker runs connects after a reload (SIGHUP)
            assert cli(
                "add-device", "--id", "veh-b", "--role", "vehicle", "--password-file",
                str(passwd), "--password-stdin", stdin=OTHER_STRONG,
            ) == 0  # fmt: skip
            assert "systemctl reload mosquitto" in capsys.readouterr().out
            assert broker.pid is not None
            os.kill(broker.pid, signal.SIGHUP)

            def joins() -> bool:
                c = Raw(broker, "veh-b", OTHER_STRONG)
                made.append(c)
                return c.accepted

            wait_for(joins, timeout=10, interval=0.2, message="veh-b accepted after SIGHUP")
    finally:
        broker.stop()


def test_add_device_refuses_bad_input_and_writes_nothing(
    tmp_path: Path, store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    passwd = tmp_path / "wayline.passwd"
    assert cli("add-device", "--id", "veh-1", "--role", "vehicle", "--password-file", str(passwd),
               "--db", str(store), "--password-stdin", stdin=STRONG) == 0  # fmt: skip
    capsys.readouterr()
    before = passwd.read_bytes()

    def device(*argv: str, password: str = OTHER_STRONG, file: Path = passwd) -> int:
        return cli("add-device", "--password-file", str(file), "--password-stdin", *argv,
                   stdin=password)  # fmt: skip

    refused = [
        (("--id", "veh-1", "--role", "vehicle"), OTHER_STRONG, 1, "already in the password file"),
        (("--id", "veh-2", "--role", "vehicle"), "password1234", 1, "common words"),
        (("--id", "veh-2", "--role", "vehicle"), "veh-2-veh-2-veh-2", 1, "common words"),
        (("--id", "veh-2", "--role", "vehicle"), "short", 1, "at least 12"),
        (("--id", "cloud", "--role", "vehicle"), OTHER_STRONG, 1, "the coordinator's own"),
        (("--id", "veh-2", "--role", "depot", "--fleet", "f", "--db", str(store)), OTHER_STRONG,
         1, "vehicles only"),
        (("--id", "veh-2", "--role", "vehicle", "--fleet", "own"), OTHER_STRONG, 2, "--db"),
        (("--id", "veh-2", "--role", "vehicle", "--init"), OTHER_STRONG, 2, "--init needs --db"),
        (("--id", "veh-2", "--role", "vehicle", "--fleet", "a/b", "--db", str(store)),
         OTHER_STRONG, 1, "fleet id"),
        (("--id", "veh-2", "--role", "vehicle", "--broker", "http://x"), OTHER_STRONG, 1,
         "broker URL"),
        (("--id", "veh-2", "--role", "vehicle", "--db", str(tmp_path / "nope.db")),
         OTHER_STRONG, 1, "no coordinator store"),
    ]  # fmt: skip
    for bad_id in ("veh/2", "veh+", "#", "", "-veh", "veh 2", "v" * 65, "veh:2", "Cloud"):
        refused.append(((f"--id={bad_id}", "--role", "vehicle"), OTHER_STRONG, 1, "device id"))
    for argv, password, code, words in refused:
        assert device(*argv, password=password) == code, argv
        one_line(capsys, "add-device", words)
    # the id is checked before a password is asked for (there is no terminal here)
    assert (
        cli("add-device", "--id", "veh/2", "--role", "vehicle", "--password-file", str(passwd)) == 1
    )
    one_line(capsys, "add-device", "device id")
    assert passwd.read_bytes() == before

    # in the registry but not in this (new) password file: refused, and no file appears
    other = tmp_path / "other.passwd"
    assert device("--id", "veh-1", "--role", "vehicle", "--db", str(store), file=other) == 1
    one_line(capsys, "add-device", "already in the coordinator's device registry")
    assert not other.exists()
    assert rows(store, "device_registry") == 1

    # a password file that is not one, or whose folder is missing
    broken = tmp_path / "broken.passwd"
    broken.write_text("cloud:$7$101$abc$def\nthis line has no colon\n")
    assert device("--id", "veh-3", "--role", "vehicle", file=broken) == 1
    one_line(capsys, "add-device", "broken.passwd:2")
    assert broken.read_text() == "cloud:$7$101$abc$def\nthis line has no colon\n"
    assert device("--id", "veh-3", "--role", "vehicle", file=tmp_path / "no" / "pw") == 1
    one_line(capsys, "add-device", "no folder")

    # usage errors argparse reports
    for argv in (
        ("add-device", "--id", "v", "--role", "truck", "--password-file", str(passwd)),
        ("add-device", "--id", "v", "--role", "vehicle"),
        ("add-device", "--id", "v", "--role", "vehicle", "--password-file", str(passwd),
         "--password-stdin", "--generate-password"),
        ("add-cloud",),
        ("rename-device",),
    ):  # fmt: skip
        with pytest.raises(SystemExit) as exit_:
            cli(*argv)
        assert exit_.value.code == 2
    capsys.readouterr()

    # the coordinator's login once only, strong only
    assert cli("add-cloud", "--password-file", str(passwd), "--password-stdin",
               stdin="wayline-cloud-1") == 1  # fmt: skip
    one_line(capsys, "add-cloud", "coordinator's broker password")
    assert cli("add-cloud", "--password-file", str(passwd), "--generate-password") == 0
    capsys.readouterr()
    assert cli("add-cloud", "--password-file", str(passwd), "--generate-password") == 1
    one_line(capsys, "add-cloud", "already in the password file")
    assert sorted(read_entries(passwd)) == ["cloud", "veh-1"]


def test_library_refusals_and_the_broker_url(tmp_path: Path, store: Path) -> None:
    passwd = tmp_path / "pw"
    with pytest.raises(InvalidError, match="device role"):
        add_device(passwd, device_id="veh-1", role="drone", password=STRONG)
    with coordinator_store(store) as db:
        login = add_device(passwd, device_id="veh-1", role="vehicle", password=STRONG, db=db)
        assert login.registered and login.fleet_id is None
        with pytest.raises(ConflictError):
            add_device(passwd, device_id="veh-1", role="vehicle", password=STRONG, db=db)
    assert broker_url("mqtts://broker.example.com:8883", "veh-1") == (
        "mqtts://veh-1@broker.example.com:8883"
    )
    assert broker_url("mqtt://127.0.0.1:1883", "depot.ams") == "mqtt://depot.ams@127.0.0.1:1883"
    for bad in ("broker.example.com", "mqtts://u@host:8883", "https://host"):
        with pytest.raises(InvalidError, match="broker URL"):
            broker_url(bad, "veh-1")


def test_hash_password_for_a_user_in_the_settings_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("hash-password", "--name", "ana", "--password-stdin", stdin=STRONG + "\n") == 0
    hashed = capsys.readouterr().out.strip()
    assert re.fullmatch(r"scrypt\$[0-9a-f]{32}\$[0-9a-f]{64}", hashed), hashed
    assert check_password(STRONG, hashed) and not check_password(OTHER_STRONG, hashed)
    assert cli("hash-password", "--name", "ana", "--password-stdin", stdin="ana-ana-ana-ana") == 1
    one_line(capsys, "hash-password", "common words")


def test_the_wayline_command_runs_admin(store: Path, tmp_path: Path) -> None:
    def wayline(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "wayline", "admin", *argv], cwd=REPO_ROOT, input=stdin,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    made = wayline("create-token", "--db", str(store), "--name", "oms", "--role", "integration")
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("wl_") and made.stdout.count("\n") == 1
    again = wayline("create-token", "--db", str(store), "--name", "oms", "--role", "viewer")
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr.startswith("wayline admin create-token: an API token named 'oms'")
    assert again.stderr.count("\n") == 1
    usage = wayline("add-device", "--id", "veh-1", "--role", "truck", "--password-file", "pw")
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1, usage.stderr
    assert "--role" in usage.stderr and not (tmp_path / "pw").exists()
