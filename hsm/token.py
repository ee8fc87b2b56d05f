"""An open, logged-in PKCS#11 token that many threads may share: making, listing and
destroying its keys, and signing with them inside the token. Loading the library and the
shared session live in library.py and session.py."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from asn1crypto.core import OctetString
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from hsm.errors import HsmError, KeyNotFoundError, TokenUnavailableError
from hsm.keys import TokenECPrivateKey, TokenPrivateKey, TokenRSAPrivateKey
from hsm.library import LIBRARY_LOCK, load_module
from hsm.reference import KeyAlgorithm, KeyRef
from hsm.session import Login, join_login, leave_login

_T = TypeVar("_T")

_CURVES: dict[KeyAlgorithm, tuple[str, ec.EllipticCurve]] = {
    KeyAlgorithm.EC_P256: ("secp256r1", ec.SECP256R1()),
    KeyAlgorithm.EC_P384: ("secp384r1", ec.SECP384R1()),
}
_CURVE_BY_PARAMS = {encode_named_curve_parameters(name): curve for name, curve in _CURVES.values()}

_PRIVATE_TEMPLATE = {
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.PRIVATE: True,
    Attribute.SIGN: True,
    Attribute.DECRYPT: False,
    Attribute.UNWRAP: False,
    Attribute.DERIVE: False,
}
_LISTED_CLASSES = (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY, ObjectClass.SECRET_KEY)
_CLASS_NAMES = {
    ObjectClass.PRIVATE_KEY: "private",
    ObjectClass.PUBLIC_KEY: "public",
    ObjectClass.SECRET_KEY: "secret",
}
_PUBLIC_TEMPLATE = {Attribute.VERIFY: True, Attribute.ENCRYPT: False, Attribute.WRAP: False}


@dataclass(frozen=True)
class TokenInfo:
    """What identifies the token and the module it was reached through."""

    module_path: str
    label: str
    serial: str
    manufacturer: str
    model: str


@dataclass(frozen=True)
class KeyObjectInfo:
    """The security-relevant attributes of one key object on the token."""

    object_class: str
    label: str
    key_id: str
    key_type: str
    size: int
    sensitive: bool | None
    extractable: bool | None


class Token:
    """A logged-in token with a given label, shared by all threads of the process."""

    def __init__(self, module_path: Path, label: str, pin: str, library: Any) -> None:
        self.module_path = module_path
        self.label = label
        self._handles: dict[KeyRef, tuple[int, Any]] = {}
        with LIBRARY_LOCK:
            self._login: Login | None = join_login(library, module_path, label, pin)

    @classmethod
    def open(
        cls, module_path: Path, label: str, pin: str, softhsm_conf: Path | None = None
    ) -> Token:
        """Load the module, find the token by label and log in with the user PIN."""
        return cls(module_path, label, pin, load_module(module_path, softhsm_conf))

    def _call(self, doing: str, operation: Callable[[Any], _T], *, searches: bool = False) -> _T:
        """Run `operation(session)` in the token's shared session (see `Login.run`)."""
        with LIBRARY_LOCK:
            if self._login is None:
                raise TokenUnavailableError(f"{doing}: the token {self.label!r} was closed")
            return self._login.run(doing, operation, searches=searches)

    def close(self) -> None:
        """Leave the token; the last Token object of the process on it logs out."""
        with LIBRARY_LOCK:
            login, self._login = self._login, None
            self._handles.clear()
            if login is not None:
                leave_login(login)

    def info(self) -> TokenInfo:
        """Module path and token identification."""
        token = self._call("reading token information", lambda _session: self._login_token())
        return TokenInfo(
            module_path=str(self.module_path),
            label=self.label,
            serial=_text(token.serial),
            manufacturer=_text(token.manufacturer_id),
            model=_text(token.model),
        )

    def _login_token(self) -> Any:
        if self._login is None:
            raise TokenUnavailableError(f"the token {self.label!r} was closed")
        return self._login.token

    def generate_key(self, algorithm: KeyAlgorithm, label: str) -> KeyRef:
        """Generate a key pair as token objects; the private half is sensitive and unextractable."""
        ref = KeyRef(self.label, label, secrets.token_bytes(16), algorithm)

        def generate(session: Any) -> None:
            templates = {
                "store": True,
                "label": label,
                "id": ref.key_id,
                "private_template": _PRIVATE_TEMPLATE,
                "public_template": _PUBLIC_TEMPLATE,
            }
            if algorithm.is_ec:
                params = session.create_domain_parameters(
                    KeyType.EC,
                    {Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVES[algorithm][0])},
                    local=True,
                )
                params.generate_keypair(**templates)
            else:
                session.generate_keypair(KeyType.RSA, 3072, **templates)

        self._call(f"generating key {label!r}", generate)
        return ref

    def private_key(self, ref: KeyRef) -> TokenPrivateKey:
        """A key object for `cryptography` builders, signing inside the token."""
        if ref.token_label != self.label:
            raise KeyNotFoundError(f"key {ref.label!r} is on token {ref.token_label!r}, not here")

        def read_public(session: Any) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
            public = session.get_key(
                object_class=ObjectClass.PUBLIC_KEY, label=ref.label, id=ref.key_id
            )
            if ref.algorithm.is_ec:
                point = _unwrap_octet_string(public[Attribute.EC_POINT])
                return ec.EllipticCurvePublicKey.from_encoded_point(
                    _CURVES[ref.algorithm][1], point
                )
            return rsa.RSAPublicNumbers(
                int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big"),
                int.from_bytes(public[Attribute.MODULUS], "big"),
            ).public_key()

        public_key = self._call(f"reading public key {ref.label!r}", read_public, searches=True)
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            return TokenECPrivateKey(self, ref, public_key)
        return TokenRSAPrivateKey(self, ref, public_key)

    def sign(
        self, ref: KeyRef, mechanism: Mechanism, data: bytes, mechanism_param: Any = None
    ) -> bytes:
        """Sign `data` with the private key `ref` inside the token."""

        def sign(session: Any) -> bytes:
            generation = self._generation()
            cached = self._handles.get(ref)
            if cached is None or cached[0] != generation:
                handle = session.get_key(
                    object_class=ObjectClass.PRIVATE_KEY, label=ref.label, id=ref.key_id
                )
                cached = (generation, handle)
                self._handles[ref] = cached
            signature: bytes = cached[1].sign(
                data, mechanism=mechanism, mechanism_param=mechanism_param
            )
            return signature

        cached = self._handles.get(ref)
        must_search = cached is None or cached[0] != self._generation()
        return self._call(f"signing with key {ref.label!r}", sign, searches=must_search)

    def _generation(self) -> int:
        return self._login.generation if self._login is not None else -1

    def key_objects(self) -> list[KeyObjectInfo]:
        """Every private, public and secret key object visible to the logged-in user."""

        def list_objects(session: Any) -> list[KeyObjectInfo]:
            found = []
            for object_class in _LISTED_CLASSES:
                for key in session.get_objects({Attribute.CLASS: object_class}):
                    found.append(_describe(key, object_class))
            return found

        return self._call("listing key objects", list_objects, searches=True)

    def destroy_key(self, ref: KeyRef) -> None:
        """Delete both halves of a key pair from the token."""

        def destroy(session: Any) -> None:
            for object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
                for key in session.get_objects(
                    {
                        Attribute.CLASS: object_class,
                        Attribute.LABEL: ref.label,
                        Attribute.ID: ref.key_id,
                    }
                ):
                    key.destroy()
            self._handles.pop(ref, None)

        self._call(f"destroying key {ref.label!r}", destroy, searches=True)


