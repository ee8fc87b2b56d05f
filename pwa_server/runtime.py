"""What a running Shomei process holds: the database engine, the token and the loaded CAs."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine

from hsm import HsmError, Token
from pwa_server.pki.authority import Authority, load_authority
from pwa_server.settings import Settings
from pwa_server.store.database import check, create_database_engine

# SoftHSM start-up sometimes fails with a general error when two processes initialise it at
# the same instant (DESIGN.md); a short retry gets past that.
_OPEN_ATTEMPTS = 3


@dataclass(frozen=True)
class Services:
    """The shared, thread-safe resources of one process."""

    settings: Settings
    engine: Engine
    token: Token
    root: Authority
    issuing: Authority

    def close(self) -> None:
        self.token.close()
        self.engine.dispose()


def open_token(settings: Settings) -> Token:
    """Log in to the configured token (the PIN is read here and kept only by the Token)."""
    return Token.open(
        settings.pkcs11_module,
        settings.token_label,
        settings.read_pin(),
        settings.effective_softhsm_conf,
    )


def open_services(settings: Settings, *, retry: bool = False) -> Services:
    """Connect to the database, log in to the token and load the active CAs.

    Raises the domain's own errors (DatabaseError, HsmError, AuthorityError,
    ConfigurationError) with a message that names what is wrong.
    """
    engine = create_database_engine(settings.effective_database_url)
    try:
        check(engine)
        token = _open_token_with_retry(settings, attempts=_OPEN_ATTEMPTS if retry else 1)
    except BaseException:
        engine.dispose()
        raise
    try:
        root = load_authority(engine, token, "root")
        issuing = load_authority(engine, token, "issuing")
    except BaseException:
        token.close()
        engine.dispose()
        raise
    return Services(settings, engine, token, root, issuing)


def _open_token_with_retry(settings: Settings, attempts: int) -> Token:
    for attempt in range(1, attempts):
        try:
            return open_token(settings)
        except HsmError:
            time.sleep(0.2 * attempt)
    return open_token(settings)
