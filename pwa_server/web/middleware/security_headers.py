"""Security headers on every response: a strict CSP and the usual hardening.

One response may let its forms post to another origin as well (the installation check's
"return to the site" form): `allow_form_action(response, origin)` marks the response, and
the middleware adds that origin to form-action of that response's CSP only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.responses import Response

from pwa_server.web.asgi import ASGIApp, Message, Receive, Scope, Send

_DIRECTIVES = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "font-src": "'self'",
    "manifest-src": "'self'",
    "worker-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
# What a CSP host-source can name (CSP3 2.3.1): scheme, DNS name or IPv4 address, port. IPv6
# literals cannot be named, and nothing else may pass into the header (no ';', ',', space).
_ORIGIN = re.compile(
    r"https?://[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?"
)
# Set by a handler, read and removed here: it never leaves the server.
_FORM_ACTION = "x-shomei-form-action"


def content_security_policy(form_action: Iterable[str] = ()) -> str:
    """The policy, with `form_action` origins allowed besides this site."""
    directives = dict(_DIRECTIVES)
    extra = " ".join(dict.fromkeys(form_action))
    if extra:
        directives["form-action"] += " " + extra
    return "; ".join(f"{name} {value}" for name, value in directives.items())


CONTENT_SECURITY_POLICY = content_security_policy()


def can_allow_form_action(origin: str) -> bool:
    """Whether `origin` (scheme://host[:port]) can be named in form-action."""
    return _ORIGIN.fullmatch(origin.lower()) is not None


def allow_form_action(response: Response, origin: str) -> None:
    """Let the page in `response` post forms to `origin` too (this response only)."""
    if not can_allow_form_action(origin):
        raise ValueError(f"{origin!r} cannot be named in a Content-Security-Policy")
    before = response.headers.get(_FORM_ACTION)
    response.headers[_FORM_ACTION] = f"{before} {origin.lower()}" if before else origin.lower()


def _headers(policy: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", policy.encode()),
        (b"strict-transport-security", b"max-age=63072000"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    ]


_HEADERS = _headers(CONTENT_SECURITY_POLICY)
_NAMES = {name for name, _ in _HEADERS} | {_FORM_ACTION.encode()}


class SecurityHeadersMiddleware:
    """Adds the headers above, replacing any a handler set, to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                given = message.get("headers", [])
                origins = [
                    origin
                    for name, value in given
                    if name.lower() == _FORM_ACTION.encode()
                    for origin in value.decode("latin-1").split()
                    if can_allow_form_action(origin)
                ]
                headers = [h for h in given if h[0].lower() not in _NAMES]
                added = _headers(content_security_policy(origins)) if origins else _HEADERS
                message = {**message, "headers": headers + added}
            await send(message)

        await self.app(scope, receive, send_with_headers)
