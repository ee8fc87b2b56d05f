"""Finding tokens, and errors that are the hsm package's own, with messages a person can act on.

Several of these tests make the library look for a token it does not know, which re-initialises
it for the whole process; the session's token must stay usable through that.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from hsm import (
    KeyAlgorithm,
    KeyNotFoundError,
    KeyRef,
    ModuleLoadError,
    PinError,
    Token,
    TokenECPrivateKey,
    TokenNotFoundError,
    TokenUnavailableError,
)
from pwa_server.runtime import Services
from pwa_server.settings import Settings
from tests.conftest import ExtraToken

ECDSA = ec.ECDSA(hashes.SHA256())


def open_token(settings: Settings, label: str, pin: str) -> Token:
    return Token.open(settings.pkcs11_module, label, pin, settings.effective_softhsm_conf)


def test_wrong_pin_raises_pin_error_that_says_the_pin_was_refused(
    settings: Settings, extra_token: ExtraToken
) -> None:
    wrong_pin = secrets.token_hex(8)
    with pytest.raises(PinError, match="refused the PIN") as raised:
        open_token(settings, extra_token.label, wrong_pin)
    assert extra_token.label in str(raised.value)
    assert wrong_pin not in str(raised.value)


def test_wrong_pin_is_refused_even_when_the_process_is_already_logged_in(
    settings: Settings, services: Services
) -> None:
    # PKCS#11 does not check the PIN again for a token this process is logged in to.
    with pytest.raises(PinError, match="refused the PIN"):
        open_token(settings, services.token.label, secrets.token_hex(8))


def test_a_closed_token_object_refuses_work_with_token_unavailable(
    settings: Settings, extra_token: ExtraToken
) -> None:
    token = open_token(settings, extra_token.label, extra_token.pin)
    token.close()
    with pytest.raises(TokenUnavailableError, match="closed"):
        token.key_objects()


def test_unknown_token_label_raises_token_not_found_naming_the_label(settings: Settings) -> None:
    label = f"absent-{secrets.token_hex(4)}"
    with pytest.raises(TokenNotFoundError, match=label):
        open_token(settings, label, "123456")


def test_missing_module_raises_module_load_error_naming_the_path(tmp_path: Path) -> None:
    module = tmp_path / "libno-such-pkcs11.so"
    with pytest.raises(ModuleLoadError, match=str(module)):
        Token.open(module, "shomei", "123456")


def test_file_that_is_not_a_pkcs11_module_raises_module_load_error_naming_the_path(
    tmp_path: Path,
) -> None:
    module = tmp_path / "libnot-a-module.so"
    module.write_bytes(b"not a shared library")
    with pytest.raises(ModuleLoadError, match=f"cannot load PKCS#11 module {module}"):
        Token.open(module, "shomei", "123456")


def test_second_softhsm_configuration_in_one_process_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    other_conf = tmp_path / "softhsm2.conf"
    with pytest.raises(ModuleLoadError, match="already loaded with configuration"):
        Token.open(settings.pkcs11_module, settings.token_label, settings.read_pin(), other_conf)


def test_token_created_after_the_library_was_loaded_is_found(
    settings: Settings, extra_token: ExtraToken
) -> None:
    token = open_token(settings, extra_token.label, extra_token.pin)
    try:
        assert token.info().label == extra_token.label
        assert token.key_objects() == []
    finally:
        token.close()


def test_private_key_for_a_key_not_on_the_token_raises_key_not_found(services: Services) -> None:
    ref = KeyRef(services.token.label, "no-such-key", secrets.token_bytes(16), KeyAlgorithm.EC_P256)
    with pytest.raises(KeyNotFoundError, match="no-such-key"):
        services.token.private_key(ref)


def test_private_key_for_a_key_of_another_token_is_refused(services: Services) -> None:
    ref = services.issuing.key_ref
    elsewhere = KeyRef("another-token", ref.label, ref.key_id, ref.algorithm)
    with pytest.raises(KeyNotFoundError, match="another-token"):
        services.token.private_key(elsewhere)


def test_signing_with_a_destroyed_key_raises_key_not_found(services: Services) -> None:
    ref = services.token.generate_key(KeyAlgorithm.EC_P256, f"test-gone-{secrets.token_hex(4)}")
    key = services.token.private_key(ref)
    assert isinstance(key, TokenECPrivateKey)
    key.sign(b"while it exists", ECDSA)
    services.token.destroy_key(ref)

    with pytest.raises(KeyNotFoundError, match=ref.label):
        key.sign(b"after destruction", ECDSA)
