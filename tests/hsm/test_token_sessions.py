"""Tokens shared by threads, sessions that are lost, and several Token objects in one process."""

from __future__ import annotations

import secrets
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from hsm import KeyAlgorithm, Token, TokenECPrivateKey, TokenNotFoundError
from hsm.softhsm import init_token
from pwa_server.runtime import Services
from pwa_server.settings import Settings
from tests.conftest import ExtraToken
from tests.conftest import run_tool as run

PROJECT = Path(__file__).resolve().parents[2]

THREADS = 8
SIGNATURES_PER_THREAD = 25
ECDSA = ec.ECDSA(hashes.SHA256())


def open_token(settings: Settings, label: str, pin: str) -> Token:
    return Token.open(settings.pkcs11_module, label, pin, settings.effective_softhsm_conf)


def drop_session(services: Services) -> None:
    """Make the token forget our session, as a restarted or disconnected HSM would."""
    login = services.token._login
    assert login is not None
    login.session.close()


def test_eight_threads_signing_with_the_same_token_key_all_get_valid_signatures(
    services: Services,
) -> None:
    key = services.issuing.private_key
    assert isinstance(key, TokenECPrivateKey)
    start = threading.Barrier(THREADS)

    def sign_many(thread: int) -> list[tuple[bytes, bytes]]:
        start.wait()
        signed = []
        for number in range(SIGNATURES_PER_THREAD):
            message = f"thread {thread} message {number}".encode()
            signed.append((message, key.sign(message, ECDSA)))
        return signed

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = [signed for batch in pool.map(sign_many, range(THREADS)) for signed in batch]

    assert len(results) == THREADS * SIGNATURES_PER_THREAD
    public_key = key.public_key()
    for message, signature in results:
        public_key.verify(signature, message, ECDSA)


# Four Token objects on one token (one shared login), each used by two threads. Run in
# a process of its own, so that a crash inside SoftHSM fails this test instead of ending the run.
SIGN_FROM_SEVERAL_SESSIONS = """
import sys, threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hsm import KeyAlgorithm, KeyRef, Token

module, conf, token_label, pin, label, key_id, algorithm = sys.argv[1:]
ref = KeyRef(token_label, label, bytes.fromhex(key_id), KeyAlgorithm(algorithm))
tokens = [Token.open(Path(module), token_label, pin, Path(conf)) for _ in range(4)]
ecdsa = ec.ECDSA(hashes.SHA256())
start = threading.Barrier(8)

def sign_many(thread):
    key = tokens[thread % 4].private_key(ref)
    start.wait()
    for number in range(25):
        message = f"{thread}-{number}".encode()
        key.public_key().verify(key.sign(message, ecdsa), message, ecdsa)
    return 25

with ThreadPoolExecutor(max_workers=8) as pool:
    print(sum(pool.map(sign_many, range(8))))
"""


def test_eight_threads_signing_through_four_token_objects_of_one_token_all_succeed(
    services: Services, initialised: Settings, softhsm_env: dict[str, str]
) -> None:
    ref = services.issuing.key_ref
    result = run(
        sys.executable,
        "-c",
        SIGN_FROM_SEVERAL_SESSIONS,
        initialised.pkcs11_module,
        str(initialised.effective_softhsm_conf),
        ref.token_label,
        initialised.read_pin(),
        ref.label,
        ref.key_id.hex(),
        ref.algorithm.value,
        env=softhsm_env,
        cwd=PROJECT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(THREADS * SIGNATURES_PER_THREAD)


def test_signing_reopens_a_session_the_token_lost(services: Services) -> None:
    key = services.issuing.private_key
    assert isinstance(key, TokenECPrivateKey)
    key.sign(b"before", ECDSA)  # the key handle is cached on the current session
    drop_session(services)

    signature = key.sign(b"after", ECDSA)

    key.public_key().verify(signature, b"after", ECDSA)


def test_listing_keys_reopens_a_session_the_token_lost(services: Services) -> None:
    drop_session(services)

    labels = {info.label for info in services.token.key_objects()}

    assert {services.root.key_ref.label, services.issuing.key_ref.label} <= labels


def test_ca_token_stays_usable_while_a_token_created_later_is_open(
    services: Services, settings: Settings
) -> None:
    key = services.issuing.private_key
    assert isinstance(key, TokenECPrivateKey)
    key.sign(b"warm-up", ECDSA)
    # Looking for a token the library does not know re-initialises it for the whole process;
    # the CA token's next signature then opens the first session of the new library life.
    with pytest.raises(TokenNotFoundError):
        open_token(settings, f"absent-{secrets.token_hex(4)}", "123456")
    key.sign(b"reopens the session", ECDSA)
    # Then a token is created (another process could do it) and this process opens it.
    conf = settings.effective_softhsm_conf
    assert conf is not None
    label, pin = f"t-{secrets.token_hex(4)}", secrets.token_hex(8)
    init_token(conf, label, secrets.token_hex(8), pin)
    other = open_token(settings, label, pin)
    try:
        labels = {info.label for info in services.token.key_objects()}
        assert {services.root.key_ref.label, services.issuing.key_ref.label} <= labels
        key.public_key().verify(key.sign(b"challenge", ECDSA), b"challenge", ECDSA)
    finally:
        other.close()


def test_closing_one_token_object_keeps_the_others_on_that_token_logged_in(
    settings: Settings, extra_token: ExtraToken
) -> None:
    first = open_token(settings, extra_token.label, extra_token.pin)
    second = open_token(settings, extra_token.label, extra_token.pin)
    try:
        ref = second.generate_key(KeyAlgorithm.EC_P256, "shared-login")

        first.close()

        assert "private" in {info.object_class for info in second.key_objects()}
        key = second.private_key(ref)
        assert isinstance(key, TokenECPrivateKey)
        key.public_key().verify(key.sign(b"challenge", ECDSA), b"challenge", ECDSA)
    finally:
        second.close()
