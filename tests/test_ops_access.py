"""Access: tokens stored hashed, roles, the carrier scope (helper and a FastAPI app using
``require``), dashboard sessions, and settings that refuse default secrets."""

# No `from __future__ import annotations`: FastAPI must see the route annotations,
# which name dependencies local to the fixture.

from collections.abc import Iterator
from dataclasses import asdict
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException

from cloud.ops import (
    AuthenticationError,
    DashboardUser,
    ForbiddenError,
    OpsSettings,
    Principal,
    Role,
    SessionSigner,
    SettingsError,
    TokenStore,
    ensure_carrier_access,
    hash_password,
    require,
    visible_to,
)
from cloud.ops.errors import AccessError
from cloud.ops.settings import DEVELOPMENT_SECRET
from tests.helpers import free_port
from wayline.serve import HttpServer

ORDERS = {
    "o-1": {"order_id": "o-1", "carrier_id": "swiftgo"},
    "o-2": {"order_id": "o-2", "carrier_id": "parcelbee"},
    "o-3": {"order_id": "o-3", "carrier_id": None},  # own fleet
}


def test_tokens_are_random_and_stored_only_hashed() -> None:
    store = TokenStore(pepper="pepper-0123456789abcdef0123456789")
    token, record = store.issue("oms", ["integration"])
    other, _ = store.issue("oms", ["integration"])
    assert token != other and token.startswith(f"wl_{record.token_id}_")
    secret = token.split("_", 2)[2]
    assert len(secret) >= 40
    stored = repr(asdict(record))
    assert secret not in stored and token not in stored
    assert len(record.salt) == 32 and len(record.digest) == 64
    principal = store.authenticate(token)
    assert principal.roles == {Role.INTEGRATION} and principal.name == "oms"
    # the records survive a restart (persisted elsewhere); the pepper must match
    assert TokenStore(store.records(), pepper="pepper-0123456789abcdef0123456789").authenticate(
        token
    )
    with pytest.raises(AuthenticationError):
        TokenStore(store.records(), pepper="another-pepper").authenticate(token)


def test_bad_and_revoked_tokens() -> None:
    store = TokenStore()
    token, record = store.issue("viewer", ["viewer"])
    for bad in ("", "Bearer x", "wl_", f"wl_{record.token_id}_wrong", token + "x"):
        with pytest.raises(AuthenticationError):
            store.authenticate(bad)
    store.revoke(record.token_id)
    with pytest.raises(AuthenticationError, match="revoked"):
        store.authenticate(token)


def test_role_rules() -> None:
    store = TokenStore()
    with pytest.raises(AccessError, match="bound to a carrier"):
        store.issue("3pl", ["carrier"])
    with pytest.raises(AccessError, match="carrier role only"):
        store.issue("3pl", ["ops"], carrier_id="swiftgo")
    with pytest.raises(AccessError, match="at least one role"):
        store.issue("nobody", [])
    with pytest.raises(ValueError):
        store.issue("x", ["superuser"])
    token, _ = store.issue("ops", ["ops"])
    assert store.authenticate(token).roles == {Role.OPS, Role.VIEWER}  # ops implies viewer


def test_the_carrier_helper() -> None:
    store = TokenStore()
    token, _ = store.issue("swiftgo api", ["carrier"], carrier_id="swiftgo")
    swiftgo = store.authenticate(token)
    ensure_carrier_access(swiftgo, "swiftgo")
    for other in ("parcelbee", None):
        with pytest.raises(ForbiddenError, match="scoped to carrier swiftgo"):
            ensure_carrier_access(swiftgo, other)
    mine = visible_to(swiftgo, ORDERS.values(), lambda o: o["carrier_id"])
    assert [o["order_id"] for o in mine] == ["o-1"]
    ops = Principal("t", "ops", frozenset({Role.OPS}))
    ensure_carrier_access(ops, "parcelbee")
    assert len(visible_to(ops, ORDERS.values(), lambda o: o["carrier_id"])) == 3


# --- a tiny API guarded by require() --------------------------------------------------------


@pytest.fixture
def api() -> Iterator[tuple[httpx.Client, TokenStore, SessionSigner]]:
    tokens = TokenStore()
    sessions = SessionSigner("session-secret-0123456789abcdef0123")
    app = FastAPI()
    reader = require("viewer", "integration", "carrier", tokens=tokens, sessions=sessions)
    approver = require("ops", tokens=tokens, sessions=sessions)

    @app.get("/orders")
    def list_orders(who: Annotated[Principal, Depends(reader)]) -> list[dict]:
        return visible_to(who, ORDERS.values(), lambda o: o["carrier_id"])

    @app.get("/orders/{order_id}")
    def get_order(order_id: str, who: Annotated[Principal, Depends(reader)]) -> dict:
        order = ORDERS.get(order_id)
        if order is None:
            raise HTTPException(404, "no such order")
        try:
            ensure_carrier_access(who, order["carrier_id"])
        except ForbiddenError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return order

    @app.post("/escalations/{item}/approve")
    def approve(item: str, who: Annotated[Principal, Depends(approver)]) -> dict:
        return {"approved": item, "by": who.name}

    server = HttpServer(app, "127.0.0.1", free_port())
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client, tokens, sessions
    finally:
        server.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_carrier_token_cannot_read_another_carriers_order(api) -> None:
    client, tokens, _ = api
    token, _ = tokens.issue("swiftgo api", ["carrier"], carrier_id="swiftgo")
    assert client.get("/orders/o-1", headers=bearer(token)).status_code == 200
    for other in ("o-2", "o-3"):
        response = client.get(f"/orders/{other}", headers=bearer(token))
        assert response.status_code == 403
        assert "scoped to carrier swiftgo" in response.json()["detail"]
    listed = client.get("/orders", headers=bearer(token)).json()
    assert [o["order_id"] for o in listed] == ["o-1"]


