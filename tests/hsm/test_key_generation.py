"""Key pairs the token generates: where they live, what they are, how they are named."""

from __future__ import annotations

import secrets
from urllib.parse import unquote, unquote_to_bytes

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from hsm import KeyAlgorithm, KeyObjectInfo, KeyRef, TokenECPrivateKey, TokenRSAPrivateKey
from pwa_server.runtime import Services
from pwa_server.settings import Settings

EXPECTED_TYPE_AND_SIZE = {
    KeyAlgorithm.EC_P256: ("EC", 256),
    KeyAlgorithm.EC_P384: ("EC", 384),
    KeyAlgorithm.RSA_3072: ("RSA", 3072),
}

ALGORITHMS = pytest.mark.parametrize("algorithm", list(KeyAlgorithm), ids=str)


def objects_labelled(services: Services, label: str) -> list[KeyObjectInfo]:
    return [info for info in services.token.key_objects() if info.label == label]


def uri_attributes(uri: str) -> dict[str, str]:
    """The path attributes of an RFC 7512 URI (no query part in ours), still percent-encoded."""
    scheme, _, path = uri.partition(":")
    assert scheme == "pkcs11"
    assert "?" not in path
    return dict(attribute.split("=", 1) for attribute in path.split(";"))


@ALGORITHMS
def test_generated_private_keys_are_sensitive_and_not_extractable(
    services: Services, generated_keys: dict[KeyAlgorithm, KeyRef], algorithm: KeyAlgorithm
) -> None:
    ref = generated_keys[algorithm]
    [private] = [o for o in objects_labelled(services, ref.label) if o.object_class == "private"]
    assert private.sensitive is True
    assert private.extractable is False


@ALGORITHMS
def test_generated_key_pair_has_both_halves_of_the_requested_type_and_size(
    services: Services, generated_keys: dict[KeyAlgorithm, KeyRef], algorithm: KeyAlgorithm
) -> None:
    ref = generated_keys[algorithm]
    halves = objects_labelled(services, ref.label)
    assert sorted(info.object_class for info in halves) == ["private", "public"]
    for info in halves:
        assert (info.key_type, info.size) == EXPECTED_TYPE_AND_SIZE[algorithm]
        assert info.key_id == ref.key_id.hex()


@pytest.mark.parametrize(
    ("algorithm", "curve"),
    [(KeyAlgorithm.EC_P256, ec.SECP256R1), (KeyAlgorithm.EC_P384, ec.SECP384R1)],
    ids=str,
)
def test_ec_token_key_exposes_its_public_key_on_the_requested_curve(
    services: Services,
    generated_keys: dict[KeyAlgorithm, KeyRef],
    algorithm: KeyAlgorithm,
    curve: type[ec.EllipticCurve],
) -> None:
    key = services.token.private_key(generated_keys[algorithm])
    assert isinstance(key, TokenECPrivateKey)
    assert isinstance(key.curve, curve)
    assert isinstance(key.public_key().curve, curve)


def test_rsa_token_key_exposes_a_3072_bit_public_key_with_exponent_65537(
    services: Services, generated_keys: dict[KeyAlgorithm, KeyRef]
) -> None:
    key = services.token.private_key(generated_keys[KeyAlgorithm.RSA_3072])
    assert isinstance(key, TokenRSAPrivateKey)
    public_key = key.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert key.key_size == public_key.key_size == 3072
    assert public_key.public_numbers().e == 65537


def test_generated_keys_get_distinct_random_16_byte_ids(
    generated_keys: dict[KeyAlgorithm, KeyRef],
) -> None:
    ids = [ref.key_id for ref in generated_keys.values()]
    assert all(len(key_id) == 16 for key_id in ids)
    assert len(set(ids)) == len(ids)


@ALGORITHMS
def test_key_uri_names_token_object_id_and_private_type(
    services: Services, generated_keys: dict[KeyAlgorithm, KeyRef], algorithm: KeyAlgorithm
) -> None:
    ref = generated_keys[algorithm]
    attributes = uri_attributes(ref.uri)
    assert set(attributes) == {"token", "object", "id", "type"}
    assert unquote(attributes["token"]) == services.token.label
    assert unquote(attributes["object"]) == ref.label
    assert unquote_to_bytes(attributes["id"]) == ref.key_id
    assert attributes["type"] == "private"


def test_key_uri_never_carries_the_pin(
    initialised: Settings, generated_keys: dict[KeyAlgorithm, KeyRef]
) -> None:
    pin = initialised.read_pin()
    for ref in generated_keys.values():
        assert "pin-value" not in ref.uri
        assert "pin-source" not in ref.uri
        assert pin not in ref.uri


def test_key_uri_percent_encodes_every_reserved_character_of_labels() -> None:
    ref = KeyRef("my token;1", "CA key/2024=old?", b"\x00\xff", KeyAlgorithm.EC_P256)
    assert ref.uri == (
        "pkcs11:token=my%20token%3B1;object=CA%20key%2F2024%3Dold%3F;id=%00%ff;type=private"
    )


def test_destroyed_key_pair_is_gone_from_the_token(services: Services) -> None:
    ref = services.token.generate_key(KeyAlgorithm.EC_P256, f"test-destroy-{secrets.token_hex(4)}")
    assert len(objects_labelled(services, ref.label)) == 2

    services.token.destroy_key(ref)

    assert objects_labelled(services, ref.label) == []
