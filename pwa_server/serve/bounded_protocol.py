"""Request heads bounded in size and time, on every listener.

uvicorn's httptools protocol accepts header lines of any length, and neither of its protocols
times out a client that sends its request head slowly: the keep-alive timer runs only between
requests, and any byte received cancels it. A client that trickles a byte a second, or sends
10 MB of headers, would hold a connection and its memory for ever. This mixin counts the bytes
of each request head, and gives the head HEAD_SECONDS from its first byte (from the
connection's start for the first request); beyond either it answers and closes.

It relies on uvicorn internals shared by both protocols (`data_received`, `cycle`,
`transport`); uvicorn is pinned exactly (pyproject.toml) and tests/web/test_request_limits.py
checks the behaviour over real sockets.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# nginx's default: 4 buffers of 8 KiB for the request line and the headers.
MAX_HEAD_BYTES = 32 * 1024
HEAD_SECONDS = 10.0
# Seconds an idle keep-alive connection is kept (uvicorn's default, said here on purpose).
KEEP_ALIVE_SECONDS = 5


def _refusal(status: bytes, text: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: " + str(len(text)).encode() + b"\r\nconnection: close\r\n\r\n" + text
    )


_TOO_LARGE = _refusal(b"431 Request Header Fields Too Large", b"Request head too large.\n")
_TOO_SLOW = _refusal(b"408 Request Timeout", b"Request head not received in time.\n")


class BoundedHead:
    """Mixin for an uvicorn HTTP protocol: request heads at most MAX_HEAD_BYTES, received
    within HEAD_SECONDS."""

    transport: asyncio.Transport
    cycle: Any  # uvicorn's RequestResponseCycle of the request in progress, or None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(cast(asyncio.Transport, transport))  # type: ignore[misc]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head():
            self._arm()
            self._head_bytes += len(data)
        super().data_received(data)  # type: ignore[misc]
        if not self._awaiting_head():
            self._disarm()
        elif self._head_bytes > MAX_HEAD_BYTES:
            self._refuse(_TOO_LARGE)

    def _awaiting_head(self) -> bool:
        return self.cycle is None or bool(self.cycle.response_complete)

    def _arm(self) -> None:
        if self._head_deadline is None:
            self._head_bytes = 0
            loop = asyncio.get_running_loop()
            self._head_deadline = loop.call_later(HEAD_SECONDS, self._refuse, _TOO_SLOW)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _refuse(self, response: bytes) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()


class BoundedHttpToolsProtocol(BoundedHead, HttpToolsProtocol):
    """uvicorn's httptools protocol with bounded request heads."""


class BoundedH11Protocol(BoundedHead, H11Protocol):
    """uvicorn's h11 protocol with bounded request heads (h11's own limit stays a backstop)."""
