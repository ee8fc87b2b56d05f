"""An open, logged-in PKCS#11 token that many threads may share.

python-pkcs11 initialises the library with C_Initialize(NULL), which tells SoftHSM that only
one thread uses it; two threads calling in at once crash the process. Every call into the
library therefore goes through one process-wide lock (the library itself is process-wide).
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pkcs11
import pkcs11.exceptions as p11
from asn1crypto.core import OctetString
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from hsm.errors import (
    HsmError,
    KeyNotFoundError,
    ModuleLoadError,
    PinError,
    TokenNotFoundError,
    TokenUnavailableError,
    translate,
)
from hsm.keys import TokenECPrivateKey, TokenPrivateKey, TokenRSAPrivateKey
from hsm.reference import KeyAlgorithm, KeyRef

_T = TypeVar("_T")

_LIBRARY_LOCK = threading.RLock()
_SOFTHSM_CONF: dict[Path, Path] = {}

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


def load_module(module_path: Path, softhsm_conf: Path | None = None) -> Any:
    """Load a PKCS#11 module; SoftHSM's configuration file must be named before the first load."""
    if softhsm_conf is not None:
        # SoftHSM reads its configuration once per process: a second one would be ignored.
        loaded = _SOFTHSM_CONF.get(module_path, softhsm_conf)
        if loaded != softhsm_conf:
            raise ModuleLoadError(
                f"{module_path} is already loaded with configuration {loaded};"
                f" this process cannot also use {softhsm_conf}"
            )
        os.environ["SOFTHSM2_CONF"] = str(softhsm_conf)
    if not module_path.is_file():
        raise ModuleLoadError(f"PKCS#11 module not found: {module_path}")
    with _LIBRARY_LOCK:
        try:
            library = pkcs11.lib(str(module_path))
        except (RuntimeError, OSError, p11.PKCS11Error) as error:
            raise ModuleLoadError(f"cannot load PKCS#11 module {module_path}: {error}") from None
        if softhsm_conf is not None:
            _SOFTHSM_CONF[module_path] = softhsm_conf
        return library


class _Login:
    """The one logged-in session of this process on one token, shared by its Token objects.

    Login is per token and process, and python-pkcs11 logs out when a session opened with a
    PIN is closed; one shared session, closed by its last user, keeps every Token object on
    the token logged in. All calls are serialised by the library lock anyway, so separate
    sessions would buy nothing.
    """

    def __init__(self, library: Any, module_path: Path, label: str, pin: str) -> None:
        self.library = library
        self.module_path = module_path
        self.label = label
        self.pin = pin
        self.users = 0
        self.session: Any = None
        self.token: Any = None
        # The library life the session belongs to: re-initialising the library ends every
        # session, and SoftHSM then reuses handles, so a stale one could reach another token.
        self.epoch = -1
        # Bumped on every new session, so cached object handles are looked up again.
        self.generation = 0

    def current(self) -> Any:
        """The live session, opened (again) when it is missing or from an earlier library life."""
        if self.session is None or self.epoch != _library_epoch[self.module_path]:
            self.open()
        return self.session

    def open(self) -> None:
        token = self._find_token()
        try:
            session = token.open(rw=True, user_pin=self.pin)
        except p11.UserAlreadyLoggedIn:
            # Logged in by a session of this process that we no longer hold (lost, or from
            # an earlier library life); the PIN was checked then.
            session = token.open(rw=True)
        except p11.PKCS11Error as error:
            raise translate(error, f"logging in to token {self.label!r}") from None
        self.session, self.token = session, token
        self.epoch = _library_epoch[self.module_path]
        self.generation += 1

    def _find_token(self) -> Any:
        doing = f"finding token {self.label!r}"
        try:
            return self.library.get_token(token_label=self.label)
        except p11.NoSuchToken:
            pass
        except p11.PKCS11Error as error:
            raise translate(error, doing) from None
        # A token created by another process after this one loaded the library is invisible
        # until the library is initialised again, which ends every session of the process.
        try:
            self.library.reinitialize()
            _library_epoch[self.module_path] += 1
            return self.library.get_token(token_label=self.label)
        except p11.NoSuchToken:
            raise TokenNotFoundError(
                f"no token labelled {self.label!r} in {self.module_path}"
            ) from None
        except p11.PKCS11Error as error:
            raise translate(error, doing) from None

    def forget(self) -> None:
        """Drop a session the token no longer knows, without closing someone else's handle."""
        self.session = None

    def close(self) -> None:
        if self.session is not None and self.epoch == _library_epoch[self.module_path]:
            # Closing a session the token already dropped is not an error.
            with contextlib.suppress(p11.PKCS11Error):
                self.session.close()
        self.session = None


_library_epoch: dict[Path, int] = defaultdict(int)
_logins: dict[tuple[Path, str], _Login] = {}


def _join_login(library: Any, module_path: Path, label: str, pin: str) -> _Login:
    login = _logins.get((module_path, label))
    if login is None:
        login = _Login(library, module_path, label, pin)
        login.open()
        _logins[(module_path, label)] = login
    elif not hmac.compare_digest(login.pin.encode(), pin.encode()):
        # The token would not check the PIN again for a process already logged in.
        raise PinError(f"logging in to token {label!r}: the token refused the PIN (wrong PIN)")
    else:
        login.current()
    login.users += 1
    return login


class Token:
    """A logged-in token with a given label, shared by all threads of the process."""

    def __init__(self, module_path: Path, label: str, pin: str, library: Any) -> None:
        self.module_path = module_path
        self.label = label
        self._handles: dict[KeyRef, tuple[int, Any]] = {}
        with _LIBRARY_LOCK:
            self._login: _Login | None = _join_login(library, module_path, label, pin)

    @classmethod
    def open(
        cls, module_path: Path, label: str, pin: str, softhsm_conf: Path | None = None
    ) -> Token:
        """Load the module, find the token by label and log in with the user PIN."""
        return cls(module_path, label, pin, load_module(module_path, softhsm_conf))

    def _call(self, doing: str, operation: Callable[[Any], _T], *, searches: bool = False) -> _T:
        """Run `operation(session)` under the library lock, reopening a lost session once.

        python-pkcs11 0.10 leaves a failed object search marked active, and its finaliser
        then raises on a dead session; operations that search first make a cheap call that
        fails cleanly if the session is gone.
        """
        with _LIBRARY_LOCK:
            login = self._login
            if login is None:
                raise TokenUnavailableError(f"{doing}: the token {self.label!r} was closed")
            try:
                session = login.current()
                if searches:
                    session.generate_random(64)
                return operation(session)
            except (p11.SessionHandleInvalid, p11.SessionClosed, p11.UserNotLoggedIn):
                login.forget()
            except p11.PKCS11Error as error:
                raise translate(error, doing) from None
            try:
                return operation(login.current())
            except p11.PKCS11Error as error:
                raise translate(error, doing) from None

    def close(self) -> None:
        """Leave the token; the last Token object of the process on it logs out."""
        with _LIBRARY_LOCK:
            login, self._login = self._login, None
            self._handles.clear()
            if login is None:
                return
            login.users -= 1
            if login.users == 0:
                login.close()
                del _logins[(login.module_path, login.label)]

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
