"""`shomei serve` in a child process, as an operator starts it: what the end-to-end tests
(tests/conftest.py's ShomeiServer) and the benchmarks (bench/common.py's Instance) share.

Outside tests/ so that bench/ imports it without the test suite or pytest's fixtures (an
import-linter contract keeps bench/ off tests/), and so that mypy checks it strictly.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from pwa_server.settings import Settings

# A cold start opens the token and the database in every worker, on a small shared machine.
STARTUP_SECONDS = 60.0
# Per-client limits that one client never reaches.
UNLIMITED = 100_000
# Workers finish the requests they are serving before they exit.
STOP_SECONDS = 30.0
# The checkout's `shomei`, as this interpreter imports it.
CHECKOUT_SHOMEI = (sys.executable, "-m", "pwa_server.cli")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def instance_settings(data_dir: Path, *, workers: int = 2) -> Settings:
    """Settings of an instance of its own in `data_dir`, on free loopback ports."""
    return Settings(
        data_dir=data_dir,
        https_port=free_port(),
        check_port=free_port(),
        http_port=free_port(),
        workers=workers,
    )


class ShomeiServer:
    """`shomei serve` for `settings` in a child process, its output appended to `log`;
    `environment` adds variables that `settings` does not carry over (the data directory,
    ports and worker count are passed on by themselves). `command` is the command line that
    runs Shomei (the checkout's by default, or an installed `shomei`), in `cwd` if given."""

    def __init__(
        self,
        settings: Settings,
        log: Path,
        environment: Mapping[str, str] | None = None,
        *,
        command: Sequence[str] = CHECKOUT_SHOMEI,
        cwd: Path | None = None,
    ) -> None:
        self.settings = settings
        self.log = log
        self.extra_environment = dict(environment or {})
        self.command = tuple(command)
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def environment(self) -> dict[str, str]:
        """The environment of the instance's processes (`shomei serve`, and any `shomei`
        command run on it): this process's, without the SHOMEI_* settings a developer's
        shell could leak in, plus the instance's own."""
        inherited = {
            key: value for key, value in os.environ.items() if not key.startswith("SHOMEI_")
        }
        return {
            **inherited,
            "SHOMEI_DATA_DIR": str(self.settings.data_dir),
            "SHOMEI_HTTPS_PORT": str(self.settings.https_port),
            "SHOMEI_CHECK_PORT": str(self.settings.check_port),
            "SHOMEI_HTTP_PORT": str(self.settings.http_port),
            "SHOMEI_WORKERS": str(self.settings.workers),
            # Every test and benchmark client is 127.0.0.1, one client to the per-client limits;
            # the tests of those limits pass their own through `environment`.
            "SHOMEI_SECRET_CHECKS_PER_MINUTE": str(UNLIMITED),
            "SHOMEI_OFFICER_SIGN_INS_PER_MINUTE": str(UNLIMITED),
            # The tests' webhook receivers listen on loopback.
            "SHOMEI_WEBHOOK_PRIVATE_ADDRESSES": "true",
            **self.extra_environment,
        }

    @property
    def base_url(self) -> str:
        """The HTTPS listener of the PWA, the console and the API."""
        return f"https://localhost:{self.settings.https_port}"

    @property
    def check_url(self) -> str:
        """The HTTPS listener of the installation check (it asks for a client certificate)."""
        return f"https://localhost:{self.settings.check_port}"

    @property
    def plain_url(self) -> str:
        """The plain-HTTP listener (/pki/* only): what OCSP and CRL clients use."""
        return f"http://127.0.0.1:{self.settings.http_port}"

    @property
    def ca_bundle(self) -> str:
        """Our CA certificates, which issued the instance's TLS certificate."""
        return str(self.settings.tls_dir / "client-ca.pem")

    def ssl_context(self, certificate: tuple[Path, Path] | None = None) -> ssl.SSLContext:
        """A client context that trusts our CA, presenting (cert file, key file) if given."""
        context = ssl.create_default_context(cafile=self.ca_bundle)
        if certificate is not None:
            context.load_cert_chain(*certificate)
        return context

    def client(self, certificate: tuple[Path, Path] | None = None, **options: Any) -> httpx.Client:
        """An HTTPS client with `ssl_context(certificate)`; `options` go to httpx.Client."""
        options.setdefault("timeout", 30)
        return httpx.Client(verify=self.ssl_context(certificate), **options)

    def run_cli(self, *arguments: str) -> str:
        """The `shomei` command on this instance; its standard output (raises on failure)."""
        result = subprocess.run(
            [*self.command, *arguments],
            env=self.environment,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"shomei {' '.join(arguments)} failed: {result.stderr}")
        return result.stdout

    def start(self) -> None:
        """Start `shomei serve`; return once both HTTPS listeners answer /healthz, or stop it
        and raise with the log's text."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.command, "serve"],
                env=self.environment,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_until_healthy()
        except BaseException:
            self.stop()
            raise

    def _wait_until_healthy(self) -> None:
        process = self.process
        assert process is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        with self.client() as client:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise RuntimeError(f"shomei serve exited: {self._log_text()}")
                try:
                    if client.get(f"{self.base_url}/healthz").status_code == 200:
                        client.get(f"{self.check_url}/healthz")
                        return
                except httpx.TransportError:
                    pass  # not listening yet
                time.sleep(0.2)
        raise RuntimeError(f"shomei serve did not become healthy: {self._log_text()}")

    def _log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it; killed if it has not exited in time."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
