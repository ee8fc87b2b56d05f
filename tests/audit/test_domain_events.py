"""The domain's security events in the audit log: who did what to which enrollment,
certificate, site or API key, recorded exactly when the change committed, never a secret.

Runs on SQLite and PostgreSQL through the enrollment tests' `enrolling` fixture.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from pwa_server import audit
from pwa_server.audit import Actor, ActorKind, AuditAction, AuditEventRow, Outcome
from pwa_server.enrollment import revocation
from pwa_server.enrollment.download import Downloads, Platform
from pwa_server.enrollment.errors import EnrollmentLockedError, WrongSecretError
from pwa_server.enrollment.installation import CheckStatus, check_installation
from pwa_server.enrollment.site_enrollments import EnrollmentRequest, SiteEnrollments
from pwa_server.pki.packaging import PackagingError
from pwa_server.runtime import Services
from pwa_server.serve.background import seal_audit_log
from pwa_server.sites.api_keys import parse_api_key
from pwa_server.sites.registry import SiteRegistry
from pwa_server.store.audit import latest_seal, read_head
from pwa_server.store.tables import audit_events, enrollments
from pwa_server.web.app import create_app
from tests.enrollment.conftest import START, Enrolling
from tests.enrollment.conftest import enrolling as _enrolling

# The enrollment tests' services on both databases, reused rather than built again.
enrolling = _enrolling

OFFICER = Actor.officer("officer-sato")
LATER = START + dt.timedelta(hours=1)


def all_events(engine: Engine) -> list[AuditEventRow]:
    """Every event, oldest first."""
    return list(reversed(audit.events(engine, limit=10_000)))


def new_events(engine: Engine, after: int) -> list[AuditEventRow]:
    return [event for event in all_events(engine) if event.id > after]


def last_id(engine: Engine) -> int:
    with engine.connect() as connection:
        head = read_head(connection)
    assert head is not None
    return head.last_event_id


def details(event: AuditEventRow) -> dict[str, Any]:
    assert event.details is not None
    loaded: dict[str, Any] = json.loads(event.details)
    return loaded


def summary(events: list[AuditEventRow]) -> list[tuple[str, str, str, str | None, str]]:
    """(action, actor kind, actor, subject, outcome) of each event."""
    return [
        (event.action, event.actor_kind, event.actor, event.subject, event.outcome)
        for event in events
    ]


def assert_verified(engine: Engine) -> None:
    result = audit.verify(engine)
    assert result.ok, result.problem
    assert result.last_event_id == result.events  # ids 1..n, no gap


def serial_of(content: bytes, password: str) -> str:
    _, certificate, _ = pkcs12.load_key_and_certificates(content, password.encode())
    assert certificate is not None
    return format(certificate.serial_number, "x")


def download(enrolling: Enrolling, cuid: str, password: str, now: dt.datetime) -> bytes:
    return enrolling.downloads.download(
        certificate_user_id=cuid, download_password=password, platform=Platform.ANDROID, now=now
    ).content


# --- one-time password, lockout, unlock ----------------------------------------------------


def test_wrong_one_time_passwords_are_recorded_and_so_is_the_lock(enrolling: Enrolling) -> None:
    invitation = enrolling.invite()
    eid = invitation.enrollment_id
    [invited] = all_events(enrolling.engine)
    assert summary([invited]) == [("enrollment.invited", "system", "cli", eid, "success")]
    assert details(invited)["certificate_user_id"] == invitation.certificate_user_id

    limit = enrolling.policy.max_failures
    for _ in range(limit - 1):
        with pytest.raises(WrongSecretError):
            enrolling.service.verify_one_time_password(eid, "WRONG-1234", now=START)
    with pytest.raises(EnrollmentLockedError):
        enrolling.service.verify_one_time_password(eid, "WRONG-1234", now=START)

    failures = new_events(enrolling.engine, invited.id)
    assert summary(failures) == [
        ("enrollment.one_time_password_failed", "user", eid, eid, "failure")
    ] * limit + [("enrollment.locked", "user", eid, eid, "success")]
    assert [details(event)["failed_attempts"] for event in failures[:-1]] == list(
        range(1, limit + 1)
    )
    assert details(failures[-1]) == {
        "failed_attempts": limit,
        "limit": limit,
        "after": "enrollment.one_time_password_failed",
    }

    # A guess refused by the lock checks no secret: nothing more is recorded.
    with pytest.raises(EnrollmentLockedError):
        enrolling.service.verify_one_time_password(eid, "WRONG-1234", now=START)
    assert last_id(enrolling.engine) == failures[-1].id

    enrolling.administration.unlock(eid, now=START, actor=OFFICER)
    enrolling.service.verify_one_time_password(eid, invitation.one_time_password, now=START)
    after_lock = new_events(enrolling.engine, failures[-1].id)
    assert summary(after_lock) == [
        ("enrollment.unlocked", "officer", "officer-sato", eid, "success"),
        ("enrollment.one_time_password_verified", "user", eid, eid, "success"),
    ]
    assert details(after_lock[0])["resumed_status"] == "invited"
    assert_verified(enrolling.engine)


def test_cancel_and_reissue_name_who_asked(enrolling: Enrolling) -> None:
    invitation, _ = enrolling.ready_to_download()
    eid = invitation.enrollment_id
    before = last_id(enrolling.engine)
    enrolling.administration.reissue(eid, now=START, actor=OFFICER)
    enrolling.administration.cancel(eid, now=START)
    events = new_events(enrolling.engine, before)
    assert summary(events) == [
        ("enrollment.reissued", "officer", "officer-sato", eid, "success"),
        ("enrollment.cancelled", "system", "cli", eid, "success"),
    ]
    assert details(events[0])["by"] == "administrator"
    assert details(events[1]) == {"previous_status": "secret_registered"}
    assert_verified(enrolling.engine)


# --- downloads, reissue, installation, revocation ----------------------------------------


def test_a_download_records_the_download_and_the_certificate(enrolling: Enrolling) -> None:
    invitation, password = enrolling.ready_to_download()
    eid, cuid = invitation.enrollment_id, invitation.certificate_user_id
    before = last_id(enrolling.engine)
    with pytest.raises(WrongSecretError):
        download(enrolling, cuid, "WRONG-PASSWORD", START)
    delivery = enrolling.downloads.download(
        certificate_user_id=cuid, download_password=password, platform=Platform.IOS, now=START
    )
    serial = format(delivery.certificate.serial_number, "x")

    events = new_events(enrolling.engine, before)
    assert summary(events) == [
        ("enrollment.download_password_failed", "user", eid, eid, "failure"),
        ("enrollment.downloaded", "user", eid, eid, "success"),
        ("certificate.issued", "user", eid, serial, "success"),
    ]
    assert details(events[1]) == {"serial": serial, "profile": "default", "platform": "ios"}
    issued = details(events[2])
    assert issued["enrollment_id"] == eid
    assert issued["certificate_user_id"] == cuid
    assert issued["issuer_id"] == enrolling.downloads.issuing.id
    assert (issued["profile"], issued["platform"]) == ("default", "ios")
    assert events[2].subject_kind == "certificate"

    check = check_installation(
        enrolling.engine, [enrolling.downloads.issuing], delivery.certificate, now=START
    )
    assert check.status is CheckStatus.OK
    # A second check changes nothing, and records nothing.
    check_installation(
        enrolling.engine, [enrolling.downloads.issuing], delivery.certificate, now=START
    )
    [installed] = new_events(enrolling.engine, events[-1].id)
    assert summary([installed]) == [("enrollment.installed", "user", eid, eid, "success")]
    assert details(installed) == {"serial": serial, "certificate_user_id": cuid}
    assert_verified(enrolling.engine)


def test_self_service_reissue_records_the_superseded_certificate(enrolling: Enrolling) -> None:
    invitation, password = enrolling.ready_to_download()
    eid, cuid = invitation.enrollment_id, invitation.certificate_user_id
    old = serial_of(download(enrolling, cuid, password, START), password)
    before = last_id(enrolling.engine)

    with pytest.raises(WrongSecretError):
        enrolling.service.reissue_with_secret_answer(cuid, "Tama", now=LATER)
    renewed = enrolling.service.reissue_with_secret_answer(cuid, "Pochi", now=LATER)
    new = serial_of(
        download(enrolling, cuid, renewed.download_password, LATER), renewed.download_password
    )

    events = new_events(enrolling.engine, before)
    assert summary(events) == [
        ("enrollment.secret_answer_failed", "user", eid, eid, "failure"),
        ("enrollment.reissued", "user", eid, eid, "success"),
        ("enrollment.downloaded", "user", eid, eid, "success"),
        ("certificate.issued", "user", eid, new, "success"),
        ("certificate.revoked", "user", eid, old, "success"),
    ]
    assert details(events[1])["by"] == "secret_answer"
    assert details(events[4]) == {
        "reason": "superseded",
        "issuer_id": enrolling.downloads.issuing.id,
        "enrollment_id": eid,
        "replaced_by": new,
    }
    assert_verified(enrolling.engine)


def test_revocation_records_the_reason_and_who_revoked(enrolling: Enrolling) -> None:
    invitation, password = enrolling.ready_to_download()
    serial = serial_of(
        download(enrolling, invitation.certificate_user_id, password, START), password
    )
    before = last_id(enrolling.engine)
    revocation.revoke(
        enrolling.engine,
        issuer_id=enrolling.downloads.issuing.id,
        serial=serial,
        reason="keyCompromise",
        now=LATER,
        actor=OFFICER,
    )
    [revoked] = new_events(enrolling.engine, before)
    assert summary([revoked]) == [
        ("certificate.revoked", "officer", "officer-sato", serial, "success")
    ]
    assert revoked.subject_kind == "certificate"
    assert details(revoked) == {
        "reason": "keyCompromise",
        "issuer_id": enrolling.downloads.issuing.id,
        "enrollment_id": invitation.enrollment_id,
    }
    assert revoked.occurred_at == LATER
    assert_verified(enrolling.engine)


# --- sites and API keys --------------------------------------------------------------------


def test_site_and_api_key_changes_are_recorded(enrolling: Enrolling) -> None:
    registry = SiteRegistry(enrolling.engine, b"k" * 32)
    new = registry.create(
        name="shop",
        display_name="Shop",
        return_urls=("https://shop.example/return",),
        now=START,
        actor=OFFICER,
    )
    first = parse_api_key(new.api_key)
    assert first is not None
    second_text = registry.add_key("shop", label="rotation", now=START)
    second = parse_api_key(second_text)
    assert second is not None
    registry.revoke_key(first[0], now=START)
    webhook_secret = registry.set_webhook("shop", "https://shop.example/hook", now=START)
    registry.set_return_urls("shop", ("https://shop.example/new",), now=START, actor=OFFICER)

    events = all_events(enrolling.engine)
    assert summary(events) == [
        ("site.created", "officer", "officer-sato", "shop", "success"),
        ("api_key.created", "officer", "officer-sato", first[0], "success"),
        ("api_key.created", "system", "cli", second[0], "success"),
        ("api_key.revoked", "system", "cli", first[0], "success"),
        ("site.updated", "system", "cli", "shop", "success"),
        ("site.updated", "officer", "officer-sato", "shop", "success"),
    ]
    assert details(events[0])["return_urls"] == ["https://shop.example/return"]
    assert details(events[2]) == {"site": "shop", "label": "rotation"}
    assert details(events[4])["webhook_url"] == "https://shop.example/hook"
    assert details(events[4])["secret_rotated"] is True
    assert details(events[5])["return_urls"] == ["https://shop.example/new"]
    assert details(events[5])["previous_return_urls"] == ["https://shop.example/return"]

    # Refused keys: a revoked one (its id and site are kept) and one that is not a key.
    registry.record_refusal(new.api_key, client="192.0.2.7", now=LATER)
    registry.record_refusal("not-a-key " + "x" * 300, client=None, now=LATER)
    refused = new_events(enrolling.engine, events[-1].id)
    assert summary(refused) == [
        ("api_key.rejected", "site", "unauthenticated", first[0], "failure"),
        ("api_key.rejected", "site", "unauthenticated", None, "failure"),
    ]
    assert details(refused[0]) == {"key_id": first[0], "site": "shop", "client": "192.0.2.7"}
    assert details(refused[1]) == {"key_id": None, "site": None, "client": None}

    secrets = [new.api_key, second_text, first[1], second[1], webhook_secret, new.webhook_secret]
    assert_nothing_in_the_log(enrolling.engine, [secret for secret in secrets if secret])
    assert_verified(enrolling.engine)


def test_a_sites_calls_are_recorded_as_the_sites(enrolling: Enrolling) -> None:
    registry = SiteRegistry(enrolling.engine, b"k" * 32)
    site = registry.create(name="shop", display_name="Shop", now=START).site
    calls = SiteEnrollments(
        enrolling.engine,
        enrolling.service,
        enrolling.administration,
        issuer_id=enrolling.downloads.issuing.id,
    )
    request = EnrollmentRequest(user_id="u-1", email="u-1@example.jp")
    before = last_id(enrolling.engine)
    created = calls.create(site, request, idempotency_key="k-1", now=START)
    replayed = calls.create(site, request, idempotency_key="k-1", now=START)
    assert replayed.replayed
    eid = created.invitation.enrollment_id
    calls.cancel(site, eid, now=START)
    # The enrollment service on its own also names the site of an enrollment it creates.
    other = enrolling.service.create(
        user_id="u-2", email="u-2@example.jp", site_id=site.id, now=START
    )

    events = new_events(enrolling.engine, before)
    assert summary(events) == [
        ("enrollment.invited", "site", "shop", eid, "success"),
        ("enrollment.one_time_password_reissued", "site", "shop", eid, "success"),
        ("enrollment.cancelled", "site", "shop", eid, "success"),
        ("enrollment.invited", "site", "shop", other.enrollment_id, "success"),
    ]
    assert details(events[0])["site_id"] == site.id
    one_time_passwords = [
        created.invitation.one_time_password,
        replayed.invitation.one_time_password,
        other.one_time_password,
    ]
    assert_nothing_in_the_log(enrolling.engine, one_time_passwords)
    assert_verified(enrolling.engine)


def test_a_refused_api_key_is_recorded_with_the_client_address(services: Services) -> None:
    """Through the API itself, on the session's database (SQLite)."""
    key_id = "unknownkey000001"
    with TestClient(create_app(services), base_url="https://localhost") as http:
        answer = http.get(
            "/api/v1/enrollments/nothing",
            headers={"authorization": f"Bearer shk_{key_id}_{'A' * 43}"},
        )
    assert answer.status_code == 401
    [refused] = audit.events(services.engine, limit=1, subject=key_id)
    assert (refused.action, refused.outcome) == ("api_key.rejected", "failure")
    assert details(refused) == {"key_id": key_id, "site": None, "client": "testclient"}
    assert "A" * 43 not in (refused.details or "")


