"""The two WebAuthn ceremonies through py_webauthn, with our policy and our exception types.

Policy: user verification required everywhere, attestation "none" (we trust no vendor list,
the key only proves possession), a discoverable credential required so that officers sign in
without typing a name (sign-in lists no credentials, so a non-discoverable one could never
be used). py_webauthn's refusals become our errors with its precise message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.authentication.verify_authentication_response import VerifiedAuthentication
from webauthn.helpers import (
    parse_authentication_credential_json,
    parse_authenticator_data,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from pwa_server.officers import challenges
from pwa_server.officers.errors import (
    AssertionRefusedError,
    RegistrationRefusedError,
    SignCountError,
)
from pwa_server.officers.policy import CEREMONY_TIMEOUT

# py_webauthn lets a few malformed structures through as KeyError or TypeError (a COSE key
# without its fields, CBOR of the wrong shape); from untrusted input they are refusals too.
_MALFORMED = (WebAuthnException, ValueError, KeyError, TypeError)
_TIMEOUT_MS = int(CEREMONY_TIMEOUT.total_seconds() * 1000)


class Ceremony(NamedTuple):
    """Options for the browser (JSON text), and the challenge the web layer keeps in the
    session until the answer comes back."""

    options_json: str
    challenge: bytes


@dataclass(frozen=True)
class RelyingParty:
    """Who the keys are registered with: the RP id (a host name) and the console's origin."""

    rp_id: str
    rp_name: str
    origin: str


@dataclass(frozen=True)
class KnownKey:
    """A registered key as the options name it (to exclude or allow it)."""

    credential_id: bytes
    transports: tuple[str, ...]


@dataclass(frozen=True)
class NewKey:
    """A verified registration: what is stored of the new key."""

    credential_id: bytes
    public_key: bytes  # COSE
    sign_count: int
    transports: tuple[str, ...]
    aaguid: str
    device_type: str  # single_device | multi_device
    backed_up: bool


@dataclass(frozen=True)
class Assertion:
    """An assertion parsed from the browser's JSON, not yet verified."""

    credential: AuthenticationCredential
    credential_id: bytes
    user_handle: bytes | None
    sign_count: int


def registration_options(
    party: RelyingParty,
    *,
    user_handle: bytes,
    user_name: str,
    exclude: Sequence[KnownKey],
    now: dt.datetime,
) -> Ceremony:
    """Options for navigator.credentials.create(): UV required, no attestation."""
    challenge = challenges.new_challenge(now)
    options = generate_registration_options(
        rp_id=party.rp_id,
        rp_name=party.rp_name,
        user_id=user_handle,
        user_name=user_name,
        user_display_name=user_name,
        challenge=challenge,
        timeout=_TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        # The same authenticator twice gains nothing and would replace a discoverable one.
        exclude_credentials=[_descriptor(key) for key in exclude],
    )
    return Ceremony(options_to_json(options), challenge)


def verify_registration(
    party: RelyingParty, *, credential_json: str, expected_challenge: bytes, now: dt.datetime
) -> NewKey:
    """The new key from a registration response, or RegistrationRefusedError."""
    challenges.issued_at(expected_challenge, now=now)
    try:
        credential = parse_registration_credential_json(credential_json)
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=expected_challenge,
            expected_rp_id=party.rp_id,
            expected_origin=party.origin,
            require_user_verification=True,
        )
    except _MALFORMED as error:
        raise RegistrationRefusedError(_message(error)) from None
    return NewKey(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=tuple(transport.value for transport in credential.response.transports or ()),
        aaguid=verified.aaguid,
        device_type=verified.credential_device_type.value,
        backed_up=verified.credential_backed_up,
    )


def authentication_options(
    party: RelyingParty, *, allow: Sequence[KnownKey], now: dt.datetime
) -> Ceremony:
    """Options for navigator.credentials.get(): UV required; `allow` empty for sign-in, so
    that the authenticator offers its discoverable credentials for this RP."""
    challenge = challenges.new_challenge(now)
    options = generate_authentication_options(
        rp_id=party.rp_id,
        challenge=challenge,
        timeout=_TIMEOUT_MS,
        allow_credentials=[_descriptor(key) for key in allow],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return Ceremony(options_to_json(options), challenge)


def parse_assertion(credential_json: str) -> Assertion:
    """The browser's assertion JSON as typed values; AssertionRefusedError when malformed."""
    try:
        credential = parse_authentication_credential_json(credential_json)
        data = parse_authenticator_data(credential.response.authenticator_data)
    except _MALFORMED as error:
        raise AssertionRefusedError(_message(error)) from None
    return Assertion(
        credential, credential.raw_id, credential.response.user_handle, data.sign_count
    )


def verify_assertion(
    party: RelyingParty,
    assertion: Assertion,
    *,
    expected_challenge: bytes,
    public_key: bytes,
    stored_sign_count: int,
) -> VerifiedAuthentication:
    """Verify signature, challenge, origin, RP id, UP, UV and the counter.

    A counter that did not increase (when either is non-zero) raises SignCountError, but only
    when the assertion passes every other check: an assertion that is wrong anyway says
    nothing about a cloned key.
    """

    def verify(current_sign_count: int) -> VerifiedAuthentication:
        return verify_authentication_response(
            credential=assertion.credential,
            expected_challenge=expected_challenge,
            expected_rp_id=party.rp_id,
            expected_origin=party.origin,
            credential_public_key=public_key,
            credential_current_sign_count=current_sign_count,
            require_user_verification=True,
        )

    try:
        return verify(stored_sign_count)
    except _MALFORMED as error:
        if not counter_increased(stored_sign_count, assertion.sign_count):
            try:
                verify(0)  # every other check again, with the counter left out
            except _MALFORMED:
                pass
            else:
                raise SignCountError(stored_sign_count, assertion.sign_count) from None
        raise AssertionRefusedError(_message(error)) from None


def counter_increased(stored: int, received: int) -> bool:
    """WebAuthn §6.1.1: a counter must grow, unless the authenticator keeps none (both 0)."""
    return received > stored or received == stored == 0


def origin_of(url: str) -> str:
    """The web origin of `url` as a browser writes it: scheme, host, and a non-default port."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    default_port = {"https": 443, "http": 80}.get(parts.scheme)
    port = "" if parts.port in (None, default_port) else f":{parts.port}"
    return f"{parts.scheme}://{host}{port}"


def _descriptor(key: KnownKey) -> PublicKeyCredentialDescriptor:
    known = {transport.value for transport in AuthenticatorTransport}
    return PublicKeyCredentialDescriptor(
        id=key.credential_id,
        transports=[AuthenticatorTransport(name) for name in key.transports if name in known],
    )


def _message(error: Exception) -> str:
    return str(error) or type(error).__name__
