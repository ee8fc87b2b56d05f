"""Every listener bounds what a client may make it read: body sizes per route, refused from
their Content-Length or cut off at the limit; request heads in size and time. Over real
sockets against the session's server."""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pwa_server.serve.bounded_protocol import HEAD_SECONDS, MAX_HEAD_BYTES
from testbed.serving import ShomeiServer

MIB = 1024 * 1024


@contextmanager
def _connection(server: ShomeiServer, listener: str) -> Iterator[socket.socket]:
    """A raw connection to one listener ("https", "check" or "http"), TLS where it has TLS."""
    port = {
        "https": server.settings.https_port,
        "check": server.settings.check_port,
        "http": server.settings.http_port,
    }[listener]
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    if listener != "http":
        sock = server.ssl_context().wrap_socket(sock, server_hostname="localhost")
    try:
        yield sock
    finally:
        sock.close()


def _response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ConnectionResetError, ssl.SSLError):
        pass
    return received


def _status(response: bytes) -> int:
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", response)
    assert match is not None, response[:200]
    return int(match.group(1))


def _send_until_answered(sock: socket.socket, chunk: bytes, most: int) -> int:
    """Send `chunk` repeatedly, up to `most` bytes, until the server stops reading; the
    bytes sent."""
    sent = 0
    sock.settimeout(5)
    try:
        while sent < most:
            sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError, TimeoutError, ssl.SSLError, OSError):
        pass
    return sent


def _csrf_session(server: ShomeiServer) -> tuple[str, str]:
    """A console session cookie and its CSRF token, as the sign-in page gives them."""
    with server.client() as client:
        page = client.get(f"{server.base_url}/officer/sign-in")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert token is not None
    return page.cookies["__Host-session"], token.group(1)


def test_an_ocsp_post_declaring_200_mb_is_refused_before_its_body_is_read(
    server: ShomeiServer,
) -> None:
    with _connection(server, "http") as sock:
        sock.sendall(
            b"POST /pki/ocsp HTTP/1.1\r\nhost: localhost\r\n"
            b"content-type: application/ocsp-request\r\n"
            b"content-length: 209715200\r\n\r\n" + b"0" * 100
        )
        response = _response(sock)
    assert _status(response) == 413


def test_a_chunked_ocsp_post_is_read_no_further_than_4_kib(server: ShomeiServer) -> None:
    with _connection(server, "http") as sock:
        sock.sendall(
            b"POST /pki/ocsp HTTP/1.1\r\nhost: localhost\r\n"
            b"content-type: application/ocsp-request\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        chunk = b"400\r\n" + b"0" * 1024 + b"\r\n"
        _send_until_answered(sock, chunk, 200 * MIB)
        response = _response(sock)
    assert _status(response) == 413


def test_a_json_body_over_16_kib_to_sign_in_options_is_refused(server: ShomeiServer) -> None:
    cookie, token = _csrf_session(server)
    with server.client() as client:
        response = client.post(
            f"{server.base_url}/officer/sign-in/options",
            content=b'{"padding": "' + b"a" * (200 * 1024) + b'"}',
            headers={
                "content-type": "application/json",
                "x-csrf-token": token,
                "cookie": f"__Host-session={cookie}",
            },
        )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_form_over_64_kib_is_refused_before_it_is_parsed(server: ShomeiServer) -> None:
    with server.client() as client:
        response = client.post(
            f"{server.base_url}/enroll/some-enrollment",
            content=b"one_time_password=" + b"1" * (100 * 1024),
            headers={
                "content-type": "application/x-www-form-urlencoded",
                "accept-language": "ja",
            },
        )
    assert response.status_code == 413
    assert "送信されたデータが大きすぎます" in response.text


def test_a_body_within_its_limit_still_reaches_the_application(server: ShomeiServer) -> None:
    with server.client() as client:
        response = client.post(
            f"{server.base_url}/enroll/some-enrollment",
            content=b"one_time_password=" + b"1" * (60 * 1024),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 403  # the form's missing CSRF token: parsed, then refused


@pytest.mark.parametrize("listener", ["https", "check", "http"])
def test_request_heads_over_32_kib_are_refused(server: ShomeiServer, listener: str) -> None:
    with _connection(server, listener) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n")
        _send_until_answered(sock, b"x-padding: " + b"a" * 1000 + b"\r\n", 10 * MIB)
        response = _response(sock)
    assert MAX_HEAD_BYTES < 10 * MIB
    assert _status(response) == 431


def test_a_request_head_sent_too_slowly_is_cut_off_on_every_listener(
    server: ShomeiServer,
) -> None:
    results: dict[str, tuple[int, float]] = {}

    def trickle(listener: str) -> None:
        with _connection(server, listener) as sock:
            started = time.monotonic()
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            sock.settimeout(1)
            received = b""
            while not received and time.monotonic() - started < HEAD_SECONDS + 20:
                try:
                    sock.sendall(b"x")  # a byte now and then keeps no connection alive
                    received = sock.recv(65536)
                except TimeoutError:
                    continue
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    break
            results[listener] = (_status(received) if received else 0, time.monotonic() - started)

    threads = [
        threading.Thread(target=trickle, args=(name,)) for name in ("https", "check", "http")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for listener, (status, seconds) in results.items():
        assert status == 408, listener
        assert seconds < HEAD_SECONDS + 5, listener


def _worker_pids(server: ShomeiServer) -> list[int]:
    assert server.process is not None
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def _rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match is not None
    return int(match.group(1)) * 1024


def test_worker_memory_stays_flat_while_20_clients_send_200_mb_bodies(
    server: ShomeiServer,
) -> None:
    cookie, token = _csrf_session(server)
    workers = _worker_pids(server)
    idle = {pid: _rss(pid) for pid in workers}
    peak = dict(idle)
    sending = threading.Event()
    sending.set()

    def sample() -> None:
        while sending.is_set():
            for pid in workers:
                peak[pid] = max(peak[pid], _rss(pid))
            time.sleep(0.05)

    def client(index: int) -> None:
        listener = ("https", "check", "http")[index % 3]
        path = "/pki/ocsp" if listener == "http" else "/officer/sign-in/options"
        framing = (
            b"transfer-encoding: chunked\r\n" if index % 2 else b"content-length: 209715200\r\n"
        )
        with _connection(server, listener) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nhost: localhost\r\n".encode()
                + f"cookie: __Host-session={cookie}\r\nx-csrf-token: {token}\r\n".encode()
                + b"content-type: application/json\r\n"
                + framing
                + b"\r\n"
            )
            chunk = b"ffff\r\n" + b"a" * 0xFFFF + b"\r\n" if index % 2 else b"a" * 65536
            _send_until_answered(sock, chunk, 200 * MIB)
            _response(sock)

    sampler = threading.Thread(target=sample)
    sampler.start()
    clients = [threading.Thread(target=client, args=(index,)) for index in range(20)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    sending.clear()
    sampler.join()
    for pid in workers:
        assert peak[pid] - idle[pid] < 50 * MIB, (pid, idle[pid], peak[pid])
