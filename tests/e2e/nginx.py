"""A real nginx for the tests, configured with the README's own server block, and what it
needs around it: a DNS server for its `resolver`, the site's application behind it, and curl
as the client."""

from __future__ import annotations

import json
import re
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.conftest import run_tool

README = Path(__file__).resolve().parents[2] / "README.md"
RELYING_SITE_SECTION = "## Accepting Shomei certificates on your site"
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
START_SECONDS = 10.0


def readme_server_block() -> str:
    """The one `nginx` code block of the README's section for relying sites."""
    text = README.read_text(encoding="utf-8")
    start = text.index(RELYING_SITE_SECTION)
    end = text.find("\n## ", start + len(RELYING_SITE_SECTION))
    section = text[start : end if end != -1 else len(text)]
    blocks = re.findall(r"^```nginx\n(.*?)^```", section, re.S | re.M)
    assert len(blocks) == 1, f"{len(blocks)} nginx blocks in {RELYING_SITE_SECTION!r}"
    block: str = blocks[0]
    return block


def fill(template: str, **values: str) -> str:
    """`template` with each `{{name}}` replaced; every placeholder needs a value, and no more."""
    names = set(PLACEHOLDER.findall(template))
    assert names == set(values), f"placeholders {sorted(names)}, values {sorted(values)}"
    return PLACEHOLDER.sub(lambda found: values[found.group(1)], template)


class Nginx:
    """nginx in the foreground as a child process, every file of it under one directory."""

    def __init__(self, directory: Path, http: str) -> None:
        self.directory = directory
        self.conf = directory / "nginx.conf"
        self.error_log = directory / "error.log"
        self.process: subprocess.Popen[bytes] | None = None
        temp_paths = "\n".join(
            f"    {kind}_temp_path {directory / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        self.conf.write_text(
            "worker_processes 1;\n"
            "events {}\n"
            "http {\n"
            f"{temp_paths}\n"
            f"    access_log {directory / 'access.log'};\n"
            f"{http}\n"
            "}\n",
            encoding="utf-8",
        )

    def __enter__(self) -> Nginx:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def log(self) -> str:
        return self.error_log.read_text(encoding="utf-8") if self.error_log.exists() else ""

    def start(self) -> None:
        """Start nginx and wait until its worker runs."""
        started = len(self._workers())
        directives = (
            f"daemon off; pid {self.directory / 'nginx.pid'}; error_log {self.error_log} info;"
        )
        with (self.directory / "stderr.log").open("ab") as stderr:
            self.process = subprocess.Popen(
                ["nginx", "-p", str(self.directory), "-c", str(self.conf), "-g", directives],
                stdout=stderr,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait(lambda: len(self._workers()) > started, "start")
        except BaseException:
            self.stop()
            raise

    def reload(self) -> None:
        """SIGHUP, as `nginx -s reload` sends it: wait until the old worker has gone."""
        assert self.process is not None
        old = self._workers()[-1]
        self.process.send_signal(signal.SIGHUP)
        self._wait(lambda: f"worker process {old} exited" in self.log(), "reload")

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def _workers(self) -> list[str]:
        return re.findall(r"start worker process (\d+)", self.log())

    def _wait(self, done: Callable[[], bool], what: str) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_SECONDS
        while not done():
            if self.process.poll() is not None:
                stderr = (self.directory / "stderr.log").read_text(encoding="utf-8")
                raise RuntimeError(f"nginx exited during {what}: {stderr}{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not {what} in {START_SECONDS} s: {self.log()}")
            time.sleep(0.05)


class StubResolver:
    """A DNS server on loopback UDP that knows a few A records and nothing else (for nginx's
    `resolver`, which asks DNS and never reads /etc/hosts)."""

    def __init__(self, addresses: dict[str, str]) -> None:
        self.addresses = {name.lower(): address for name, address in addresses.items()}
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._socket.getsockname()
        return f"{host}:{port}"

    def __enter__(self) -> StubResolver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        self._thread.join()
        self._socket.close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                query, client = self._socket.recvfrom(512)
            except TimeoutError:
                continue
            self._socket.sendto(self._answer(query), client)

    def _answer(self, query: bytes) -> bytes:
        """RFC 1035: the question echoed; one A record if the name is known, else NXDOMAIN.
        Other types (AAAA) of a known name get an empty answer."""
        (identifier,) = struct.unpack("!H", query[:2])
        labels: list[str] = []
        position = 12
        while query[position]:
            length = query[position]
            labels.append(query[position + 1 : position + 1 + length].decode("ascii"))
            position += 1 + length
        question = query[12 : position + 5]
        (record_type,) = struct.unpack("!H", query[position + 1 : position + 3])
        address = self.addresses.get(".".join(labels).lower())
        if address is None:
            return struct.pack("!6H", identifier, 0x8183, 1, 0, 0, 0) + question
        if record_type != 1:
            return struct.pack("!6H", identifier, 0x8180, 1, 0, 0, 0) + question
        record = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(address)
        return struct.pack("!6H", identifier, 0x8180, 1, 1, 0, 0) + question + record


class _EchoHeaders(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps([[name.lower(), value] for name, value in self.headers.items()])
        encoded = body.encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)

    def log_message(self, format: str, *arguments: object) -> None:
        """Quiet: the tests read what the application answers, not its log."""


class Application:
    """The site's application behind nginx, on loopback plain HTTP: it answers every GET with
    the request headers it received, as a JSON list of [name, value] (repeats kept)."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHeaders)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Application:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()


@dataclass(frozen=True)
class Reply:
    """What curl received: the HTTP status and the body."""

    status: int
    body: str

    def headers_seen(self) -> dict[str, list[str]]:
        """The request headers the application received (its answer), by lower-case name."""
        seen: dict[str, list[str]] = {}
        for name, value in json.loads(self.body):
            seen.setdefault(name, []).append(value)
        return seen


def curl(
    url: str,
    *,
    cacert: Path,
    identity: tuple[Path, Path] | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request by curl (a new TLS connection each time), presenting (cert, key) if given."""
    arguments: list[str | Path] = ["curl", "--silent", "--show-error", "--cacert", cacert]
    if identity is not None:
        arguments += ["--cert", identity[0], "--key", identity[1]]
    for name, value in (headers or {}).items():
        arguments += ["--header", f"{name}: {value}"]
    result = run_tool(*arguments, "--write-out", "\n%{http_code}", url)
    assert result.returncode == 0, result.stderr
    body, _, status = result.stdout.rpartition("\n")
    return Reply(int(status), body)
