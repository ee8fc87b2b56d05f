"""Seals: the audit head (last event id and hash) signed with a key that never leaves the token.

The hash chain shows a changed or missing event in the middle, and the head row a missing
tail; but someone who can write to the database could delete the tail and move the head, or
rewrite the chain from some event on. A seal made before that no longer matches, and making
a new one needs the token. The public key is kept in the database, so that verification
needs no token.

How often: the server seals every SEAL_INTERVAL from its background loop (sealing an
unchanged head does nothing, so a quiet log costs nothing); `shomei audit seal` seals at
once. The interval bounds what a database writer can remove unseen: at most the events of
the last interval.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Engine

from hsm import KeyAlgorithm, KeyRef, Token
from pwa_server.audit.actions import ActorKind, AuditAction
from pwa_server.audit.chain import seal_message
from pwa_server.audit.errors import AuditError
from pwa_server.audit.log import record
from pwa_server.store.audit import (
    AuditKeyRow,
    active_audit_key,
    insert_audit_key,
    insert_seal,
    latest_seal,
    read_head,
)

SEAL_INTERVAL = dt.timedelta(minutes=5)
AUDIT_KEY_LABEL_PREFIX = "shomei-audit-seal"
_SIGNATURE = ec.ECDSA(hashes.SHA256())


@dataclass(frozen=True)
class Seal:
    """A seal just made: the head it signed, when, and with which key."""

    id: int
    event_id: int
    event_hash: str
    signed_at: dt.datetime
    key_label: str


def ensure_audit_key(engine: Engine, token: Token, *, now: dt.datetime) -> bool:
    """The seal key: an EC P-256 key pair in the token, sensitive and never extractable, with
    its public key recorded in the database; made if there is none. True if made.

    Its making is itself the event `key.generated`, in the transaction that records the key.
    """
    with engine.connect() as connection:
        if active_audit_key(connection) is not None:
            return False
    label = f"{AUDIT_KEY_LABEL_PREFIX}-{now:%Y%m%d}-{secrets.token_hex(3)}"
    ref = token.generate_key(KeyAlgorithm.EC_P256, label)
    try:
        public_key_der = (
            token.private_key(ref)
            .public_key()
            .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        )
        with engine.begin() as connection:
            insert_audit_key(
                connection,
                key_token_label=ref.token_label,
                key_label=ref.label,
                key_id=ref.key_id.hex(),
                key_algorithm=ref.algorithm.value,
                public_key_der=public_key_der,
                created_at=now,
            )
            record(
                connection,
                actor_kind=ActorKind.SYSTEM,
                actor="shomei init",
                action=AuditAction.KEY_GENERATED,
                subject_kind="token_key",
                subject=ref.label,
                details={"purpose": "audit seal", "algorithm": ref.algorithm.value},
                now=now,
            )
    except BaseException:
        # A key no row names could never be used or retired: remove it.
        token.destroy_key(ref)
        raise
    return True


def key_ref(key: AuditKeyRow) -> KeyRef:
    """Where a recorded seal key lives in the token."""
    return KeyRef(
        key.key_token_label,
        key.key_label,
        bytes.fromhex(key.key_id),
        KeyAlgorithm(key.key_algorithm),
    )


def seal(engine: Engine, token: Token, *, now: dt.datetime) -> Seal | None:
    """Sign the current head with the active seal key, unless the last seal already covers it.

    None when there is nothing new to seal (an empty log, or an unchanged head). Two
    instances sealing at once may both sign the same head: harmless, each seal is checked.
    """
    if now.tzinfo is None:
        raise ValueError("naive datetime given where UTC was expected")
    with engine.connect() as connection:
        key_row = active_audit_key(connection)
        head = read_head(connection)
        last = latest_seal(connection)
    if key_row is None:
        raise AuditError("there is no audit seal key: run `shomei init`")
    if head is None:
        raise AuditError("the audit head row is missing: the audit log was tampered with")
    if head.last_event_id == 0:
        return None
    if last is not None and (last.event_id, last.event_hash) == (
        head.last_event_id,
        head.last_hash,
    ):
        return None
    key = token.private_key(key_ref(key_row))
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise AuditError(f"the audit seal key {key_row.key_label!r} is not an EC key")
    public_key_der = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if public_key_der != key_row.public_key_der:
        # Seals made now would never verify: refuse rather than write them.
        raise AuditError(
            f"the public key recorded for audit seal key {key_row.key_label!r}"
            " is not the token's: the audit keys were tampered with"
        )
    signed_at = now.astimezone(dt.UTC)
    signature = key.sign(
        seal_message(event_id=head.last_event_id, event_hash=head.last_hash, signed_at=signed_at),
        _SIGNATURE,
    )
    with engine.begin() as connection:
        seal_id = insert_seal(
            connection,
            event_id=head.last_event_id,
            event_hash=head.last_hash,
            signed_at=signed_at,
            signature=signature,
            audit_key_id=key_row.id,
        )
    return Seal(seal_id, head.last_event_id, head.last_hash, signed_at, key_row.key_label)
