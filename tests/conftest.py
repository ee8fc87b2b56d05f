"""Real components for the tests: a SoftHSM token, an initialised CA, databases, a server.

One SoftHSM token directory serves the whole test session in this process: SoftHSM reads its
configuration once per library initialisation, so every in-process token lives there.

The server in a child process (ShomeiServer) is testbed/serving.py's, which bench/ shares.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Engine, create_engine, text

from hsm.softhsm import init_token
from pwa_server.initialise import initialise
from pwa_server.runtime import Services, open_services
from pwa_server.settings import Settings
from pwa_server.store.database import create_database_engine, migrate
from testbed.serving import ShomeiServer, free_port

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


def ca_public_key(
    certificate: x509.Certificate,
) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    """The CA certificate's key: the signature is checked against it, not the signing key."""
    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
    return public_key


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SHOMEI_* variable from the caller, and a fresh working directory."""
    for name in list(os.environ):
        if name.startswith("SHOMEI_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


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


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on `database_url`, migrated to the newest schema."""
    opened = create_database_engine(database_url)
    migrate(opened)
    yield opened
    opened.dispose()


@pytest.fixture(scope="session")
def server(
    initialised: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ShomeiServer]:
    """The session's instance, served over real TLS sockets on loopback."""
    running = ShomeiServer(initialised, tmp_path_factory.mktemp("log") / "serve.log")
    running.start()
    yield running
    running.stop()
