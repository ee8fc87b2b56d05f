"""Repeated OCSP GETs answered in the event loop, before routing.

A relying party's TLS server asks about the same certificates over and over, by GET (RFC 5019),
without nonce. The responders remember the answer to each such request for STATUS_RECHECK
(`OcspResponders.recent`); answering those here skips the router, the other middleware and
the thread-pool hop that a database read and a token signature need, which is most of what
a reused response costs (bench/ocsp.py). Everything else goes on to the application.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from pwa_server.pki.ocsp import MEDIA_TYPE, OcspResponders
from pwa_server.web.asgi import ASGIApp, Receive, Scope, Send
from pwa_server.web.pki_routes import OCSP_GET_PREFIX, OCSP_HEADERS, ocsp_request_in_path

_HEADERS = [
    (b"content-type", MEDIA_TYPE.encode()),
    *((name.encode(), value.encode()) for name, value in OCSP_HEADERS.items()),
]


class RecentOcspResponsesMiddleware:
    """Sends the remembered response to a GET /pki/ocsp/<request> asked again within
    STATUS_RECHECK; passes every other request on."""

    def __init__(
        self, app: ASGIApp, *, responders: OcspResponders, clock: Callable[[], dt.datetime]
    ) -> None:
        self.app = app
        self.responders = responders
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"].startswith(OCSP_GET_PREFIX)
        ):
            der = ocsp_request_in_path(scope["path"][len(OCSP_GET_PREFIX) :])
            response = self.responders.recent(der, now=self.clock())
            if response is not None:
                headers = [*_HEADERS, (b"content-length", str(len(response)).encode())]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": response})
                return
        await self.app(scope, receive, send)
