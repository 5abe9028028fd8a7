"""Refuse cross-site requests that change state (full stage).

The original Genie changes state with plain GETs (``/push``, ``/delete-snapshot/<id>``),
so any page a user visits could fire them with an ``<img src>``. Those two paths and
every request with an unsafe method (a cross-site HTML form can POST without a CORS
preflight) are checked here; everything else passes untouched.

Is a request same-site? One answer for sockets and HTTP: the Origin allow-list of
:class:`~fastapi_app.auth.security.OriginPolicy` (``GENIE_ALLOWED_ORIGINS``: listed origins,
the page's own origin, loopback pages when the list is empty). In order:

1. ``Sec-Fetch-Site: same-origin`` or ``none`` (typed URL, bookmark) passes: the
   browser sets it and no page can forge it.
2. Else the origin the browser names, ``Origin`` or failing that the origin of
   ``Referer``, must pass the policy.
3. Else (neither header) the request passes only without ``Sec-Fetch-Site`` too. Every
   current browser sends ``Sec-Fetch-Site`` on a cross-site request, so a request with
   none of the three comes from a non-browser client (curl, the seeds' scripts), which
   no other site can drive. A ``cross-site`` or ``same-site`` request whose page hid
   its origin (``referrerpolicy="no-referrer"``) is refused: it cannot be checked.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import Scope, Send

from fastapi_app.auth.security import OriginPolicy
from wire.legacy_http import json_bytes

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The legacy GETs that change state: queue a question, forget a job.
STATE_CHANGING_GETS = ("/push",)
STATE_CHANGING_GET_PREFIXES = ("/delete-snapshot/",)
TRUSTED_FETCH_SITES = frozenset({"same-origin", "none"})
REFUSED_STATUS = 403


def changes_state(scope: Scope) -> bool:
    """Whether the request is one this guard checks."""
    if scope.get("method", "GET") not in SAFE_METHODS:
        return True
    path: str = scope["path"]
    return path in STATE_CHANGING_GETS or path.startswith(STATE_CHANGING_GET_PREFIXES)


def referer_origin(referer: str | None) -> str | None:
    """``scheme://host[:port]`` of a Referer URL, None if it has none."""
    if not referer:
        return None
    try:
        parts = urlsplit(referer.strip())
        netloc = parts.netloc.rpartition("@")[2]  # never a userinfo part
    except ValueError:
        return None
    return f"{parts.scheme}://{netloc}" if parts.scheme and netloc else None


class CrossSiteGuard:
    """Decides whether a state-changing request may come from where it comes from."""

    def __init__(self, policy: OriginPolicy) -> None:
        self.policy = policy

    def refusal(self, scope: Scope) -> str | None:
        """Why the request is refused, or None when it may go on."""
        if not changes_state(scope):
            return None
        headers = Headers(scope=scope)
        fetch_site = headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site.strip().lower() in TRUSTED_FETCH_SITES:
            return None
        source = headers.get("origin") or referer_origin(headers.get("referer"))
        if source is not None:
            if self.policy.allows(source, headers.get("host")):
                return None
            return f"origin {source!r} is not allowed to change state here"
        if fetch_site is None:
            return None  # no browser: nothing another site could have sent
        return f"a {fetch_site} request without Origin or Referer cannot be checked"


async def refuse(send: Send, reason: str) -> None:
    """403 with the kit's error body: the request was never handled."""
    body = json_bytes(
        {
            "code": "cross_site_request",
            "message": f"cross-site request refused: {reason}. Send it from this server's "
            "own page (or a page listed in GENIE_ALLOWED_ORIGINS), or without browser "
            "headers from a script.",
        }
    )
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": REFUSED_STATUS, "headers": headers})
    await send({"type": "http.response.body", "body": body})
