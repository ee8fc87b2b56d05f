"""Token-resident private keys that `cryptography` can sign with.

cryptography's builders (certificates, CRLs, OCSP responses, PKCS#7) accept a private key only
if it *is* one of its key classes, so these classes subclass them; every signature is made
inside the token and the private value never leaves it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from cryptography.hazmat.primitives import _serialization, hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric import utils as asym_utils
from cryptography.hazmat.primitives.asymmetric.padding import AsymmetricPadding
from pkcs11 import MGF, Mechanism
from pkcs11.util.ec import encode_ecdsa_signature

from hsm.errors import UnsupportedOperationError
from hsm.reference import KeyRef

if TYPE_CHECKING:
    from cryptography.utils import Buffer

    from hsm.token import Token

# DER prefixes of PKCS#1 v1.5 DigestInfo (RFC 8017, section 9.2, note 1). Written out because
# signing a precomputed digest with CKM_RSA_PKCS needs them and no library exposes them.
_DIGEST_INFO_PREFIX: dict[str, bytes] = {
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}

_PSS_HASH: dict[str, tuple[Mechanism, MGF]] = {
    "sha1": (Mechanism.SHA_1, MGF.SHA1),
    "sha256": (Mechanism.SHA256, MGF.SHA256),
    "sha384": (Mechanism.SHA384, MGF.SHA384),
    "sha512": (Mechanism.SHA512, MGF.SHA512),
}


def _digest(
    data: Buffer, algorithm: hashes.HashAlgorithm | asym_utils.Prehashed
) -> tuple[bytes, hashes.HashAlgorithm]:
    """Return (digest, hash algorithm), hashing here unless the caller already did."""
    if isinstance(algorithm, asym_utils.Prehashed):
        return bytes(data), algorithm._algorithm
    hasher = hashes.Hash(algorithm)
    hasher.update(data)
    return hasher.finalize(), algorithm


def _refuse(what: str) -> NoReturn:
    raise UnsupportedOperationError(f"{what}: the key is sensitive and never leaves the token")


class TokenECPrivateKey(ec.EllipticCurvePrivateKey):
    """An EC private key held in a PKCS#11 token (ECDSA signatures only)."""

    def __init__(self, token: Token, ref: KeyRef, public_key: ec.EllipticCurvePublicKey) -> None:
        self._token = token
        self.ref = ref
        self._public_key = public_key

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public_key

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public_key.curve

    @property
    def key_size(self) -> int:
        return self._public_key.key_size

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise UnsupportedOperationError("only ECDSA signatures are supported")
        # SoftHSM offers only raw CKM_ECDSA, so hashing happens here and the token signs the
        # digest; PKCS#11 returns r||s, X.509 wants the DER sequence.
        digest, _ = _digest(data, signature_algorithm.algorithm)
        raw = self._token.sign(self.ref, Mechanism.ECDSA, digest)
        return encode_ecdsa_signature(raw)

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise UnsupportedOperationError("key agreement is not offered by CA keys")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        _refuse("private_numbers")

    def private_bytes(
        self,
        encoding: _serialization.Encoding,
        format: _serialization.PrivateFormat,
        encryption_algorithm: _serialization.KeySerializationEncryption,
    ) -> bytes:
        _refuse("private_bytes")

    def __copy__(self) -> TokenECPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> TokenECPrivateKey:
        return self


class TokenRSAPrivateKey(rsa.RSAPrivateKey):
    """An RSA private key held in a PKCS#11 token (PKCS#1 v1.5 and PSS signatures)."""

    def __init__(self, token: Token, ref: KeyRef, public_key: rsa.RSAPublicKey) -> None:
        self._token = token
        self.ref = ref
        self._public_key = public_key

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public_key

    @property
    def key_size(self) -> int:
        return self._public_key.key_size

    def sign(
        self,
        data: bytes,
        padding: AsymmetricPadding,
        algorithm: asym_utils.Prehashed | hashes.HashAlgorithm | asym_utils.NoDigestInfo,
    ) -> bytes:
        if isinstance(algorithm, asym_utils.NoDigestInfo):
            if not isinstance(padding, rsa_padding.PKCS1v15):
                raise UnsupportedOperationError("NoDigestInfo needs PKCS#1 v1.5 padding")
            return self._token.sign(self.ref, Mechanism.RSA_PKCS, bytes(data))
        digest, hash_algorithm = _digest(data, algorithm)
        if isinstance(padding, rsa_padding.PKCS1v15):
            prefix = _DIGEST_INFO_PREFIX.get(hash_algorithm.name)
            if prefix is None:
                raise UnsupportedOperationError(f"hash {hash_algorithm.name} is not supported")
            return self._token.sign(self.ref, Mechanism.RSA_PKCS, prefix + digest)
        if isinstance(padding, rsa_padding.PSS):
            return self._sign_pss(digest, padding, hash_algorithm)
        raise UnsupportedOperationError(f"padding {padding.name} is not supported")

    def _sign_pss(
        self, digest: bytes, pss: rsa_padding.PSS, hash_algorithm: hashes.HashAlgorithm
    ) -> bytes:
        mechanisms = _PSS_HASH.get(hash_algorithm.name)
        if mechanisms is None:
            raise UnsupportedOperationError(f"hash {hash_algorithm.name} is not supported")
        salt = pss._salt_length
        if salt is rsa_padding.PSS.DIGEST_LENGTH:
            salt_length = hash_algorithm.digest_size
        elif salt is rsa_padding.PSS.MAX_LENGTH:
            salt_length = (self.key_size + 7) // 8 - hash_algorithm.digest_size - 2
        elif isinstance(salt, int):
            salt_length = salt
        else:
            raise UnsupportedOperationError("PSS salt length AUTO is for verification only")
        return self._token.sign(
            self.ref, Mechanism.RSA_PKCS_PSS, digest, (*mechanisms, salt_length)
        )

    def decrypt(self, ciphertext: bytes, padding: AsymmetricPadding) -> bytes:
        raise UnsupportedOperationError("CA keys sign only; decryption is not offered")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        _refuse("private_numbers")

    def private_bytes(
        self,
        encoding: _serialization.Encoding,
        format: _serialization.PrivateFormat,
        encryption_algorithm: _serialization.KeySerializationEncryption,
    ) -> bytes:
        _refuse("private_bytes")

    def __copy__(self) -> TokenRSAPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> TokenRSAPrivateKey:
        return self


TokenPrivateKey = TokenECPrivateKey | TokenRSAPrivateKey
