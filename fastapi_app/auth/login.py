"""A login for the unmodified Genie page, which sends no token of its own (full stage,
with ``GENIE_JWT_SECRET`` and ``GENIE_LOGIN_USERS`` set).

``POST /login`` checks a user's password (``fastapi_app.auth.passwords``) and sets a session
cookie: a JWT signed with the server's secret (``sub`` = the user, expiring after
``GENIE_LOGIN_SESSION_TTL``), ``HttpOnly`` (no script can read it), ``SameSite=Strict``,
``Path=/``, ``Secure`` over https or with ``GENIE_LOGIN_COOKIE_SECURE``. Every token check
reads it last (``security.cookie_token``): the legacy routes, the Socket.IO handshake,
``/ws``. Without a valid one, ``/genie`` redirects here; the API routes answer 401.

Strict, not Lax: the legacy routes change state on GET (``/push``, ``/delete-snapshot``)
and a Lax cookie rides along on a top-level GET from another site. The cost: following a
link from another site to ``/genie`` shows this page once. A session is not revocable
before it expires: ``POST /logout`` clears the browser's copy, and rotating the secret
ends every session. Attempts are rate-limited per address (``GENIE_RATE_LIMIT_LOGIN``).
"""

from __future__ import annotations

import asyncio
import html
import os
from string import Template
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from config import STATIC_DIR, Settings
from fastapi_app.auth.passwords import PasswordHash, parse_users
from fastapi_app.auth.security import SESSION_COOKIE, AuthError, token_from_connection
from fastapi_app.deps import RuntimeDep, caller_key, refused_for
from fastapi_app.errors import ApiError
from fastapi_app.features import StageConfigError
from wire import urls

LOGIN_PATH = "/login"
HOME = urls.PAGE_PATH
PAGE = STATIC_DIR / "login.html"
MAX_FORM_BYTES = 4096  # user, password and next; more is not a login form
NO_STORE = {"Cache-Control": "no-store"}


def login_enabled(settings: Settings, auth: bool) -> bool:
    return auth and bool(settings.login_users)


def local_path(target: str | None) -> str:
    """``target`` if it is a path on this site, else the Genie page (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return HOME
    if "\\" in target or any(ord(c) < 0x20 or c == "\x7f" for c in target):
        return HOME  # browsers read "/\\host" as "//host" and drop tabs and newlines
    parts = urlsplit(target)
    return HOME if parts.scheme or parts.netloc else target


def login_redirect(request: Request) -> RedirectResponse | None:
    """For a page: a redirect to the login form when login is on and the request has no
    valid token (cookie, header or ``?token=``); None to serve the page."""
    rt = getattr(request.app.state, "runtime", None)
    if rt is None or not login_enabled(rt.settings, rt.access.auth):
        return None
    try:
        rt.access.verifier.verify(token_from_connection(request))
        return None
    except AuthError:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='')}", 303)


class Users:
    """The configured users; checking an unknown name costs as much as a known one."""

    def __init__(self, entries: list[str]) -> None:
        self._users = parse_users(entries)
        rounds = max((h.iterations for h in self._users.values()), default=1)
        self._decoy = PasswordHash(rounds, os.urandom(16), os.urandom(32))

    def check(self, user: str, password: str) -> bool:
        known = self._users.get(user)
        return (known or self._decoy).matches(password) and known is not None


def build_router(settings: Settings, auth: bool) -> APIRouter | None:
    """The login routes; None when no users are configured. Users without auth would
    leave the page open to everyone who believes it locked: that stops the start."""
    if not login_enabled(settings, auth):
        if settings.login_users:
            raise StageConfigError(
                "GENIE_LOGIN_USERS is set but auth is off: set GENIE_JWT_SECRET (stage 'full')"
            )
        return None
    users = Users(settings.login_users)  # a bad entry stops the start, naming its user
    page = Template(PAGE.read_text(encoding="utf-8"))
    router = APIRouter(tags=["login"])

    def form_page(
        target: str, error: str = "", status: int = 200, user: str = "", wait: int | None = None
    ) -> HTMLResponse:
        fields = {"next": target, "error": error, "user": user}
        body = page.safe_substitute({k: html.escape(v) for k, v in fields.items()})
        retry = {"Retry-After": str(wait)} if wait is not None else {}
        return HTMLResponse(body, status, headers={**NO_STORE, **retry})

    @router.get(LOGIN_PATH, response_class=HTMLResponse, summary="The login form")
    async def login_form(next: str | None = None) -> HTMLResponse:
        return form_page(local_path(next))

    @router.post(LOGIN_PATH, response_class=HTMLResponse, summary="Log in: sets the cookie")
    async def login(request: Request, rt: RuntimeDep) -> Response:
        form = await _form(request)
        target, user = local_path(form.get("next")), form.get("user", "")
        key = caller_key(request, None)  # per address: the name is the attacker's choice
        if (wait := await refused_for(rt, rt.access.login, "login", key)) is not None:
            message = f"Too many login attempts; try again in {wait} s."
            return form_page(target, message, 429, user, wait)
        if not await asyncio.to_thread(users.check, user, form.get("password", "")):
            if rt.metrics is not None:
                rt.metrics.auth_failures.labels("login").inc()
            return form_page(target, "Wrong user name or password.", 401, user)
        response = RedirectResponse(target, 303)
        response.set_cookie(
            SESSION_COOKIE,
            rt.access.verifier.issue(user, ttl=settings.login_session_ttl),
            max_age=int(settings.login_session_ttl),
            **_cookie_flags(request, settings),
        )
        return response

    @router.post("/logout", summary="Log out: clears the session cookie")
    async def logout(request: Request) -> RedirectResponse:
        response = RedirectResponse(LOGIN_PATH, 303)
        response.delete_cookie(SESSION_COOKIE, **_cookie_flags(request, settings))
        return response

    return router


def _cookie_flags(request: Request, settings: Settings) -> dict[str, object]:
    secure = settings.login_cookie_secure or request.url.scheme == "https"
    return {"path": "/", "secure": secure, "httponly": True, "samesite": "strict"}


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form of at most ``MAX_FORM_BYTES`` (no python-multipart needed)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise ApiError(413, "form_too_large", f"a login form is under {MAX_FORM_BYTES} bytes")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}
