"""The plain-HTTP listener serves /pki/* only: CRLs and CA certificates are signed objects that
relying parties (nginx's OCSP/CRL fetchers among them) read over http://."""

from __future__ import annotations

from pwa_server.web.asgi import ASGIApp, Receive, Scope, Send

_ALLOWED_PREFIX = "/pki/"
_NOT_FOUND = b'{"type":"about:blank","title":"Only /pki/ is served over plain HTTP","status":404}'


class PlainHttpPkiOnlyMiddleware:
    """Everything but /pki/ answers 404 on a connection without TLS."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope.get("scheme") == "http"
            and not scope["path"].startswith(_ALLOWED_PREFIX)
        ):
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [(b"content-type", b"application/problem+json")],
                }
            )
            await send({"type": "http.response.body", "body": _NOT_FOUND})
            return
        await self.app(scope, receive, send)
