"""Pairing a test's HTTP client with a tablet or terminal app, as a program does it.

The app asks every ``/api`` call for a paired device's session (:mod:`edge.web_guard`): a
program pairs once with the gateway's code (``POST /api/pair``) and then sends the session
token as ``Authorization: Bearer``, which also passes the cross-site check of writes.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import httpx

__all__ = ["PAIRING_CODE", "code_of", "pair", "pair_client"]

PAIRING_CODE = "wayline-test-0042"
"""The pairing code tests give the processes they start (``WAYLINE_PAIRING_CODE``)."""


def code_of(app: Any) -> str:
    """The pairing code of an app made by ``create_tablet_app`` or ``create_terminal_app``."""
    return str(app.state.pairing.code)


def pair(url: str, code: str = PAIRING_CODE, timeout: float = 10) -> dict[str, str]:
    """Pair with the app at ``url``; the header that authenticates later calls."""
    req = urllib.request.Request(
        url.rstrip("/") + "/api/pair",
        data=json.dumps({"code": code}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        token = json.loads(r.read())["token"]
    return {"Authorization": f"Bearer {token}"}


def pair_client(client: httpx.Client, code: str) -> httpx.Client:
    """Pair ``client`` (its base URL is the app) and make it send the session from now on."""
    answer = client.post("/api/pair", json={"code": code})
    assert answer.status_code == 200, answer.text
    client.cookies.clear()  # a program authenticates with the header, not the cookie
    client.headers["Authorization"] = f"Bearer {answer.json()['token']}"
    return client
