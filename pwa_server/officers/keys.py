"""An officer's WebAuthn keys: listing them, adding another one (after a step-up by a key
registered before) and removing one (never the last)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Engine

from pwa_server.audit import AuditAction, JsonValue
from pwa_server.officers import assertions, ceremonies
from pwa_server.officers.ceremonies import Ceremony, KnownKey, RelyingParty
from pwa_server.officers.errors import KeyNotFoundError, LastKeyError, RegistrationRefusedError
from pwa_server.officers.models import OfficerKey, StepUp, encode_credential_id, validated_name
from pwa_server.officers.notices import record_account_event
from pwa_server.officers.roster import Roster
from pwa_server.store import officers as store
from pwa_server.store.officers import CredentialRow


class OfficerKeys:
    """The keys of the officers on `roster`, for relying party `party`."""

    def __init__(self, engine: Engine, party: RelyingParty, roster: Roster) -> None:
        self.engine = engine
        self.party = party
        self.roster = roster

    def of(self, officer_id: str) -> list[OfficerKey]:
        """The officer's keys, the earliest registered first."""
        with self.engine.connect() as connection:
            rows = store.credentials_of_officer(connection, officer_id)
        return [OfficerKey.from_row(row) for row in rows]

    def known(self, officer_id: str) -> list[KnownKey]:
        """The officer's keys as a ceremony names them (to allow or to exclude)."""
        return [KnownKey(key.credential_id, key.transports) for key in self.of(officer_id)]

    def add_options(self, *, officer_id: str, now: datetime) -> Ceremony:
        """Options to add a key; the officer's registered keys are excluded."""
        officer = self.roster.active(officer_id)
        return ceremonies.registration_options(
            self.party,
            user_handle=officer.id.encode("ascii"),
            user_name=officer.display_name,
            exclude=self.known(officer_id),
            now=now,
        )

    def add(
        self,
        *,
        officer_id: str,
        credential_json: str,
        expected_challenge: bytes,
        label: str,
        confirmation: StepUp,
        now: datetime,
        client: str | None = None,
    ) -> OfficerKey:
        """Verify and store another key of the officer, audited with it.

        `confirmation` must be a fresh assertion by a key the officer registered before:
        whoever holds a copy of the console session alone must not add a key of their own.
        """
        label = validated_name("label", label)
        assertions.verify_step_up(
            self.engine,
            self.party,
            officer_id=officer_id,
            credential_json=confirmation.credential_json,
            expected_challenge=confirmation.challenge,
            now=now,
        )
        key = ceremonies.verify_registration(
            self.party,
            credential_json=credential_json,
            expected_challenge=expected_challenge,
            now=now,
        )
        with self.engine.begin() as connection:
            insert_key(connection, officer_id, key, label, now)
            stored = store.credential_by_id(connection, key.credential_id)
            if stored is None:
                raise KeyNotFoundError("the new key was not stored")
            _audit_key(connection, AuditAction.OFFICER_CREDENTIAL_ADDED, stored, client, now)
        return OfficerKey.from_row(stored)

    def remove(
        self, *, officer_id: str, credential_id: bytes, now: datetime, client: str | None = None
    ) -> None:
        """Remove one of the officer's keys, audited with it; the last one stays
        (LastKeyError). The caller checked a fresh assertion (step-up) of the officer."""
        self.roster.active(officer_id)
        with self.engine.begin() as connection:
            stored = store.credential_by_id(connection, credential_id)
            if stored is None or stored.officer_id != officer_id:
                raise KeyNotFoundError(f"officer {officer_id} has no such key")
            if not store.delete_credential_unless_last(
                connection, officer_id=officer_id, credential_id=credential_id
            ):
                raise LastKeyError("an officer keeps at least one key: add another one first")
            _audit_key(connection, AuditAction.OFFICER_CREDENTIAL_REMOVED, stored, client, now)


def insert_key(
    connection: Connection, officer_id: str, key: ceremonies.NewKey, label: str, now: datetime
) -> None:
    """Store a verified new key of the officer; RegistrationRefusedError when it is
    registered already (to them or to another officer)."""
    if not store.insert_credential(
        connection,
        credential_id=key.credential_id,
        officer_id=officer_id,
        public_key=key.public_key,
        sign_count=key.sign_count,
        transports=key.transports,
        aaguid=key.aaguid,
        label=label,
        device_type=key.device_type,
        backed_up=key.backed_up,
        now=now,
    ):
        raise RegistrationRefusedError("this key is registered already")


def _audit_key(
    connection: Connection,
    action: AuditAction,
    key: CredentialRow,
    client: str | None,
    now: datetime,
) -> None:
    details: dict[str, JsonValue] = {
        "label": key.label,
        "key": encode_credential_id(key.credential_id),
    }
    if client is not None:
        details["client"] = client
    record_account_event(connection, key.officer_id, action, details, now)
