"""`shomei init`: the token, the CA hierarchy, the TLS identity and the database, once."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path

from hsm import TokenNotFoundError
from hsm.softhsm import init_token, write_config
from pwa_server.audit import ensure_audit_key
from pwa_server.pki.hierarchy import (
    ensure_assertion_signer,
    ensure_hierarchy,
    ensure_ocsp_responder,
)
from pwa_server.pki.rollover import load_issuing_generations
from pwa_server.pki.tls_identity import TlsFiles, ensure_tls_identity
from pwa_server.runtime import ensure_secret_hash_key, open_token, publication_urls
from pwa_server.settings import Settings, write_settings_file
from pwa_server.store.database import create_database_engine, current_revision, migrate


def initialise(settings: Settings, now: dt.datetime) -> list[str]:
    """Create whatever is missing and return what was created (empty: nothing changed)."""
    created: list[str] = []
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Also when the directory existed before: it holds PINs, keys and the database.
    settings.data_dir.chmod(0o700)
    # Later commands (`enroll create` in a second terminal) read it, so that their links name
    # the port and host this server runs with.
    if write_settings_file(settings):
        created.append(f"settings file {settings.settings_file} (the environment overrides it)")
    softhsm_conf = settings.effective_softhsm_conf
    if softhsm_conf is not None:
        created += _ensure_softhsm_token(settings, softhsm_conf)

    if not settings.session_key_file.exists():
        _write_secret(settings.session_key_file, secrets.token_hex(32))
        created.append("session signing key")
    if not settings.webhook_key_file.exists():
        _write_secret(settings.webhook_key_file, secrets.token_hex(32))
        created.append("webhook key")

    engine = create_database_engine(settings.effective_database_url)
    try:
        before = current_revision(engine)
        migrate(engine)
        after = current_revision(engine)
        if before != after:
            created.append(f"database schema {after}")
        token = open_token(settings)
        try:
            root, issuing, authorities = ensure_hierarchy(
                engine, token, organization=settings.ca_organization, now=now
            )
            created += authorities
            if ensure_ocsp_responder(
                engine,
                token,
                organization=settings.ca_organization,
                issuing=issuing,
                now=now,
            ):
                created.append("OCSP responder")
            # Issuing CAs retired by a key ceremony keep answering for their certificates
            # until those expire: their responders are renewed too.
            for generation in load_issuing_generations(engine, token, now=now):
                if not generation.active and ensure_ocsp_responder(
                    engine,
                    token,
                    organization=settings.ca_organization,
                    issuing=generation.issuing,
                    now=now,
                ):
                    created.append(f"OCSP responder for retired {generation.issuing.name}")
            if ensure_assertion_signer(
                engine,
                token,
                organization=settings.ca_organization,
                issuing=issuing,
                now=now,
            ):
                created.append("return assertion signer")
            if ensure_audit_key(engine, token, now=now):
                created.append("audit seal key")
            if ensure_secret_hash_key(token)[1]:
                created.append("HMAC key for one-time and download passwords")
            if ensure_tls_identity(
                engine,
                TlsFiles(settings.tls_dir),
                root=root,
                issuing=issuing,
                hostnames=settings.public_hostnames,
                now=now,
                urls=publication_urls(settings, issuing),
            ):
                created.append("TLS server certificate for " + ", ".join(settings.public_hostnames))
        finally:
            token.close()
    finally:
        engine.dispose()
    return created


def _ensure_softhsm_token(settings: Settings, conf: Path) -> list[str]:
    created = []
    if not conf.exists():
        write_config(conf, settings.hsm_dir / "tokens")
        created.append(f"SoftHSM configuration {conf}")
    pin_file = settings.effective_pin_file
    if settings.hsm_pin is None and not pin_file.exists():
        _write_secret(pin_file, secrets.token_urlsafe(18))
        _write_secret(settings.hsm_dir / "so.pin", secrets.token_urlsafe(18))
        created.append(f"development PINs in {settings.hsm_dir} (mode 0600)")
    try:
        open_token(settings).close()
    except TokenNotFoundError:
        so_pin_file = settings.hsm_dir / "so.pin"
        if not so_pin_file.exists():
            _write_secret(so_pin_file, secrets.token_urlsafe(18))
        init_token(
            conf,
            settings.token_label,
            so_pin_file.read_text(encoding="utf-8").strip(),
            settings.read_pin(),
        )
        created.append(f"SoftHSM token {settings.token_label!r}")
    return created


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
