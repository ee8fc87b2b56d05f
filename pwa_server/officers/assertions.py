"""Checking a WebAuthn assertion against the officers' stored keys: sign-in (any officer's
key) and step-up (a key of one officer, answering a challenge made moments ago)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from pwa_server.officers import ceremonies, challenges
from pwa_server.officers.ceremonies import RelyingParty
from pwa_server.officers.errors import (
    AssertionRefusedError,
    AssertionReplayedError,
    ChallengeExpiredError,
    OfficerDisabledError,
    UnknownCredentialError,
    WrongOfficerError,
)
from pwa_server.officers.policy import step_up_fresh
from pwa_server.store import officers as store
from pwa_server.store.officers import OfficerRow
from pwa_server.vocabulary import AccountStatus


def verify_step_up(
    engine: Engine,
    party: RelyingParty,
    *,
    officer_id: str,
    credential_json: str,
    expected_challenge: bytes,
    now: datetime,
) -> OfficerRow:
    """A fresh assertion by one of `officer_id`'s keys: the challenge was made at most
    STEP_UP_MAX_AGE ago, shorter than a sign-in ceremony may take."""
    if not step_up_fresh(challenges.issued_at(expected_challenge, now=now), now=now):
        raise ChallengeExpiredError()
    return verify_assertion(
        engine,
        party,
        credential_json=credential_json,
        expected_challenge=expected_challenge,
        officer_id=officer_id,
        now=now,
    )


def verify_assertion(
    engine: Engine,
    party: RelyingParty,
    *,
    credential_json: str,
    expected_challenge: bytes,
    officer_id: str | None,
    now: datetime,
) -> OfficerRow:
    """The active officer whose registered key made this assertion (one of `officer_id`'s
    when given); the key's use is stored, so that the assertion is never accepted again."""
    issued = challenges.issued_at(expected_challenge, now=now)
    assertion = ceremonies.parse_assertion(credential_json)
    with engine.connect() as connection:
        credential = store.credential_by_id(connection, assertion.credential_id)
        owner = store.officer_by_id(connection, credential.officer_id) if credential else None
    if credential is None or owner is None:
        raise UnknownCredentialError()
    # WebAuthn §7.2 step 6: a user handle, when the authenticator gives one, names the
    # account the key was registered to.
    if assertion.user_handle is not None and assertion.user_handle != owner.id.encode():
        raise AssertionRefusedError("the user handle is not the key's officer")
    verified = ceremonies.verify_assertion(
        party,
        assertion,
        expected_challenge=expected_challenge,
        public_key=credential.public_key,
        stored_sign_count=credential.sign_count,
    )
    if officer_id is not None and owner.id != officer_id:
        raise WrongOfficerError()
    if owner.status != AccountStatus.ACTIVE:
        raise OfficerDisabledError(f"officer {owner.id} is disabled")
    with engine.begin() as connection:
        if not store.record_credential_use(
            connection,
            credential,
            sign_count=verified.new_sign_count,
            backed_up=verified.credential_backed_up,
            challenge_issued_at=issued,
            now=now,
        ):
            raise AssertionReplayedError()
        if officer_id is None:
            store.record_sign_in(connection, owner.id, now=now)
        latest = store.officer_by_id(connection, owner.id)
        if latest is None or latest.status != AccountStatus.ACTIVE:
            # Disabled meanwhile; nothing is stored.
            raise OfficerDisabledError(f"officer {owner.id} is disabled")
    return latest
