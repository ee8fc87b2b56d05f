"""A Shomei instance of its own for the journey tests: a fresh data directory, a real SMTP
server (aiosmtpd) that the outbox sender delivers to, and invitations made with the CLI.

The session's `server` fixture cannot serve here: its settings send mail to .eml files.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from pwa_server.settings import Settings
from pwa_server.store.database import create_database_engine
from testbed.serving import ShomeiServer, free_port
from tests.e2e.journey.flow import Invitation, Mailbox

SENDER = "Shomei <no-reply@shomei.test>"
# Enough invitations for every test in this folder, made in one batch: each CLI process costs
# about 1.5 s of CPU for the interpreter and imports, so one process each would cost ~20 s.
PREFETCHED_INVITATIONS = 16


class JourneyServer(ShomeiServer):
    """`shomei serve`, and the `shomei` command line, on an instance of the tests' own."""

    def shomei(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """The `shomei` command line on this instance's data directory."""
        return subprocess.run(
            [sys.executable, "-m", "pwa_server.cli", *arguments],
            env=self.environment,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def shomei_python(self, code: str, *arguments: str) -> subprocess.CompletedProcess[str]:
        """Python code run in a process of its own with this instance's settings."""
        return subprocess.run(
            [sys.executable, "-c", code, *arguments],
            env=self.environment,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def invite(self, user_id: str, email: str) -> Invitation:
        """`shomei enroll create --user-id U --email E --json`."""
        result = self.shomei("enroll", "create", "--user-id", user_id, "--email", email, "--json")
        assert result.returncode == 0, result.stderr
        return Invitation.from_cli(result.stdout, email)


@pytest.fixture(scope="package")
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server on loopback that keeps every message it accepts."""
    handler = Mailbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


@pytest.fixture(scope="package")
def journey_server(
    mailbox: Mailbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JourneyServer]:
    """A fresh `shomei init` data directory, served with SMTP delivery to `mailbox`."""
    base = tmp_path_factory.mktemp("journey")
    settings = Settings(
        data_dir=base / "var",
        https_port=free_port(),
        check_port=free_port(),
        http_port=free_port(),
        workers=2,
    )
    server = JourneyServer(
        settings,
        base / "serve.log",
        {
            "SHOMEI_SMTP_HOST": "127.0.0.1",
            "SHOMEI_SMTP_PORT": str(mailbox.port),
            "SHOMEI_SMTP_SECURITY": "none",
            "SHOMEI_MAIL_FROM": SENDER,
        },
    )
    initialised = server.shomei("init")
    assert initialised.returncode == 0, initialised.stderr
    server.start()
    yield server
    server.stop()


# `shomei enroll create ... --json`, several times in one process: the console script's own
# entry point with the same arguments, paying the interpreter start and imports (~2 s) once.
_CREATE_MANY = """
import json, sys
from pwa_server.cli import main
for user_id, email in json.loads(sys.argv[1]):
    if main(["enroll", "create", "--user-id", user_id, "--email", email, "--json"]) != 0:
        sys.exit(1)
"""


class InvitationPool:
    """Invitations made ahead with the CLI, each handed to one test."""

    def __init__(self, server: JourneyServer) -> None:
        self.server = server
        self._made = 0
        self._ready: list[Invitation] = []

    def _new_identity(self) -> tuple[str, str]:
        self._made += 1
        return f"site-user-{self._made}", f"user{self._made}@example.jp"

    def prefetch(self, count: int) -> None:
        identities = [self._new_identity() for _ in range(count)]
        created = self.server.shomei_python(_CREATE_MANY, json.dumps(identities))
        assert created.returncode == 0, created.stderr
        decoder = json.JSONDecoder()
        position = 0
        for _, email in identities:
            printed, end = decoder.raw_decode(created.stdout, position)
            self._ready.append(Invitation.from_cli(json.dumps(printed), email))
            position = end + 1
        assert not created.stdout[position:].strip()

    def take(self) -> Invitation:
        """A fresh invitation nobody else uses (made by `shomei enroll create` if none is left)."""
        if not self._ready:
            return self.server.invite(*self._new_identity())
        return self._ready.pop(0)


@pytest.fixture(scope="package")
def invitations(journey_server: JourneyServer) -> InvitationPool:
    pool = InvitationPool(journey_server)
    pool.prefetch(PREFETCHED_INVITATIONS)
    return pool


@pytest.fixture
def invitation(invitations: InvitationPool) -> Invitation:
    """One fresh invitation for this test."""
    return invitations.take()


@pytest.fixture(scope="package")
def database(journey_server: JourneyServer) -> Iterator[Engine]:
    """The instance's SQLite database, opened beside the server (WAL, busy timeout)."""
    engine = create_database_engine(journey_server.settings.effective_database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="package")
def root_pem(journey_server: JourneyServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The root CA certificate as the server publishes it, for openssl -CAfile."""
    with journey_server.client() as client:
        response = client.get(f"{journey_server.base_url}/pki/root.pem")
    assert response.status_code == 200
    path = tmp_path_factory.mktemp("root") / "root.pem"
    path.write_bytes(response.content)
    return path
