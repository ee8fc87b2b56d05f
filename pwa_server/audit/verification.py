"""Checking the audit log: the chain, the head and the seals, from the database alone.

The checks run in this order and stop at the first problem:
1. the events, in id order: ids run 1, 2, 3, ... without a gap (a gap names the missing
   id); each hash recomputes from its row (a changed row is named); each prev_hash is the
   hash of the event before it (the first one's is GENESIS_HASH);
2. the head row names the last event and its hash (a deleted tail names its first id);
3. with a token given, every recorded seal key's public key is the token's;
4. every seal: its signature verifies with its key's recorded public key, the event it
   names still exists (a deleted tail, head moved back, names its first id) and still has
   the hash it signed (a chain rewritten from some event on).

`verify_since_last_seal`, for the console's page loads, runs the same checks from the newest
seal on.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)
from sqlalchemy import Connection, Engine

from hsm import HsmError, Token
from pwa_server.audit.chain import GENESIS_HASH, event_hash, seal_message
from pwa_server.audit.seals import key_ref
from pwa_server.store.audit import (
    AuditKeyRow,
    AuditSealRow,
    all_audit_keys,
    all_seals,
    events_after,
    latest_seal,
    read_head,
    snapshot,
)

# Events read per query: the walk holds one page, never the whole log.
_PAGE = 1000


@dataclass(frozen=True)
class Problem:
    """The first thing found wrong: the event it concerns (if any) and what it is."""

    event_id: int | None
    message: str


@dataclass(frozen=True)
class Verification:
    """The outcome of a verification, with counts for the report."""

    events: int  # events read (up to the first problem)
    last_event_id: int  # the last event's id (0 for an empty log)
    seals: int  # seals whose signature and event were checked
    sealed_up_to: int  # the highest event id a valid seal covers (0: none)
    problem: Problem | None

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return self.problem is None

    @property
    def unsealed(self) -> int:
        """Events after the last seal, that only the chain and the head protect so far."""
        return max(0, self.last_event_id - self.sealed_up_to)


class _Broken(Exception):
    def __init__(self, event_id: int | None, message: str) -> None:
        super().__init__(message)
        self.problem = Problem(event_id, message)


@dataclass
class _Walk:
    events: int = 0
    last_id: int = 0
    last_hash: str = GENESIS_HASH
    seals: int = 0
    sealed_up_to: int = 0


def verify(engine: Engine, *, token: Token | None = None) -> Verification:
    """Walk the whole log and its seals; report the first problem, or none.

    Needs no token; with one, also checks that the seal keys recorded in the database are
    the token's (a database writer could otherwise swap a public key and forge seals).
    Reads one consistent snapshot, so events appended meanwhile do not disturb it.
    """
    walk = _Walk()
    try:
        with snapshot(engine) as connection:
            seals = all_seals(connection)
            keys = all_audit_keys(connection)
            sealed_hashes = _walk_chain(connection, walk, {seal.event_id for seal in seals})
            _check_head(connection, walk)
        if token is not None:
            _check_keys_in_token(keys, token)
        for seal in seals:
            _check_seal(seal, keys, walk, sealed_hashes)
            walk.seals += 1
            walk.sealed_up_to = max(walk.sealed_up_to, seal.event_id)
    except _Broken as broken:
        return Verification(
            walk.events, walk.last_id, walk.seals, walk.sealed_up_to, broken.problem
        )
    return Verification(walk.events, walk.last_id, walk.seals, walk.sealed_up_to, None)


def _walk_chain(connection: Connection, walk: _Walk, sealed_ids: set[int]) -> dict[int, str]:
    """Check every event in id order; return the hashes of the events seals name."""
    sealed_hashes: dict[int, str] = {}
    while page := events_after(connection, walk.last_id, _PAGE):
        for event in page:
            expected = walk.last_id + 1
            if event.id != expected:
                where = f"after event {walk.last_id}" if walk.last_id else "at the start"
                raise _Broken(
                    expected,
                    f"event {expected} is missing: {where} the log goes on with event {event.id}",
                )
            if event_hash(event) != event.hash:
                raise _Broken(
                    event.id, f"event {event.id} was changed: its contents do not match its hash"
                )
            if event.prev_hash != walk.last_hash:
                if event.id == 1:
                    raise _Broken(1, "event 1 was changed: it does not start the chain")
                # Both rows match their own hashes: the earlier one was rewritten with a
                # new hash (or this one's link was, together with its hash).
                raise _Broken(
                    walk.last_id,
                    f"event {walk.last_id} was changed and its hash recomputed:"
                    f" event {event.id} was chained to a different hash",
                )
            walk.events += 1
            walk.last_id, walk.last_hash = event.id, event.hash
            if event.id in sealed_ids:
                sealed_hashes[event.id] = event.hash
    return sealed_hashes


def _check_head(connection: Connection, walk: _Walk) -> None:
    head = read_head(connection)
    if head is None:
        raise _Broken(None, "the audit head row is missing")
    if head.last_event_id > walk.last_id:
        missing = walk.last_id + 1
        raise _Broken(
            missing,
            f"event {missing} is missing: the log ends at event {walk.last_id},"
            f" the head names event {head.last_event_id} as the last",
        )
    if head.last_event_id < walk.last_id:
        extra = head.last_event_id + 1
        raise _Broken(
            extra,
            f"event {extra} was inserted behind the head's back: the head names"
            f" event {head.last_event_id} as the last, the log goes on to {walk.last_id}",
        )
    if head.last_hash != walk.last_hash:
        raise _Broken(
            walk.last_id,
            f"event {walk.last_id} was changed: its hash is not the one the head recorded",
        )


def _check_keys_in_token(keys: dict[int, AuditKeyRow], token: Token) -> None:
    for key in keys.values():
        try:
            public_key = token.private_key(key_ref(key)).public_key()
        except HsmError as error:
            raise _Broken(
                None, f"audit seal key {key.key_label!r} cannot be read from the token: {error}"
            ) from None
        der = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        if der != key.public_key_der:
            raise _Broken(
                None,
                f"the public key recorded for audit seal key {key.key_label!r} is not the"
                " token's: the audit keys were tampered with",
            )


def _check_seal(
    seal: AuditSealRow, keys: dict[int, AuditKeyRow], walk: _Walk, sealed_hashes: dict[int, str]
) -> None:
    key = keys.get(seal.audit_key_id)
    if key is None:
        raise _Broken(seal.event_id, f"seal {seal.id} names audit key {seal.audit_key_id}, unknown")
    public_key = load_der_public_key(key.public_key_der)
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise _Broken(seal.event_id, f"audit key {key.key_label!r} is not an EC key")
    message = seal_message(
        event_id=seal.event_id, event_hash=seal.event_hash, signed_at=seal.signed_at
    )
    try:
        public_key.verify(seal.signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise _Broken(
            seal.event_id,
            f"seal {seal.id} (up to event {seal.event_id}) has an invalid signature:"
            " it was forged or changed",
        ) from None
    if seal.event_id > walk.last_id:
        missing = walk.last_id + 1
        raise _Broken(
            missing,
            f"event {missing} is missing: seal {seal.id} signed the log up to event"
            f" {seal.event_id}, it now ends at event {walk.last_id}",
        )
    if sealed_hashes.get(seal.event_id) != seal.event_hash:
        raise _Broken(
            seal.event_id,
            f"event {seal.event_id} does not have the hash seal {seal.id} signed:"
            f" the chain up to it was rewritten",
        )


def verify_since_last_seal(engine: Engine) -> Verification:
    """What the console's audit page checks on every load: the newest seal (its signature,
    and that the event it names still has the hash it signed), then the events after it and
    the head, as `verify` does. The events before the seal are not read again: the seal
    vouches for them as they were when it was made, and `verify` (`shomei audit verify`)
    walks the whole log; so a page load costs the events of the last SEAL_INTERVAL.
    """
    walk = _Walk()
    try:
        with snapshot(engine) as connection:
            last = latest_seal(connection)
            keys = all_audit_keys(connection)
            sealed_hashes: dict[int, str] = {}
            if last is not None:
                sealed_hashes = _start_at_seal(connection, walk, last)
            _walk_chain(connection, walk, set())
            _check_head(connection, walk)
        if last is not None:
            _check_seal(last, keys, walk, sealed_hashes)
            walk.seals, walk.sealed_up_to = 1, last.event_id
    except _Broken as broken:
        return Verification(
            walk.events, walk.last_id, walk.seals, walk.sealed_up_to, broken.problem
        )
    return Verification(walk.events, walk.last_id, walk.seals, walk.sealed_up_to, None)


def _start_at_seal(connection: Connection, walk: _Walk, seal: AuditSealRow) -> dict[int, str]:
    """Read the event `seal` names and continue the walk from it; its hash, by its id."""
    found = events_after(connection, seal.event_id - 1, 1)
    if not found or found[0].id != seal.event_id:
        raise _Broken(
            seal.event_id,
            f"event {seal.event_id} is missing: seal {seal.id} signed the log up to it",
        )
    event = found[0]
    if event_hash(event) != event.hash:
        raise _Broken(event.id, f"event {event.id} was changed: its contents do not match its hash")
    walk.events += 1
    walk.last_id, walk.last_hash = event.id, event.hash
    return {event.id: event.hash}
