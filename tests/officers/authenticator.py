"""A software WebAuthn authenticator and browser in one, for the domain tests.

It answers the options our service makes with what a browser would post back: a registration
response with attestation "none" (authenticator data, a COSE ES256 key, CBOR) and assertions
signed with ES256 over authenticator data and the client data hash, so that py_webauthn's real
verification runs on them. Flags, the signature counter, origin and RP id are the test's to set.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

FLAG_UP = 0x01
FLAG_UV = 0x04
FLAG_BE = 0x08
FLAG_BS = 0x10
FLAG_AT = 0x40
AAGUID = bytes.fromhex("5f7a1ca4c0f84bc5a3c8d2e1b4f6a7c9")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Credential:
    """A key pair the authenticator holds for one RP and user handle (discoverable)."""

    credential_id: bytes
    private_key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int

    def cose_public_key(self) -> bytes:
        numbers = self.private_key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: -7,  # alg: ES256
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )


class SoftwareAuthenticator:
    """Makes credentials and assertions for `origin`; `counter_step` is added per use (0 for
    an authenticator that keeps no counter); `synced` sets the backup flags of a passkey."""

    def __init__(
        self,
        origin: str,
        *,
        counter_step: int = 1,
        transports: tuple[str, ...] = ("usb",),
        synced: bool = False,
    ) -> None:
        self.origin = origin
        self.backup_flags = FLAG_BE | FLAG_BS if synced else 0
        self.counter_step = counter_step
        self.transports = transports
        self.credentials: list[Credential] = []

    def create(
        self,
        options_json: str,
        *,
        user_verified: bool = True,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: bytes | None = None,
    ) -> str:
        """navigator.credentials.create(): the registration response JSON."""
        options = json.loads(options_json)
        rp = rp_id or options["rp"]["id"]
        excluded = {from_b64url(item["id"]) for item in options.get("excludeCredentials", [])}
        if any(credential.credential_id in excluded for credential in self.credentials):
            raise InvalidStateError("this authenticator holds an excluded credential")
        credential = Credential(
            credential_id=secrets.token_bytes(32),
            private_key=ec.generate_private_key(ec.SECP256R1()),
            rp_id=rp,
            user_handle=from_b64url(options["user"]["id"]),
            sign_count=0,
        )
        self.credentials.append(credential)
        flags = FLAG_UP | FLAG_AT | (FLAG_UV if user_verified else 0) | self.backup_flags
        attested = (
            AAGUID
            + struct.pack(">H", len(credential.credential_id))
            + credential.credential_id
            + credential.cose_public_key()
        )
        authenticator_data = _authenticator_data(rp, flags, credential.sign_count) + attested
        attestation_object = cbor2.dumps(
            {"fmt": "none", "attStmt": {}, "authData": authenticator_data}
        )
        client_data = _client_data(
            "webauthn.create",
            challenge or from_b64url(options["challenge"]),
            origin or self.origin,
        )
        return json.dumps(
            {
                "id": b64url(credential.credential_id),
                "rawId": b64url(credential.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "attestationObject": b64url(attestation_object),
                    "transports": list(self.transports),
                },
                "authenticatorAttachment": "cross-platform",
                "clientExtensionResults": {},
            }
        )

    def get(
        self,
        options_json: str,
        *,
        credential: Credential | None = None,
        sign_count: int | None = None,
        user_verified: bool = True,
        user_present: bool = True,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: bytes | None = None,
        user_handle: bytes | None = None,
    ) -> str:
        """navigator.credentials.get(): the assertion JSON, by `credential` (default: the one
        made last, as a person picks a discoverable credential), with the counter advanced by
        `counter_step` or set to `sign_count`."""
        options = json.loads(options_json)
        chosen = credential or self._allowed(options)
        if sign_count is None:
            chosen.sign_count += self.counter_step
        else:
            chosen.sign_count = sign_count
        flags = (
            (FLAG_UP if user_present else 0) | (FLAG_UV if user_verified else 0) | self.backup_flags
        )
        authenticator_data = _authenticator_data(rp_id or chosen.rp_id, flags, chosen.sign_count)
        client_data = _client_data(
            "webauthn.get", challenge or from_b64url(options["challenge"]), origin or self.origin
        )
        signature = chosen.private_key.sign(
            authenticator_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return json.dumps(
            {
                "id": b64url(chosen.credential_id),
                "rawId": b64url(chosen.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "authenticatorData": b64url(authenticator_data),
                    "signature": b64url(signature),
                    "userHandle": b64url(user_handle or chosen.user_handle),
                },
                "authenticatorAttachment": "cross-platform",
                "clientExtensionResults": {},
            }
        )

    def _allowed(self, options: dict[str, Any]) -> Credential:
        allowed = {from_b64url(item["id"]) for item in options.get("allowCredentials", [])}
        usable = [
            credential
            for credential in self.credentials
            if credential.rp_id == options["rpId"]
            and (not allowed or credential.credential_id in allowed)
        ]
        if not usable:
            raise NotAllowedError("no credential of this authenticator is allowed")
        return usable[-1]


class InvalidStateError(Exception):
    """What the browser raises when an excluded credential is on the authenticator."""


class NotAllowedError(Exception):
    """What the browser raises when no credential can answer."""


def _authenticator_data(rp_id: str, flags: int, sign_count: int) -> bytes:
    return hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", sign_count)


def _client_data(kind: str, challenge: bytes, origin: str) -> bytes:
    return json.dumps(
        {"type": kind, "challenge": b64url(challenge), "origin": origin, "crossOrigin": False},
        separators=(",", ":"),
    ).encode()
