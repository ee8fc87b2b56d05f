"""Real components for the tests: a SoftHSM token, an initialised CA, databases, a server.

One SoftHSM token directory serves the whole test session in this process: SoftHSM reads its
configuration once per library initialisation, so every in-process token lives there.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import create_engine, text

from hsm.softhsm import init_token
from pwa_server.initialise import initialise
from pwa_server.runtime import Services, open_services
from pwa_server.settings import Settings

POSTGRES_URL = os.environ.get("SHOMEI_TEST_POSTGRES_URL")


def run_tool(
    *arguments: str | Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run a command line tool and capture its output (the exit code is the caller's to check)."""
    return subprocess.run(
        [str(argument) for argument in arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )


def openssl(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    """Run openssl, a checker nobody here wrote."""
    return run_tool("openssl", *arguments)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of the session's Shomei instance (data in a temporary directory)."""
    return Settings(
        data_dir=tmp_path_factory.mktemp("var"),
        https_port=free_port(),
        check_port=free_port(),
        http_port=free_port(),
        workers=2,
    )


@pytest.fixture(scope="session")
def initialised(settings: Settings) -> Settings:
    """The session's data directory after `shomei init`: token, CAs, TLS identity, database."""
    initialise(settings, dt.datetime.now(dt.UTC))
    return settings


@pytest.fixture(scope="session")
def services(initialised: Settings) -> Iterator[Services]:
    """The token, database and CAs of the session's instance, opened in this process."""
    opened = open_services(initialised)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def ca_files(services: Services, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """root.pem and issuing.pem, for openssl."""
    directory = tmp_path_factory.mktemp("ca")
    files = {}
    for role, authority in (("root", services.root), ("issuing", services.issuing)):
        path = directory / f"{role}.pem"
        path.write_bytes(authority.certificate.public_bytes(Encoding.PEM))
        files[role] = path
    return files


@pytest.fixture(scope="session")
def softhsm_env(initialised: Settings) -> dict[str, str]:
    """Environment for SoftHSM tools (pkcs11-tool, softhsm2-util) to see the session's tokens."""
    return {**os.environ, "SOFTHSM2_CONF": str(initialised.effective_softhsm_conf)}


@dataclass(frozen=True)
class ExtraToken:
    """A token created beside the session's own one."""

    label: str
    pin: str
    so_pin: str


@pytest.fixture
def extra_token(initialised: Settings) -> ExtraToken:
    """A fresh token in the session's token directory, that no one has logged in to yet."""
    conf = initialised.effective_softhsm_conf
    assert conf is not None
    token = ExtraToken(f"t-{secrets.token_hex(4)}", secrets.token_hex(8), secrets.token_hex(8))
    init_token(conf, token.label, token.so_pin, token.pin)
    return token


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: SQLite in a file, and PostgreSQL in a fresh schema.

    PostgreSQL runs when SHOMEI_TEST_POSTGRES_URL is set (CI sets it, so that a missing
    server fails there instead of skipping).
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shomei.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("SHOMEI_TEST_POSTGRES_URL is not set")
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


class ShomeiServer:
    """`shomei serve` in a child process, as a user would start it."""

    def __init__(
        self, settings: Settings, log: Path, environment: dict[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.log = log
        self.environment = environment or {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"https://localhost:{self.settings.https_port}"

    @property
    def check_url(self) -> str:
        return f"https://localhost:{self.settings.check_port}"

    @property
    def ca_bundle(self) -> str:
        return str(self.settings.tls_dir / "client-ca.pem")

    def client(
        self, certificate: tuple[Path, Path] | None = None, **options: object
    ) -> httpx.Client:
        """An HTTPS client that trusts our CA, presenting (cert file, key file) if given."""
        context = ssl.create_default_context(cafile=self.ca_bundle)
        if certificate is not None:
            context.load_cert_chain(*certificate)
        return httpx.Client(verify=context, timeout=30, **options)  # type: ignore[arg-type]

    def start(self) -> None:
        env = {
            **os.environ,
            "SHOMEI_DATA_DIR": str(self.settings.data_dir),
            "SHOMEI_HTTPS_PORT": str(self.settings.https_port),
            "SHOMEI_CHECK_PORT": str(self.settings.check_port),
            "SHOMEI_HTTP_PORT": str(self.settings.http_port),
            "SHOMEI_WORKERS": str(self.settings.workers),
            **self.environment,
        }
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pwa_server.cli", "serve"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_until_healthy()
        except BaseException:
            self.stop()
            raise

    def _wait_until_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"shomei serve exited: {self.log.read_text()}")
            try:
                with self.client() as client:
                    if client.get(f"{self.base_url}/healthz").status_code == 200:
                        client.get(f"{self.check_url}/healthz")
                        return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError(f"shomei serve did not become healthy: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@pytest.fixture(scope="session")
def server(
    initialised: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ShomeiServer]:
    """The session's instance, served over real TLS sockets on loopback."""
    running = ShomeiServer(initialised, tmp_path_factory.mktemp("log") / "serve.log")
    running.start()
    yield running
    running.stop()