def test_refused_api_keys_from_one_client_are_recorded_once_a_minute(services: Services) -> None:
    """Anyone can send refused keys: the log records the first of a minute, not a flood."""
    key_ids = ["floodkey00000001", "floodkey00000002"]
    with TestClient(create_app(services), base_url="https://localhost") as http:
        for key_id in key_ids:
            answer = http.get(
                "/api/v1/enrollments/nothing",
                headers={"authorization": f"Bearer shk_{key_id}_{'B' * 43}"},
            )
            assert answer.status_code == 401
    assert len(audit.events(services.engine, limit=5, subject=key_ids[0])) == 1
    assert audit.events(services.engine, limit=5, subject=key_ids[1]) == []


# --- transactions: an event exists exactly when its change committed ----------------------


def test_a_failed_packaging_leaves_no_event_and_no_gap(
    enrolling: Enrolling, monkeypatch: pytest.MonkeyPatch
) -> None:
    invitation, password = enrolling.ready_to_download()
    cuid = invitation.certificate_user_id
    before = last_id(enrolling.engine)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise PackagingError("the PKCS#12 could not be built")

    with monkeypatch.context() as patch:
        patch.setattr(Downloads, "_package", broken)
        with pytest.raises(PackagingError):
            download(enrolling, cuid, password, START)
    assert last_id(enrolling.engine) == before
    with enrolling.engine.connect() as connection:
        status: str = connection.execute(
            select(enrollments.c.status).where(enrollments.c.id == invitation.enrollment_id)
        ).scalar_one()
    assert status == "secret_registered"

    download(enrolling, cuid, password, START)
    assert [event.id for event in new_events(enrolling.engine, before)] == [
        before + 1,
        before + 2,
    ]
    assert_verified(enrolling.engine)


