"""The HMAC key for generated secrets: made in the token, sensitive, never extractable."""

from __future__ import annotations

import hmac
import secrets

import pytest

from hsm import HsmError, KeyNotFoundError, TokenHmacKey, ensure_hmac_key
from pwa_server.runtime import HMAC_KEY_LABEL, Services


def test_shomei_init_made_a_sensitive_unextractable_hmac_key(services: Services) -> None:
    (info,) = [key for key in services.token.key_objects() if key.label == HMAC_KEY_LABEL]
    assert (info.object_class, info.key_type, info.size) == ("secret", "GENERIC_SECRET", 256)
    assert info.sensitive is True
    assert info.extractable is False


def test_the_key_is_found_again_and_gives_the_same_hmac(services: Services) -> None:
    again, created = ensure_hmac_key(services.token, HMAC_KEY_LABEL)
    assert created is False
    first = services.downloads.hashes.key.digest(b"12345678")
    assert len(first) == 32
    assert hmac.compare_digest(again.digest(b"12345678"), first)
    assert again.digest(b"12345679") != first


def test_a_missing_key_is_an_hsm_error(services: Services) -> None:
    with pytest.raises(KeyNotFoundError):
        TokenHmacKey(services.token, f"absent-{secrets.token_hex(4)}").digest(b"x")
    assert issubclass(KeyNotFoundError, HsmError)


def test_an_installation_without_the_key_gets_it_once(services: Services) -> None:
    label = f"test-hmac-{secrets.token_hex(4)}"
    made, created = ensure_hmac_key(services.token, label)
    found, created_again = ensure_hmac_key(services.token, label)
    assert (created, created_again) == (True, False)
    assert made.digest(b"x") == found.digest(b"x")
