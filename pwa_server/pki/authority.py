"""A CA ready to sign: its certificate and its private key object in the token."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from sqlalchemy import Engine

from hsm import (
    KeyAlgorithm,
    KeyRef,
    Token,
    TokenECPrivateKey,
    TokenPrivateKey,
    TokenRSAPrivateKey,
)
from pwa_server.errors import ErrorKind, ShomeiError
from pwa_server.store.authorities import AuthorityRow, active_authority
from pwa_server.vocabulary import AuthorityRole


class AuthorityError(ShomeiError):
    """The CA is missing, misconfigured or cannot sign."""

    kind = ErrorKind.UNAVAILABLE


@dataclass(frozen=True)
class Authority:
    """A CA of ours, loaded for signing."""

    id: int
    name: str
    role: AuthorityRole
    certificate: x509.Certificate
    private_key: TokenPrivateKey

    @property
    def key_ref(self) -> KeyRef:
        return self.private_key.ref

    def probe(self) -> None:
        """Sign a random challenge in the token and verify it with the CA certificate.

        Proves that the token answers, the key is there and it matches the certificate.
        """
        challenge = secrets.token_bytes(32)
        key = self.private_key
        public_key = self.certificate.public_key()
        try:
            if isinstance(key, TokenECPrivateKey) and isinstance(
                public_key, ec.EllipticCurvePublicKey
            ):
                ecdsa = ec.ECDSA(hashes.SHA256())
                public_key.verify(key.sign(challenge, ecdsa), challenge, ecdsa)
            elif isinstance(key, TokenRSAPrivateKey) and isinstance(public_key, rsa.RSAPublicKey):
                pkcs1 = padding.PKCS1v15()
                signature = key.sign(challenge, pkcs1, hashes.SHA256())
                public_key.verify(signature, challenge, pkcs1, hashes.SHA256())
            else:
                raise AuthorityError(f"CA {self.name}: key and certificate types differ")
        except InvalidSignature:
            raise AuthorityError(
                f"CA {self.name}: the token key does not match the CA certificate"
            ) from None


def fingerprint(certificate: x509.Certificate) -> str:
    """Lower-case hex SHA-256 fingerprint of the certificate's DER."""
    return certificate.fingerprint(hashes.SHA256()).hex()


def key_ref_of(row: AuthorityRow) -> KeyRef:
    return KeyRef(
        token_label=row.key_token_label,
        label=row.key_label,
        key_id=bytes.fromhex(row.key_id),
        algorithm=KeyAlgorithm(row.key_algorithm),
    )


def load_authority(engine: Engine, token: Token, role: AuthorityRole) -> Authority:
    """The active CA or signer with `role`, its key found on `token`."""
    with engine.connect() as connection:
        row = active_authority(connection, role)
    if row is None:
        raise AuthorityError(f"no active {role} CA in the database: run 'shomei init'")
    certificate = x509.load_der_x509_certificate(row.certificate_der)
    private_key = token.private_key(key_ref_of(row))
    if private_key.public_key() != certificate.public_key():
        raise AuthorityError(
            f"{role} CA {row.name}: the key {row.key_label!r} on token {token.label!r}"
            " does not belong to its certificate"
        )
    return Authority(row.id, row.name, row.role, certificate, private_key)
