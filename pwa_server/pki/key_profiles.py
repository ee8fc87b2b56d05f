"""The end-user key each key profile names: made here when the server makes the key (a PKCS#12
download), checked here for every certificate request, a device's own key included."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from pwa_server.pki.profiles import PublicKey
from pwa_server.vocabulary import KeyProfile


@dataclass(frozen=True)
class KeySpec:
    """An EC P-256 key, or with `rsa_bits` an RSA key of that size."""

    rsa_bits: int | None = None

    def __str__(self) -> str:
        return "EC P-256" if self.rsa_bits is None else f"RSA-{self.rsa_bits}"

    def new_private_key(self) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
        """A fresh key pair of this kind, in memory."""
        if self.rsa_bits is not None:
            return rsa.generate_private_key(public_exponent=65537, key_size=self.rsa_bits)
        return ec.generate_private_key(ec.SECP256R1())

    def fitting(self, public_key: CertificatePublicKeyTypes) -> PublicKey | None:
        """`public_key` if it is a key of this kind, else None."""
        if isinstance(public_key, rsa.RSAPublicKey):
            return public_key if public_key.key_size == self.rsa_bits else None
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            p256 = self.rsa_bits is None and isinstance(public_key.curve, ec.SECP256R1)
            return public_key if p256 else None
        return None


# The key of each key profile (EC P-256 unless a site needs RSA), found by the name a
# certificate request gives.
KEY_SPECS: Mapping[str, KeySpec] = {
    KeyProfile.DEFAULT: KeySpec(),
    KeyProfile.RSA_2048: KeySpec(2048),
    KeyProfile.RSA_3072: KeySpec(3072),
}


def key_name(public_key: CertificatePublicKeyTypes) -> str:
    """What kind of key `public_key` is, for a refusal's message."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA-{public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"EC {public_key.curve.name}"
    return type(public_key).__name__.removeprefix("_").removesuffix("PublicKey")
