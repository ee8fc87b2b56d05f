"""Idempotency-Key on POST /enrollments: a retry gets the enrollment made the first time, with
a fresh one-time password; the key is the site's own; concurrent retries make one enrollment."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest
from sqlalchemy import func, select

from pwa_server.enrollment.errors import WrongSecretError
from pwa_server.runtime import (
    Services,
    enrollment_administration,
    enrollment_service,
    site_registry,
)
from pwa_server.store.database import create_database_engine, migrate
from pwa_server.store.tables import idempotency_keys
from tests.web.api.conftest import (
    Site,
    SiteFactory,
    enrollment_count,
    invitation_for,
    mails_to,
    problem_of,
    serving,
    with_clock,
)

CONCURRENT_REQUESTS = 8


def test_a_retry_with_the_same_key_and_body_is_200_with_the_same_enrollment(site: Site) -> None:
    body = invitation_for()
    first = site.api.create_enrollment(body, idempotency_key="retry-1")
    retry = site.api.create_enrollment(body, idempotency_key="retry-1")
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json()["id"] == first.json()["id"]
    assert retry.json()["enrollment_url"] == first.json()["enrollment_url"]
    assert retry.headers["idempotent-replayed"] == "true"


def test_the_retrys_one_time_password_works_and_the_first_one_no_longer_does(
    site: Site, services: Services
) -> None:
    body = invitation_for()
    first = site.api.created(body, idempotency_key="retry-2")
    retry = site.api.create_enrollment(body, idempotency_key="retry-2").json()
    assert retry["one_time_password"] != first["one_time_password"]
    with pytest.raises(WrongSecretError):
        services.enrollments.verify_one_time_password(
            first["id"], first["one_time_password"], now=services.now()
        )
    row = services.enrollments.verify_one_time_password(
        first["id"], retry["one_time_password"], now=services.now()
    )
    assert row.status == "otp_verified"


def test_a_retry_makes_no_second_enrollment_nor_a_second_mail(
    site: Site, services: Services
) -> None:
    body = invitation_for()
    for _ in range(3):
        site.api.create_enrollment(body, idempotency_key="retry-3")
    assert enrollment_count(services.engine, site.row.id) == 1
    assert len(mails_to(services.engine, body["email"])) == 1


def test_the_same_key_with_a_different_body_is_422_idempotency_key_reused(
    site: Site, services: Services
) -> None:
    site.api.created(invitation_for("alice"), idempotency_key="retry-4")
    response = site.api.create_enrollment(invitation_for("bob"), idempotency_key="retry-4")
    problem_of(response, 422, "idempotency-key-reused")
    assert enrollment_count(services.engine, site.row.id) == 1


def test_two_sites_may_use_the_same_key_independently(new_site: SiteFactory) -> None:
    a, b = new_site(), new_site()
    body = invitation_for()
    mine = a.api.create_enrollment(body, idempotency_key="shared-key")
    theirs = b.api.create_enrollment(body, idempotency_key="shared-key")
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]
    assert a.api.get(f"/enrollments/{theirs.json()['id']}").status_code == 404


def test_without_a_key_the_same_body_twice_makes_two_enrollments(site: Site) -> None:
    body = invitation_for()
    first, second = site.api.created(body), site.api.created(body)
    assert first["id"] != second["id"]


def test_a_retry_after_the_one_time_password_was_used_is_409(
    site: Site, services: Services
) -> None:
    body = invitation_for()
    first = site.api.created(body, idempotency_key="retry-5")
    services.enrollments.verify_one_time_password(
        first["id"], first["one_time_password"], now=services.now()
    )
    response = site.api.create_enrollment(body, idempotency_key="retry-5")
    problem_of(response, 409, "wrong-state")
    assert enrollment_count(services.engine, site.row.id) == 1


def test_a_retry_after_the_enrollment_was_cancelled_is_410_enrollment_cancelled(
    site: Site, services: Services
) -> None:
    body = invitation_for()
    first = site.api.created(body, idempotency_key="retry-6")
    assert site.api.post(f"/enrollments/{first['id']}/cancel").status_code == 200
    response = site.api.create_enrollment(body, idempotency_key="retry-6")
    problem_of(response, 410, "enrollment-cancelled")
    assert enrollment_count(services.engine, site.row.id) == 1


def test_a_key_longer_than_255_characters_is_422_naming_the_header(
    site: Site, services: Services
) -> None:
    response = site.api.create_enrollment(invitation_for(), idempotency_key="k" * 256)
    problem = problem_of(response, 422, "invalid-request")
    assert problem["errors"][0]["pointer"] == "Idempotency-Key"
    assert enrollment_count(services.engine, site.row.id) == 0


# --- concurrent identical requests, on SQLite and PostgreSQL ---------------------------------


@pytest.fixture
def on_each_database(database_url: str, services: Services) -> Iterator[SiteFactory]:
    """The application over an empty database of each kind (the session's token and CAs)."""
    engine = create_database_engine(database_url)
    try:
        migrate(engine)
        settings = services.settings
        over = dataclasses.replace(
            services,
            engine=engine,
            enrollments=enrollment_service(settings, engine, services.downloads.hashes),
            enrollment_administration=enrollment_administration(
                settings, engine, services.downloads.hashes
            ),
            sites=site_registry(settings, engine),
        )
        with serving(over) as factory:
            yield factory
    finally:
        engine.dispose()


def test_concurrent_identical_requests_make_exactly_one_enrollment(
    on_each_database: SiteFactory,
) -> None:
    site = on_each_database()
    body = invitation_for()
    start = threading.Barrier(CONCURRENT_REQUESTS)

    def create(_: int) -> httpx2.Response:
        start.wait()
        return site.api.create_enrollment(body, idempotency_key="at-once")

    with ThreadPoolExecutor(max_workers=CONCURRENT_REQUESTS) as pool:
        responses = list(pool.map(create, range(CONCURRENT_REQUESTS)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * (CONCURRENT_REQUESTS - 1) + [201], [r.text for r in responses]
    assert len({response.json()["id"] for response in responses}) == 1
    engine = on_each_database.services.engine
    assert enrollment_count(engine, site.row.id) == 1
    with engine.connect() as connection:
        keys = connection.execute(select(func.count()).select_from(idempotency_keys))
        assert keys.scalar_one() == 1
    assert len(mails_to(engine, body["email"])) == 1


# --- the key is remembered for 24 hours ----------------------------------------------------


@pytest.mark.parametrize(
    ("later", "status"),
    [(dt.timedelta(hours=23, minutes=59), 200), (dt.timedelta(hours=24, minutes=1), 201)],
    ids=["within 24 hours: replayed", "after 24 hours: forgotten"],
)
def test_a_key_is_remembered_for_24_hours(
    services: Services, later: dt.timedelta, status: int
) -> None:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    body = invitation_for()
    with serving(with_clock(services, start)) as then:
        site = then()
        first = site.api.created(body, idempotency_key="daily")
    with serving(with_clock(services, start + later)) as now:
        retry = now.client(site.api_key).create_enrollment(body, idempotency_key="daily")
    assert retry.status_code == status, retry.text
    assert (retry.json()["id"] == first["id"]) is (status == 200)
