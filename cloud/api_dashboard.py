"""The ops dashboard: a login page, the page itself and its local assets, at ``/dashboard``.

The page is static (``cloud/dashboard/``: HTML, CSS, JS, no external assets or map tiles)
and polls ``/v1/dashboard/summary`` every 2 s with the session cookie set at login. A login
while the name or the address is locked after failed ones is answered 429 with
``Retry-After`` (the login page for a browser, JSON for anything else); a logout ends the
session in the store, so its cookie is refused from then on.
"""

from __future__ import annotations

import html
import math
import re
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from cloud.api_access import COOKIE, Access, LoginLockedError
from cloud.ops import AuthenticationError, Role

__all__ = ["dashboard_router"]

_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
_ASSET_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


def _asset(name: str) -> str:
    return resources.files("cloud.dashboard").joinpath(name).read_text("utf-8")


def dashboard_router(access: Access, *, secure_cookie: bool = False) -> APIRouter:
    r = APIRouter(prefix="/dashboard", include_in_schema=False)
    staff = {Role.OPS, Role.VIEWER}

    @r.get("")
    def page(request: Request) -> Response:
        p = access.session(request)
        if p is None or not p.roles & staff:
            return RedirectResponse("/dashboard/login", status_code=303)
        return HTMLResponse(_asset("index.html"), headers={"Cache-Control": "no-store"})

    @r.get("/login")
    def login_page(error: str | None = None) -> HTMLResponse:
        html = _asset("login.html")
        message = '<p class="error" id="login-error">Wrong user name or password.</p>'
        return HTMLResponse(html.replace("<!--error-->", message if error else ""))

    @r.post("/login")
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=200)],
        password: Annotated[str, Form(max_length=500)],
    ) -> Response:
        client = request.client.host if request.client else None
        try:
            cookie = access.login(username, password, client)
        except LoginLockedError as exc:
            wait = str(math.ceil(exc.retry_after_s))
            headers = {"Retry-After": wait}
            if "text/html" not in request.headers.get("accept", ""):
                return JSONResponse({"error": str(exc)}, status_code=429, headers=headers)
            message = f'<p class="error" id="login-error">{html.escape(str(exc))}.</p>'
            page = _asset("login.html").replace("<!--error-->", message)
            return HTMLResponse(page, status_code=429, headers=headers)
        except AuthenticationError:
            return RedirectResponse("/dashboard/login?error=1", status_code=303)
        out = RedirectResponse("/dashboard", status_code=303)
        out.set_cookie(
            COOKIE,
            cookie,
            httponly=True,
            samesite="strict",
            secure=secure_cookie,
            max_age=access.settings.session_max_age_s,
            path="/",
        )
        return out

    @r.post("/logout")
    def logout(request: Request) -> Response:
        access.logout(request.cookies.get(COOKIE))
        out = RedirectResponse("/dashboard/login", status_code=303)
        out.delete_cookie(COOKIE, path="/")
        return out

    @r.get("/static/{name}")
    def static(name: str) -> Response:
        suffix = name[name.rfind(".") :] if "." in name else ""
        if suffix not in _TYPES or not _ASSET_NAME.fullmatch(name):
            return JSONResponse({"error": f"no dashboard asset {name[:80]!r}"}, status_code=404)
        try:
            body = _asset(name)
        except (FileNotFoundError, OSError):
            return Response(status_code=404)
        return Response(body, media_type=_TYPES[suffix])

    return r
