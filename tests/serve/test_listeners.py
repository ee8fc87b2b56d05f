"""The listening sockets `shomei serve` binds before starting its workers."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from pwa_server.serve.listeners import Listeners, bind
from pwa_server.settings import Settings
from testbed.serving import free_port


@pytest.fixture
def listeners(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Listeners]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("listeners"),
        https_port=free_port(),
        check_port=free_port(),
        http_port=free_port(),
    )
    bound = bind(settings)
    yield bound
    for sock in (bound.https, bound.check, bound.http):
        sock.close()


def test_accepted_connections_send_small_writes_at_once(listeners: Listeners) -> None:
    """asyncio turns Nagle off (TCP_NODELAY) only on sockets whose proto says TCP, and
    accepted sockets inherit it: with proto 0 a response written as headers then body waits
    ~40 ms for the client's delayed ACK."""
    for sock in (listeners.https, listeners.check, listeners.http):
        assert sock.proto == socket.IPPROTO_TCP
        with socket.create_connection(sock.getsockname()[:2]) as client:
            accepted, _ = sock.accept()
            with accepted:
                assert accepted.proto == socket.IPPROTO_TCP
            client.close()