def _describe(key: Any, object_class: ObjectClass) -> KeyObjectInfo:
    key_type = key[Attribute.KEY_TYPE]
    private = object_class != ObjectClass.PUBLIC_KEY
    if object_class == ObjectClass.SECRET_KEY:
        size = key[Attribute.VALUE_LEN] * 8
    elif key_type == KeyType.EC:
        params = key[Attribute.EC_PARAMS]
        curve = _CURVE_BY_PARAMS.get(params)
        size = curve.key_size if curve else 0
    else:
        size = len(key[Attribute.MODULUS]) * 8
    return KeyObjectInfo(
        object_class=_CLASS_NAMES[object_class],
        label=key[Attribute.LABEL],
        key_id=bytes(key[Attribute.ID]).hex(),
        key_type=KeyType(key_type).name,
        size=size,
        sensitive=bool(key[Attribute.SENSITIVE]) if private else None,
        extractable=bool(key[Attribute.EXTRACTABLE]) if private else None,
    )


def _unwrap_octet_string(value: bytes) -> bytes:
    """CKA_EC_POINT holds the point DER-wrapped in an OCTET STRING (PKCS#11 2.40, 2.3.3)."""
    try:
        point: bytes = OctetString.load(value).native
    except ValueError as error:
        raise HsmError(f"unexpected CKA_EC_POINT encoding: {error}") from None
    return point


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip()
    return str(value).strip()
