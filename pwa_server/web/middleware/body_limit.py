"""Request bodies are bounded per route before anything parses them.

Starlette reads whatever a client sends (`request.body()`, `request.form()`) into memory;
uvicorn only pauses reading while nothing consumes the body. So this middleware, the only
reader of the client's body, refuses a body whose Content-Length is over the route's limit
without reading it, reads a chunked one up to the limit and no further, and within a time
limit; the application then gets the body from memory. No library does this for ASGI.
The refusal closes the connection: the rest of the body is discarded by uvicorn, never read
into memory.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from pwa_server.i18n import N_
from pwa_server.web.api import problems
from pwa_server.web.asgi import ASGIApp, Message, Receive, Scope, Send
from pwa_server.web.errors import error_response

KIB = 1024
# An OCSP request for one certificate is ~100 bytes.
OCSP_LIMIT = 4 * KIB
# WebAuthn options and responses: a few hundred bytes to ~2 KiB with attestation.
WEBAUTHN_JSON_LIMIT = 16 * KIB
# Forms and API calls: the longest field (a return URL, an assertion) is 8 KiB.
DEFAULT_LIMIT = 64 * KIB
# A client that sends its body slower than this is holding a worker's attention for nothing.
BODY_SECONDS = 30.0


def body_limit(path: str, content_type: str) -> int:
    """The largest body accepted for a request to `path` with `content_type`."""
    if path == "/pki/ocsp":
        return OCSP_LIMIT
    if path.startswith("/officer/") and content_type.startswith("application/json"):
        return WEBAUTHN_JSON_LIMIT
    return DEFAULT_LIMIT


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


class BodyLimitMiddleware:
    """Reads each request's body (bounded in size and time) before the application runs."""

    def __init__(self, app: ASGIApp, *, seconds: float = BODY_SECONDS) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        limit = body_limit(scope["path"], headers.get(b"content-type", b"").decode("latin-1"))
        try:
            declared = headers.get(b"content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                raise _Refused(413 if declared.isdigit() else 400)
            body = await asyncio.wait_for(_read(receive, limit), timeout=self.seconds)
        except _Refused as refused:
            await _refuse(scope, receive, send, refused.status)
            return
        except TimeoutError:
            await _refuse(scope, receive, send, 408)
            return
        if body is None:
            return  # the client went away
        await self.app(scope, _replay(body, receive), send)


async def _read(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _Refused(413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body, once, as one message; then whatever the server says (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


_REFUSALS = {
    400: (N_("Bad request"), None),
    408: (
        N_("The data came too slowly"),
        N_("The connection was too slow. Check your connection and try again."),
    ),
    413: (
        N_("The data sent is too large"),
        N_("Go back and send less: a form here never needs that much."),
    ),
}


_API_PROBLEMS = {
    400: ("malformed-length", "The Content-Length header is not a number"),
    408: ("too-slow", "The request body came too slowly"),
    413: ("too-large", "The request body is too large"),
}


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int) -> None:
    request = Request(scope, receive)
    response: Response
    if scope["path"].startswith("/api/"):
        slug, api_title = _API_PROBLEMS[status]
        response = problems.problem(status, slug, api_title, instance=scope["path"])
    else:
        title, text = _REFUSALS[status]
        response = error_response(request, status, title, text)
    # The unread rest of the body must not be taken for the next request.
    response.headers["connection"] = "close"
    await response(scope, receive, send)