def test_an_error_after_the_event_rolls_the_event_back(enrolling: Enrolling) -> None:
    enrolling.invite("first")
    before = last_id(enrolling.engine)

    def create_then_fail() -> None:
        with enrolling.engine.begin() as connection:
            enrolling.service.create(
                user_id="rolled-back",
                email="rolled-back@example.jp",
                now=START,
                connection=connection,
            )
            raise RuntimeError("the caller's transaction fails after the event was appended")

    with pytest.raises(RuntimeError):
        create_then_fail()
    assert last_id(enrolling.engine) == before
    enrolling.invite("second")
    [second] = new_events(enrolling.engine, before)
    assert second.id == before + 1
    assert details(second)["user_id"] == "second"
    assert_verified(enrolling.engine)


# --- no secret, anywhere -------------------------------------------------------------------


def assert_nothing_in_the_log(engine: Engine, secrets: list[str]) -> None:
    """None of `secrets` (nor their case-folded forms) appears in any column of any event."""
    with engine.connect() as connection:
        rows = connection.execute(select(audit_events)).all()
        assert connection.execute(select(func.count()).select_from(audit_events)).scalar_one()
    text = "\n".join(str(value) for row in rows for value in row).lower()
    for secret in secrets:
        assert secret.lower() not in text, "a secret reached the audit log"


