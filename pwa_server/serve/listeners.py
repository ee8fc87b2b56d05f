"""The listening sockets, bound once before any worker starts and inherited by every worker."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from pwa_server.settings import ConfigurationError, Settings


@dataclass(frozen=True)
class Listeners:
    """The bound sockets, shared by every worker."""

    https: socket.socket
    check: socket.socket
    http: socket.socket


def bind(settings: Settings) -> Listeners:
    """Bind both ports now, so that a port in use is reported before any worker starts."""
    bound: list[socket.socket] = []
    try:
        for port in (settings.https_port, settings.check_port, settings.http_port):
            bound.append(_bind(settings.host, port))
    except ConfigurationError:
        for sock in bound:
            sock.close()
        raise
    return Listeners(*bound)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says
    # TCP, and accepted sockets inherit it. Without it a response written in two parts
    # (headers, body) waits ~40 ms for the client's delayed ACK (bench/ocsp.py measured it).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