def test_401_and_403_say_what_is_wrong(api) -> None:
    client, tokens, _ = api
    response = client.get("/orders")
    assert response.status_code == 401 and "no credentials" in response.json()["detail"]
    assert response.headers["WWW-Authenticate"] == "Bearer"
    response = client.get("/orders", headers={"Authorization": "Basic abc"})
    assert response.status_code == 401 and "Bearer" in response.json()["detail"]
    response = client.get("/orders", headers=bearer("wl_nope_nope"))
    assert response.status_code == 401 and "unknown or wrong" in response.json()["detail"]
    viewer, _ = tokens.issue("wall screen", ["viewer"])
    assert client.get("/orders", headers=bearer(viewer)).status_code == 200
    response = client.post("/escalations/g-1/approve", headers=bearer(viewer))
    assert response.status_code == 403
    assert response.json()["detail"] == "wall screen has roles [viewer]; this needs one of [ops]"
    ops, _ = tokens.issue("dispatcher", ["ops"])
    assert client.post("/escalations/g-1/approve", headers=bearer(ops)).json()["by"] == (
        "dispatcher"
    )
    assert client.get("/orders", headers=bearer(ops)).status_code == 200  # ops implies viewer


def test_dashboard_login_with_a_session_cookie(api) -> None:
    client, _, sessions = api
    users = [DashboardUser("anna", hash_password("correct horse"), (Role.OPS,))]
    with pytest.raises(AuthenticationError, match="wrong user name or password"):
        sessions.login(users, "anna", "wrong")
    with pytest.raises(AuthenticationError, match="wrong user name or password"):
        sessions.login(users, "nobody", "correct horse")
    cookie = sessions.login(users, "anna", "correct horse")
    client.cookies.set("wayline_session", cookie)
    response = client.post("/escalations/g-1/approve")
    assert response.status_code == 200 and response.json()["by"] == "anna"
    payload, mac = cookie.split(".")
    client.cookies.set("wayline_session", payload[:-2] + "xx." + mac)
    response = client.post("/escalations/g-1/approve")
    assert response.status_code == 401 and "log in again" in response.json()["detail"]


def test_sessions_expire_and_resist_tampering() -> None:
    signer = SessionSigner("session-secret-0123456789abcdef0123", max_age_s=60)
    who = Principal("user:ben", "ben", frozenset({Role.VIEWER}))
    cookie = signer.issue(who, now=1000)
    assert signer.verify(cookie, now=1050).name == "ben"
    with pytest.raises(AuthenticationError, match="expired"):
        signer.verify(cookie, now=1061)
    with pytest.raises(AuthenticationError):
        SessionSigner("another-secret-0123456789abcdef0123").verify(cookie, now=1001)
    with pytest.raises(AuthenticationError):
        signer.verify("garbage", now=1001)


# --- settings -----------------------------------------------------------------------------

GOOD_SECRETS = {
    "WAYLINE_SESSION_SECRET": "s" * 8 + "-0123456789abcdef0123456789",
    "WAYLINE_TOKEN_PEPPER": "p" * 8 + "-0123456789abcdef0123456789",
    "WAYLINE_WEBHOOK_SECRET": "w" * 8 + "-0123456789abcdef0123456789",
}


@pytest.mark.parametrize("env", [None, "production", "staging", "test"])
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"WAYLINE_SESSION_SECRET": ""}, "WAYLINE_SESSION_SECRET is empty"),
        ({"WAYLINE_TOKEN_PEPPER": "changeme"}, "WAYLINE_TOKEN_PEPPER is a default value"),
        ({"WAYLINE_WEBHOOK_SECRET": DEVELOPMENT_SECRET}, "is a default value"),
        ({"WAYLINE_WEBHOOK_SECRET": "short-secret"}, "at least 32 needed"),
    ],
)
def test_settings_refuse_default_or_empty_secrets_outside_development(
    env, override, message
) -> None:
    environ = {**GOOD_SECRETS, **override}
    if env:
        environ["WAYLINE_ENV"] = env
    with pytest.raises(SettingsError, match=message):
        OpsSettings.from_env(environ)


def test_settings_in_production_and_development() -> None:
    settings = OpsSettings.from_env({**GOOD_SECRETS, "WAYLINE_ENV": "production"})
    assert settings.env == "production"
    assert settings.session_secret == GOOD_SECRETS["WAYLINE_SESSION_SECRET"]
    with pytest.raises(SettingsError, match="WAYLINE_SESSION_SECRET is empty"):
        OpsSettings.from_env({})  # no environment at all is production
    dev = OpsSettings.from_env({"WAYLINE_ENV": "development"})
    assert dev.session_secret == dev.webhook_secret == DEVELOPMENT_SECRET
    with pytest.raises(SettingsError, match="WAYLINE_ENV"):
        OpsSettings.from_env({**GOOD_SECRETS, "WAYLINE_ENV": "prod"})