def test_no_secret_reaches_the_log(enrolling: Enrolling) -> None:
    answer = "Kitsune-Udon-Seventeen"
    wrong_answer = "Tanuki-Soba-Eleven"
    wrong_password = "WRONG-DOWNLOAD-9999"
    invitation = enrolling.invite()
    eid, cuid = invitation.enrollment_id, invitation.certificate_user_id
    with pytest.raises(WrongSecretError):
        enrolling.service.verify_one_time_password(eid, "BADOTP-4242", now=START)
    enrolling.service.verify_one_time_password(eid, invitation.one_time_password, now=START)
    issued = enrolling.service.register_secret(
        eid, question="first-pet", answer=answer, answer_confirm=answer, now=START
    )
    with pytest.raises(WrongSecretError):
        download(enrolling, cuid, wrong_password, START)
    download(enrolling, cuid, issued.download_password, START)
    with pytest.raises(WrongSecretError):
        enrolling.service.reissue_with_secret_answer(cuid, wrong_answer, now=LATER)
    renewed = enrolling.service.reissue_with_secret_answer(cuid, answer, now=LATER)
    again = enrolling.administration.new_one_time_password(
        enrolling.invite("bob").enrollment_id, now=LATER
    )

    actions = {event.action for event in all_events(enrolling.engine)}
    assert {
        AuditAction.ENROLLMENT_ONE_TIME_PASSWORD_FAILED,
        AuditAction.ENROLLMENT_SECRET_REGISTERED,
        AuditAction.ENROLLMENT_DOWNLOAD_PASSWORD_FAILED,
        AuditAction.ENROLLMENT_SECRET_ANSWER_FAILED,
        AuditAction.ENROLLMENT_ONE_TIME_PASSWORD_REISSUED,
    } <= actions
    assert_nothing_in_the_log(
        enrolling.engine,
        [
            invitation.one_time_password,
            "BADOTP-4242",
            answer,
            wrong_answer,
            issued.download_password,
            wrong_password,
            renewed.download_password,
            again.one_time_password,
        ],
    )
    # Password hashes are not secrets, but have no place in the log either.
    with enrolling.engine.connect() as connection:
        row = connection.execute(select(enrollments).where(enrollments.c.id == eid)).one()
    assert_nothing_in_the_log(
        enrolling.engine,
        [row.one_time_password_hash, row.secret_answer_hash, row.download_password_hash],
    )
    assert_verified(enrolling.engine)


# --- the server's seal loop --------------------------------------------------------------


def test_the_workers_seal_loop_seals_the_head_and_stops_promptly(services: Services) -> None:
    with services.engine.begin() as connection:
        audit.record(
            connection,
            actor_kind=ActorKind.SYSTEM,
            actor="test",
            action=AuditAction.CONFIGURATION_CHANGED,
            outcome=Outcome.SUCCESS,
            now=dt.datetime.now(dt.UTC),
        )

    def sealed_head() -> bool:
        with services.engine.connect() as connection:
            head, last = read_head(connection), latest_seal(connection)
        return head is not None and last is not None and last.event_id == head.last_event_id

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.create_task(seal_audit_log(services, stop=stop))
        for _ in range(100):
            if await asyncio.to_thread(sealed_head):
                break
            await asyncio.sleep(0.05)
        stop.set()
        # Far sooner than SEAL_INTERVAL: the loop waits on the event, not a sleep.
        await asyncio.wait_for(loop, timeout=10)

    asyncio.run(run())
    assert sealed_head()
    assert audit.verify(services.engine, token=services.token).ok
