"""Security headers on every HTTP response, and the Content-Security-Policy of pages.

Every response gets ``X-Content-Type-Options: nosniff`` (a question echoed in a
text/plain or JSON body is never run as HTML or script), ``Referrer-Policy:
same-origin`` (a page URL with ``?token=`` never leaks to another site),
``X-Frame-Options: DENY`` and, unless the route set its own, a CSP of just
``frame-ancestors 'none'`` (no other site can frame the kit and trick clicks).

HTML pages (the kit's ``/genie``, ``/stream-player``, ``/static/*.html``) get
:data:`PAGE_CSP`: scripts and styles only from this origin's files, never inline, so
markup smuggled into a page cannot run. ``connect-src 'self'`` covers the page's own
``ws://``/``wss://`` origin too (CSP Level 3, what current browsers implement).
FastAPI's docs pages load Swagger UI from a CDN with inline script: they keep the
frame-only CSP (``exempt`` paths).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Message, Scope, Send

PAGE_CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",  # the pages' empty icon is data:,
        "media-src 'self' blob:",  # the stream player plays a MediaSource blob: URL
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
FRAME_ONLY_CSP = "frame-ancestors 'none'"
CSP = b"content-security-policy"
BASELINE: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)


def with_security_headers(
    headers: Iterable[tuple[bytes, bytes]], *, page_csp: bool = True
) -> list[tuple[bytes, bytes]]:
    """``headers`` plus every security header the response does not set itself."""
    out = list(headers)
    names = {name.lower() for name, _ in out}
    out += [(name, value) for name, value in BASELINE if name not in names]
    if CSP not in names:
        content_type = next((v for n, v in out if n.lower() == b"content-type"), b"")
        is_page = page_csp and content_type.lower().startswith(b"text/html")
        out.append((CSP, (PAGE_CSP if is_page else FRAME_ONLY_CSP).encode()))
    return out


class SecurityHeaders:
    """Wraps an HTTP request's ``send`` so its response carries the headers above."""

    def __init__(self, exempt: Iterable[str | None] = ()) -> None:
        self.exempt = frozenset(path for path in exempt if path)

    def wrap(self, scope: Scope, send: Send) -> Send:
        page_csp = scope["path"] not in self.exempt

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = with_security_headers(message.get("headers", ()), page_csp=page_csp)
                message = {**message, "headers": headers}
            await send(message)

        return send_with_headers
