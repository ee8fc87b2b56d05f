"""Seals: the head signed by a key in the session's token, checked from the database alone."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)
from sqlalchemy import Engine, select, update

from pwa_server.audit import (
    AuditError,
    ensure_audit_key,
    events,
    seal,
    verify,
    verify_since_last_seal,
)
from pwa_server.audit.chain import event_hash, seal_message
from pwa_server.audit.seals import AUDIT_KEY_LABEL_PREFIX, key_ref
from pwa_server.runtime import Services
from pwa_server.settings import Settings
from pwa_server.store.audit import AuditKeyRow, active_audit_key, events_after
from pwa_server.store.tables import audit_events, audit_head, audit_keys, audit_seals
from tests.audit.conftest import START, append, execute
from tests.conftest import run_tool
from tests.hsm.test_ca_keys_in_token import listed_objects, pkcs11_tool

LATER = START + dt.timedelta(minutes=5)
ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


@pytest.fixture
def audit_key(engine: Engine, services: Services) -> Iterator[AuditKeyRow]:
    """The database's seal key, made in the session's token (and removed from it afterwards)."""
    assert ensure_audit_key(engine, services.token, now=START)
    with engine.connect() as connection:
        key = active_audit_key(connection)
    assert key is not None
    yield key
    services.token.destroy_key(key_ref(key))


def stored_public_key(key: AuditKeyRow) -> ec.EllipticCurvePublicKey:
    public_key = load_der_public_key(key.public_key_der)
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    return public_key


def problem_of(engine: Engine) -> tuple[int | None, str]:
    result = verify(engine)
    assert result.problem is not None, "the tampering went unnoticed"
    return result.problem.event_id, result.problem.message


# --- the key ------------------------------------------------------------------------------


def test_the_seal_key_is_a_sensitive_unextractable_p256_key_in_the_token(
    services: Services, audit_key: AuditKeyRow
) -> None:
    halves = {
        info.object_class: info
        for info in services.token.key_objects()
        if info.label == audit_key.key_label
    }

    assert set(halves) == {"private", "public"}
    private = halves["private"]
    assert (private.key_type, private.size) == ("EC", 256)
    assert (private.sensitive, private.extractable) == (True, False)
    assert audit_key.key_label.startswith(AUDIT_KEY_LABEL_PREFIX)


def test_the_database_holds_the_tokens_public_key(
    services: Services, audit_key: AuditKeyRow
) -> None:
    token_public = services.token.private_key(key_ref(audit_key)).public_key()

    assert (
        token_public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        == audit_key.public_key_der
    )
    assert isinstance(stored_public_key(audit_key).curve, ec.SECP256R1)


def test_making_the_seal_key_is_the_first_audit_event(
    engine: Engine, audit_key: AuditKeyRow
) -> None:
    [event] = events(engine, limit=10)

    assert (event.id, event.action, event.actor_kind, event.subject) == (
        1,
        "key.generated",
        "system",
        audit_key.key_label,
    )


def test_a_second_ensure_makes_no_new_key(
    engine: Engine, services: Services, audit_key: AuditKeyRow
) -> None:
    labels_before = {info.label for info in services.token.key_objects()}

    assert ensure_audit_key(engine, services.token, now=LATER) is False

    assert {info.label for info in services.token.key_objects()} == labels_before
    with engine.connect() as connection:
        assert len(connection.execute(select(audit_keys)).all()) == 1


def test_the_key_made_by_shomei_init_is_listed_by_pkcs11_tool_as_never_extractable(
    initialised: Settings, services: Services, softhsm_env: dict[str, str]
) -> None:
    with services.engine.connect() as connection:
        key = active_audit_key(connection)
    assert key is not None

    listing = run_tool(*pkcs11_tool(initialised, "--list-objects"), env=softhsm_env)
    assert listing.returncode == 0, listing.stderr

    [private] = [
        entry
        for entry in listed_objects(listing.stdout)
        if entry["object"].startswith("Private Key Object") and entry["label"] == key.key_label
    ]
    access = {flag.strip() for flag in private["Access"].split(",")}
    assert {"sensitive", "always sensitive", "never extractable", "local"} <= access
    assert "extractable" not in access
    assert private["Usage"] == "sign"


# --- sealing ------------------------------------------------------------------------------


def test_a_seal_signs_the_head_over_the_documented_message(
    engine: Engine, services: Services, audit_key: AuditKeyRow
) -> None:
    append(engine, 4)
    [last] = events(engine, limit=1)

    made = seal(engine, services.token, now=LATER)

    assert made is not None
    assert (made.event_id, made.event_hash, made.key_label) == (5, last.hash, audit_key.key_label)
    with engine.connect() as connection:
        [stored] = connection.execute(select(audit_seals)).all()
    message = (
        '{"event_hash":"' + last.hash + '","event_id":5,'
        '"signed_at":"2026-04-01T09:05:00.123456Z","type":"shomei-audit-seal"}'
    ).encode("ascii")
    stored_public_key(audit_key).verify(bytes(stored.signature), message, ECDSA_SHA256)


def test_an_unchanged_head_is_not_sealed_again(
    engine: Engine, services: Services, audit_key: AuditKeyRow
) -> None:
    append(engine, 2)
    assert seal(engine, services.token, now=LATER) is not None

    assert seal(engine, services.token, now=LATER + dt.timedelta(minutes=5)) is None

    append(engine, 1, start=2)
    again = seal(engine, services.token, now=LATER + dt.timedelta(minutes=10))
    assert again is not None
    assert again.event_id == 4


def test_verification_reports_what_the_seals_cover(
    engine: Engine, services: Services, audit_key: AuditKeyRow
) -> None:
    append(engine, 5)
    seal(engine, services.token, now=LATER)
    append(engine, 3, start=5)

    result = verify(engine)

    assert result.ok, result.problem
    assert (result.events, result.seals, result.sealed_up_to, result.unsealed) == (9, 1, 6, 3)


def test_sealing_needs_a_seal_key(engine: Engine, services: Services) -> None:
    append(engine, 1)

    with pytest.raises(AuditError, match="shomei init"):
        seal(engine, services.token, now=LATER)


def test_sealing_refuses_a_recorded_public_key_that_is_not_the_tokens(
    engine: Engine, services: Services, audit_key: AuditKeyRow
) -> None:
    impostor = ec.generate_private_key(ec.SECP256R1()).public_key()
    with engine.begin() as connection:
        connection.execute(
            update(audit_keys).values(
                public_key_der=impostor.public_bytes(
                    Encoding.DER, PublicFormat.SubjectPublicKeyInfo
                )
            )
        )

    with pytest.raises(AuditError, match="not the token's"):
        seal(engine, services.token, now=LATER)


# --- tampering that only the seals reveal -------------------------------------------------


def test_a_forged_seal_signature_fails(
    engine: Engine, services: Services, audit_key: AuditKeyRow
) -> None:
    append(engine, 3)
    made = seal(engine, services.token, now=LATER)
    assert made is not None
    forger = ec.generate_private_key(ec.SECP256R1())
    forged = forger.sign(
        seal_message(event_id=made.event_id, event_hash=made.event_hash, signed_at=LATER),
        ECDSA_SHA256,
    )

    with engine.begin() as connection:
        connection.execute(update(audit_seals).values(signature=forged))
    event_id, message = problem_of(engine)

    assert event_id == made.event_id
    assert f"seal {made.id} (up to event {made.event_id}) has an invalid signature" in message


def test_a_seal_moved_to_another_time_fails(
    engine: Engine, services: Services, audit_key: AuditKeyRow
) -> None:
    append(engine, 3)
    seal(engine, services.token, now=LATER)

    with engine.begin() as connection:
        connection.execute(update(audit_seals).values(signed_at=START))
    _, message = problem_of(engine)

    assert "invalid signature" in message


def test_deleting_the_last_rows_and_moving_the_head_back_is_caught_by_the_seal(
    engine: Engine, services: Services, audit_key: AuditKeyRow
) -> None:
    append(engine, 9)
    seal(engine, services.token, now=LATER)
    [seventh] = events(engine, limit=1, before_id=8)

    execute(engine, "DELETE FROM audit_events WHERE id >= 8")
    execute(engine, "UPDATE audit_head SET last_event_id = 7, last_hash = :h", h=seventh.hash)
    event_id, message = problem_of(engine)

    assert event_id == 8
    assert "event 8 is missing: seal 1 signed the log up to event 10" in message


def test_a_chain_rewritten_from_one_event_on_is_caught_by_the_seal(
    engine: Engine, services: Services, audit_key: AuditKeyRow
) -> None:
    append(engine, 9)
    seal(engine, services.token, now=LATER)

    # Someone with write access changes event 4 and rehashes everything after it.
    with engine.begin() as connection:
        previous = None
        for event in events_after(connection, 0, 100):
            if event.id == 4:
                event = dataclasses.replace(event, actor="someone-else")
            if previous is not None:
                event = dataclasses.replace(event, prev_hash=previous)
            event = dataclasses.replace(event, hash=event_hash(event))
            connection.execute(
                update(audit_events)
                .where(audit_events.c.id == event.id)
                .values(actor=event.actor, prev_hash=event.prev_hash, hash=event.hash)
            )
            previous = event.hash
        connection.execute(update(audit_head).values(last_hash=previous))
    event_id, message = problem_of(engine)

    assert event_id == 10
    assert "event 10 does not have the hash seal 1 signed" in message


def test_a_swapped_public_key_with_forged_seals_is_caught_with_the_token(
    engine: Engine, services: Services, audit_key: AuditKeyRow
) -> None:
    append(engine, 3)
    made = seal(engine, services.token, now=LATER)
    assert made is not None
    forger = ec.generate_private_key(ec.SECP256R1())
    with engine.begin() as connection:
        connection.execute(
            update(audit_keys).values(
                public_key_der=forger.public_key().public_bytes(
                    Encoding.DER, PublicFormat.SubjectPublicKeyInfo
                )
            )
        )
        connection.execute(
            update(audit_seals).values(
                signature=forger.sign(
                    seal_message(
                        event_id=made.event_id, event_hash=made.event_hash, signed_at=LATER
                    ),
                    ECDSA_SHA256,
                )
            )
        )

    # The database alone is consistent again; the token knows better.
    assert verify(engine).ok
    result = verify(engine, token=services.token)

    assert result.problem is not None
    assert "is not the token's" in result.problem.message


def test_verification_with_the_token_passes_an_intact_log(
    engine: Engine, services: Services, audit_key: AuditKeyRow
) -> None:
    append(engine, 3)
    seal(engine, services.token, now=LATER)

    result = verify(engine, token=services.token)

    assert result.ok, result.problem
    assert result.sealed_up_to == 4


def test_the_seal_message_is_canonical_json() -> None:
    message = seal_message(event_id=7, event_hash="ab" * 32, signed_at=LATER)

    assert json.loads(message) == {
        "type": "shomei-audit-seal",
        "event_id": 7,
        "event_hash": "ab" * 32,
        "signed_at": "2026-04-01T09:05:00.123456Z",
    }
    assert (
        message == json.dumps(json.loads(message), sort_keys=True, separators=(",", ":")).encode()
    )


def test_a_seal_key_that_could_not_be_recorded_is_destroyed(
    engine: Engine, services: Services
) -> None:
    execute(engine, "DELETE FROM audit_head")
    labels_before = {info.label for info in services.token.key_objects()}

    with pytest.raises(AuditError, match="head"):
        ensure_audit_key(engine, services.token, now=START)

    assert {info.label for info in services.token.key_objects()} == labels_before
    with engine.connect() as connection:
        assert active_audit_key(connection) is None


# --- the audit page's check: from the last seal on ------------------------------------------


def test_the_page_check_reads_only_the_sealed_event_and_those_after_it(
    engine: Engine, services: Services, audit_key: AuditKeyRow
) -> None:
    append(engine, 40)
    seal(engine, services.token, now=LATER)
    append(engine, 3, start=40)

    result = verify_since_last_seal(engine)

    assert result.ok, result.problem
    # The sealed event (41: the key's event comes first) and the three after it.
    assert (result.events, result.last_event_id, result.sealed_up_to) == (4, 44, 41)


def test_the_page_check_does_not_reread_a_row_sealed_earlier_but_catches_a_later_one(
    engine: Engine, services: Services, audit_key: AuditKeyRow
) -> None:
    append(engine, 10)
    seal(engine, services.token, now=LATER)
    append(engine, 3, start=10)
    execute(engine, "UPDATE audit_events SET actor = 'someone-else' WHERE id = 5")

    # Before the seal: only the full walk (shomei audit verify) reads event 5 again.
    assert verify_since_last_seal(engine).ok
    assert problem_of(engine)[0] == 5
    execute(engine, "UPDATE audit_events SET actor = 'someone-else' WHERE id = 13")
    result = verify_since_last_seal(engine)
    assert result.problem is not None
    assert result.problem.event_id == 13


def test_the_page_check_catches_a_sealed_event_changed_or_a_tail_deleted(
    engine: Engine, services: Services, audit_key: AuditKeyRow
) -> None:
    append(engine, 4)
    seal(engine, services.token, now=LATER)
    execute(engine, "UPDATE audit_events SET details = '{}' WHERE id = 5")

    result = verify_since_last_seal(engine)

    assert result.problem is not None
    assert result.problem.event_id == 5
    execute(engine, "DELETE FROM audit_events WHERE id = 5")
    execute(engine, "UPDATE audit_head SET last_event_id = 4")
    moved_back = verify_since_last_seal(engine)
    assert moved_back.problem is not None
    assert moved_back.problem.event_id == 5


def test_the_page_check_of_a_log_never_sealed_walks_it_all(engine: Engine) -> None:
    append(engine, 3)

    result = verify_since_last_seal(engine)

    assert result.ok, result.problem
    assert (result.events, result.sealed_up_to) == (3, 0)
