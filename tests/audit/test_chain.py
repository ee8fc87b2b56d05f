"""The hash chain: appending in the caller's transaction, and naming a changed or missing row."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from sqlalchemy import Engine, func, insert, select, update

from pwa_server.audit import (
    GENESIS_HASH,
    ActorKind,
    AuditAction,
    AuditError,
    JsonValue,
    Outcome,
    events,
    record,
    verify,
)
from pwa_server.audit.chain import event_hash
from pwa_server.store.audit import read_head
from pwa_server.store.tables import audit_events, redeemed_assertions
from tests.audit.conftest import START, append, execute

# --- the encoding -------------------------------------------------------------------------


def test_the_hash_is_sha256_of_sorted_compact_json_of_every_column_but_the_hash(
    engine: Engine,
) -> None:
    with engine.begin() as connection:
        record(
            connection,
            actor_kind=ActorKind.OFFICER,
            actor="tanaka",
            action=AuditAction.ENROLLMENT_UNLOCKED,
            subject_kind="enrollment",
            subject="e-1",
            details={"reason": "電話で本人確認", "attempts": 6},
            now=dt.datetime(2026, 4, 1, 18, 30, tzinfo=dt.timezone(dt.timedelta(hours=9))),
        )
    [event] = events(engine, limit=1)

    # Written out by hand from the documented format, not by the code under test.
    expected = (
        '{"action":"enrollment.unlocked","actor":"tanaka","actor_kind":"officer",'
        '"details":"{\\"attempts\\":6,\\"reason\\":\\"\\u96fb\\u8a71\\u3067\\u672c\\u4eba'
        '\\u78ba\\u8a8d\\"}","id":1,"occurred_at":"2026-04-01T09:30:00.000000Z",'
        '"outcome":"success","prev_hash":"' + "0" * 64 + '","subject":"e-1",'
        '"subject_kind":"enrollment"}'
    )
    assert event.hash == hashlib.sha256(expected.encode("ascii")).hexdigest()
    assert event.prev_hash == GENESIS_HASH
    assert json.loads(event.details or "") == {"reason": "電話で本人確認", "attempts": 6}


def test_each_event_carries_the_hash_of_the_one_before(engine: Engine) -> None:
    append(engine, 3)

    first, second, third = reversed(events(engine, limit=3))

    assert (first.prev_hash, second.prev_hash, third.prev_hash) == (
        GENESIS_HASH,
        first.hash,
        second.hash,
    )
    assert all(event_hash(event) == event.hash for event in (first, second, third))


def test_the_head_names_the_last_event_and_its_hash(engine: Engine) -> None:
    append(engine, 4)

    with engine.connect() as connection:
        head = read_head(connection)

    [last] = events(engine, limit=1)
    assert head is not None
    assert (head.last_event_id, head.last_hash) == (4, last.hash)


# --- recording ----------------------------------------------------------------------------


def test_an_intact_chain_verifies(engine: Engine) -> None:
    append(engine, 12)

    result = verify(engine)

    assert result.ok, result.problem
    assert (result.events, result.last_event_id, result.sealed_up_to, result.unsealed) == (
        12,
        12,
        0,
        12,
    )


def test_an_empty_log_verifies(engine: Engine) -> None:
    result = verify(engine)

    assert result.ok
    assert (result.events, result.last_event_id) == (0, 0)


def test_an_event_rolled_back_leaves_no_trace_and_no_gap(engine: Engine) -> None:
    append(engine, 2)
    with engine.connect() as connection:
        transaction = connection.begin()
        record(
            connection,
            actor_kind=ActorKind.SYSTEM,
            actor="server",
            action=AuditAction.CERTIFICATE_ISSUED,
            now=START,
        )
        transaction.rollback()

    append(engine, 1, start=2)

    listed = events(engine, limit=10)
    assert [event.id for event in listed] == [3, 2, 1]
    assert AuditAction.CERTIFICATE_ISSUED not in {event.action for event in listed}
    assert verify(engine).ok


def test_an_event_rolls_back_with_the_change_it_records(engine: Engine) -> None:
    with engine.connect() as connection:
        transaction = connection.begin()
        connection.execute(
            insert(redeemed_assertions).values(jti="j1", redeemed_at=START, expires_at=START)
        )
        record(
            connection,
            actor_kind=ActorKind.SITE,
            actor="shop",
            action=AuditAction.SITE_UPDATED,
            now=START,
        )
        transaction.rollback()

    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(audit_events)).scalar_one()
        changes = connection.execute(
            select(func.count()).select_from(redeemed_assertions)
        ).scalar_one()
        head = read_head(connection)
    assert (count, changes) == (0, 0)
    assert head is not None
    assert (head.last_event_id, head.last_hash) == (0, GENESIS_HASH)


def test_record_returns_the_new_event_id(engine: Engine) -> None:
    assert append(engine, 3) == [1, 2, 3]


@pytest.mark.parametrize(
    "details",
    [
        {"password": "hunter2"},
        {"attempt": 1, "one_time_password": "123456"},
        {"nested": {"PIN": "1234"}},
        {"items": [{"secret_answer": "Pochi"}]},
    ],
    ids=["password", "otp", "nested-pin", "in-a-list"],
)
def test_details_holding_a_secret_are_refused(
    engine: Engine, details: dict[str, JsonValue]
) -> None:
    with pytest.raises(ValueError, match="secrets"), engine.begin() as connection:
        record(
            connection,
            actor_kind=ActorKind.USER,
            actor="alice",
            action=AuditAction.ENROLLMENT_ONE_TIME_PASSWORD_FAILED,
            details=details,
            now=START,
        )


def test_a_naive_time_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="naive"), engine.begin() as connection:
        record(
            connection,
            actor_kind=ActorKind.SYSTEM,
            actor="server",
            action=AuditAction.CONFIGURATION_CHANGED,
            now=dt.datetime(2026, 4, 1, 9, 0),
        )


def test_an_unknown_actor_kind_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="robot"), engine.begin() as connection:
        record(
            connection,
            actor_kind="robot",  # type: ignore[arg-type]  # the kind no ActorKind names
            actor="r2",
            action=AuditAction.CONFIGURATION_CHANGED,
            now=START,
        )


def test_an_actor_longer_than_its_column_is_refused_on_every_database(engine: Engine) -> None:
    with pytest.raises(ValueError, match="255"), engine.begin() as connection:
        record(
            connection,
            actor_kind=ActorKind.SITE,
            actor="x" * 256,
            action=AuditAction.API_KEY_REJECTED,
            now=START,
        )


def test_record_refuses_to_append_without_the_head_row(engine: Engine) -> None:
    append(engine, 1)
    execute(engine, "DELETE FROM audit_head")

    with pytest.raises(AuditError, match="head"), engine.begin() as connection:
        record(
            connection,
            actor_kind=ActorKind.SYSTEM,
            actor="server",
            action=AuditAction.KEY_RETIRED,
            now=START,
        )


# --- tampering ----------------------------------------------------------------------------

CHANGES = {
    "actor": "UPDATE audit_events SET actor = 'someone-else' WHERE id = :k",
    "action": "UPDATE audit_events SET action = 'enrollment.downloaded' WHERE id = :k",
    "outcome": "UPDATE audit_events SET outcome = 'success' WHERE id = :k",
    "subject": "UPDATE audit_events SET subject = NULL WHERE id = :k",
    "details": "UPDATE audit_events SET details = '{}' WHERE id = :k",
    "prev_hash": "UPDATE audit_events SET prev_hash = :zeros WHERE id = :k",
    "hash": "UPDATE audit_events SET hash = :zeros WHERE id = :k",
}


@pytest.mark.parametrize("column", list(CHANGES))
def test_changing_one_column_of_a_row_names_that_row(engine: Engine, column: str) -> None:
    append(engine, 10)

    execute(engine, CHANGES[column], k=6, zeros="0" * 64)
    result = verify(engine)

    assert result.problem is not None
    assert result.problem.event_id == 6
    assert "event 6 was changed" in result.problem.message


def test_changing_the_time_of_a_row_names_that_row(engine: Engine) -> None:
    append(engine, 10)
    with engine.begin() as connection:
        connection.execute(
            update(audit_events)
            .where(audit_events.c.id == 4)
            .values(occurred_at=START - dt.timedelta(days=1))
        )

    result = verify(engine)

    assert result.problem is not None
    assert result.problem.event_id == 4


def test_changing_a_row_and_recomputing_its_hash_names_that_row(engine: Engine) -> None:
    append(engine, 10)
    [event] = events(engine, limit=1, before_id=8)
    forged = event_hash(event.__class__(**{**event.__dict__, "actor": "nobody"}))

    execute(engine, "UPDATE audit_events SET actor = 'nobody', hash = :h WHERE id = 7", h=forged)
    result = verify(engine)

    assert result.problem is not None
    assert result.problem.event_id == 7
    assert "event 8 was chained to a different hash" in result.problem.message


@pytest.mark.parametrize("k", [1, 5, 9])
def test_deleting_a_row_names_it_as_missing(engine: Engine, k: int) -> None:
    append(engine, 10)

    execute(engine, "DELETE FROM audit_events WHERE id = :k", k=k)
    result = verify(engine)

    assert result.problem is not None
    assert result.problem.event_id == k
    assert f"event {k} is missing" in result.problem.message


def test_deleting_the_last_rows_is_caught_by_the_head(engine: Engine) -> None:
    append(engine, 10)

    execute(engine, "DELETE FROM audit_events WHERE id >= 8")
    result = verify(engine)

    assert result.problem is not None
    assert result.problem.event_id == 8
    assert "event 8 is missing" in result.problem.message
    assert "the head names event 10" in result.problem.message


def test_a_row_inserted_behind_the_heads_back_is_named(engine: Engine) -> None:
    append(engine, 3)
    [last] = events(engine, limit=1)
    with engine.begin() as connection:
        connection.execute(
            audit_events.insert().values(
                {**last.__dict__, "id": 4, "prev_hash": last.hash, "hash": "f" * 64}
            )
        )

    result = verify(engine)

    assert result.problem is not None
    assert result.problem.event_id == 4


def test_a_changed_head_hash_is_caught(engine: Engine) -> None:
    append(engine, 3)

    execute(engine, "UPDATE audit_head SET last_hash = :zeros", zeros="0" * 64)
    result = verify(engine)

    assert result.problem is not None
    assert result.problem.event_id == 3


def test_a_deleted_head_row_is_caught(engine: Engine) -> None:
    append(engine, 3)

    execute(engine, "DELETE FROM audit_head")
    result = verify(engine)

    assert result.problem is not None
    assert "head row is missing" in result.problem.message


def test_verification_stops_at_the_first_problem(engine: Engine) -> None:
    append(engine, 10)

    execute(engine, "UPDATE audit_events SET actor = 'x' WHERE id IN (3, 7)")
    execute(engine, "DELETE FROM audit_events WHERE id = 9")
    result = verify(engine)

    assert result.problem is not None
    assert result.problem.event_id == 3
    assert result.events == 2


# --- reading ------------------------------------------------------------------------------


def test_events_are_listed_newest_first_and_filtered(engine: Engine) -> None:
    append(engine, 5)
    with engine.begin() as connection:
        record(
            connection,
            actor_kind=ActorKind.SITE,
            actor="shop",
            action=AuditAction.API_KEY_REJECTED,
            subject_kind="api_key",
            subject="k1",
            outcome=Outcome.FAILURE,
            now=START,
        )

    assert [event.id for event in events(engine, limit=3)] == [6, 5, 4]
    assert [event.id for event in events(engine, limit=10, action="api_key.rejected")] == [6]
    assert [event.id for event in events(engine, limit=10, actor="enrollment-2")] == [3]
    assert [event.id for event in events(engine, limit=10, subject="k1")] == [6]
    assert [event.id for event in events(engine, limit=2, before_id=4)] == [3, 2]


def test_events_need_a_positive_limit(engine: Engine) -> None:
    with pytest.raises(ValueError, match="limit"):
        events(engine, limit=0)
