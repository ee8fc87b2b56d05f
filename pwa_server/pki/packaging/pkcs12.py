"""PKCS#12 files that today's phones, and the phones still in people's pockets, can open."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import PrivateFormat, pkcs12
from cryptography.hazmat.primitives.serialization.pkcs12 import PBES

MEDIA_TYPE = "application/x-pkcs12"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

# Iterations of the password-based KDF that encrypts the key and the certificates.
#
# The file's security is the download password (>= 60 bits of entropy) stretched by the
# KDF. An attacker who holds the file tests each guess against its cheapest check, the MAC,
# and cryptography 50 derives the MAC key with 2,048 iterations whatever kdf_rounds says
# (`openssl pkcs12 -info`: "MAC: sha1, Iteration 2048"). More rounds here would slow every
# download (the build holds the GIL; 50,000 rounds cost 55-155 ms) and every phone import,
# and leave the attacker's price where the MAC sets it. So: 2,048, also OpenSSL's default
# (PKCS12_DEFAULT_ITER), which phones import everywhere. The price: 2^59 guesses on average
# x ~2^11 SHA-1 blocks = 2^70 SHA-1 compressions, some 750 years of a 50 GH/s GPU, for a
# certificate that lives about two years and can be revoked. To raise it, lengthen the
# download password: one more character of a 32-symbol alphabet adds 5 bits, as much as
# 32 times the rounds would.
ROUNDS = 2048


def build_pkcs12(
    *,
    private_key: PrivateKey,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    password: str,
    friendly_name: str,
    phone_compatible: bool = True,
) -> bytes:
    """A password-protected PKCS#12 holding the key, its certificate and the CA chain.

    `phone_compatible` (the default) encrypts key and certificates with
    pbeWithSHA1And3-KeyTripleDES-CBC and MACs with HMAC-SHA1: iOS up to 17 and Android up to
    13 reject the modern format with a misleading "wrong password". With False the file
    uses PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) and an HMAC-SHA256 MAC, for everything
    else. `friendly_name` is the label phones and keystores show for the identity.

    Raises ValueError for an empty password or a key that does not match the certificate.
    """
    if not password:
        # An empty password would leave the private key readable by anyone who gets the file.
        raise ValueError("a PKCS#12 for download needs a non-empty password")
    if private_key.public_key() != certificate.public_key():
        raise ValueError("the private key does not belong to the certificate")
    mac_hash: hashes.HashAlgorithm
    if phone_compatible:
        # SHA-1 only as the MAC's HMAC hash, which old phones require; HMAC-SHA1 is not
        # weakened by SHA-1 collisions.
        algorithm, mac_hash = PBES.PBESv1SHA1And3KeyTripleDESCBC, hashes.SHA1()  # noqa: S303
    else:
        algorithm, mac_hash = PBES.PBESv2SHA256AndAES256CBC, hashes.SHA256()
    # An explicit builder, not BestAvailableEncryption: the format must not change when
    # cryptography changes its defaults.
    encryption = (
        PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(ROUNDS)
        .key_cert_algorithm(algorithm)
        .hmac_hash(mac_hash)
        .build(password.encode("utf-8"))
    )
    return pkcs12.serialize_key_and_certificates(
        friendly_name.encode("utf-8"), private_key, certificate, list(chain), encryption
    )
