"""The identity that signs configuration profiles: a certificate chain and a software key.

By default the listeners' TLS identity, whose certificate chains to a root the phone may
already trust (iOS shows a profile as "Verified" only then). Loading validates an RSA key,
which takes a noticeable time (~220 ms for 3,072 bits), so it happens once at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from pwa_server.pki.packaging.errors import PackagingError
from pwa_server.pki.packaging.pkcs12 import PrivateKey


@dataclass(frozen=True)
class SigningIdentity:
    """The certificate, intermediate chain and software key that sign profiles."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    private_key: PrivateKey


def load_signing_identity(certificate_chain_pem: Path, private_key_pem: Path) -> SigningIdentity:
    """Read the profile-signing identity once at start-up: leaf first, then its CA chain.

    Raises PackagingError naming the file when a file is missing or unreadable, holds no
    certificate or an encrypted or unsupported key, when the chain is out of order, or when
    the key does not belong to the first certificate.
    """
    chain_data = _read(certificate_chain_pem, "profile-signing certificate chain")
    key_data = _read(private_key_pem, "profile-signing private key")
    try:
        certificates = x509.load_pem_x509_certificates(chain_data)
    except ValueError as error:
        raise PackagingError(
            f"{certificate_chain_pem} holds no readable PEM certificate: {error}"
        ) from error
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except (TypeError, ValueError) as error:
        # TypeError: the key is encrypted; it must be readable without a passphrase.
        raise PackagingError(
            f"{private_key_pem} holds no unencrypted PEM private key: {error}"
        ) from error
    if not isinstance(key, PrivateKey):
        raise PackagingError(f"{private_key_pem}: only RSA and EC keys can sign profiles")
    leaf, *chain = certificates
    if key.public_key() != leaf.public_key():
        raise PackagingError(
            f"{private_key_pem} does not belong to the first certificate in "
            f"{certificate_chain_pem} ({leaf.subject.rfc4514_string()})"
        )
    for position, (child, parent) in enumerate(pairwise(certificates), 1):
        try:
            child.verify_directly_issued_by(parent)
        except (InvalidSignature, ValueError, TypeError) as error:
            raise PackagingError(
                f"{certificate_chain_pem}: certificate {position} was not issued by certificate "
                f"{position + 1}; list the signer first, then each issuer in order"
            ) from error
    return SigningIdentity(leaf, tuple(chain), key)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise PackagingError(f"cannot read the {what} {path}: {error.strerror}") from error
