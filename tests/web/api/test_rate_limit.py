"""Requests per API key per minute: RateLimit-* headers count down; past the limit, 429 with
Retry-After until the minute is over; other keys are counted apart."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from pwa_server.runtime import Services
from tests.web.api.conftest import SiteFactory, enrollment_count, problem_of, serving, with_clock

LIMIT = 3
# One second into a minute: the window is fixed, and resets in 59 seconds.
NOW = dt.datetime.now(dt.UTC).replace(second=1, microsecond=0)
RESET = 59


@pytest.fixture(scope="module")
def limited(services: Services) -> Iterator[SiteFactory]:
    """The application with a limit of LIMIT requests a minute and a clock that stands still."""
    with serving(with_clock(services, NOW, api_rate_limit_per_minute=LIMIT)) as factory:
        yield factory


def test_ratelimit_remaining_counts_down_from_the_limit(limited: SiteFactory) -> None:
    site = limited()
    responses = [site.api.get("/users/alice/certificates") for _ in range(LIMIT)]
    assert [r.status_code for r in responses] == [200] * LIMIT
    assert [r.headers["ratelimit-remaining"] for r in responses] == ["2", "1", "0"]
    assert {r.headers["ratelimit-limit"] for r in responses} == {str(LIMIT)}
    assert {r.headers["ratelimit-reset"] for r in responses} == {str(RESET)}


def test_the_request_past_the_limit_is_429_with_retry_after_and_a_problem(
    limited: SiteFactory,
) -> None:
    site = limited()
    for _ in range(LIMIT):
        site.api.get("/users/alice/certificates")
    response = site.api.get("/users/alice/certificates")
    problem = problem_of(response, 429, "rate-limited")
    assert response.headers["retry-after"] == str(RESET)
    assert problem["instance"] == "/api/v1/users/alice/certificates"


def test_the_429_carries_the_ratelimit_headers_with_nothing_remaining(
    limited: SiteFactory,
) -> None:
    site = limited()
    for _ in range(LIMIT):
        site.api.get("/users/alice/certificates")
    response = site.api.get("/users/alice/certificates")
    assert response.status_code == 429
    assert response.headers.get("ratelimit-limit") == str(LIMIT)
    assert response.headers.get("ratelimit-remaining") == "0"
    assert response.headers.get("ratelimit-reset") == str(RESET)


def test_every_operation_is_counted_against_the_same_allowance(limited: SiteFactory) -> None:
    site = limited()
    created = site.api.created({"user_id": "alice", "email": "alice@example.jp"})
    site.api.get(f"/enrollments/{created['id']}")
    site.api.get("/users/alice/certificates")
    problem_of(site.api.post(f"/enrollments/{created['id']}/cancel"), 429, "rate-limited")
    assert site.api.get(f"/enrollments/{created['id']}").status_code == 429


def test_a_refused_request_creates_nothing(limited: SiteFactory) -> None:
    site = limited()
    for _ in range(LIMIT):
        site.api.get("/users/alice/certificates")
    problem_of(
        site.api.create_enrollment({"user_id": "bob", "email": "bob@example.jp"}),
        429,
        "rate-limited",
    )
    assert enrollment_count(limited.services.engine, site.row.id) == 0


def test_another_sites_key_is_not_affected(limited: SiteFactory) -> None:
    spent, fresh = limited(), limited()
    for _ in range(LIMIT + 1):
        spent.api.get("/users/alice/certificates")
    response = fresh.api.get("/users/alice/certificates")
    assert response.status_code == 200
    assert response.headers["ratelimit-remaining"] == str(LIMIT - 1)


def test_another_key_of_the_same_site_is_counted_apart(limited: SiteFactory) -> None:
    site = limited()
    for _ in range(LIMIT + 1):
        site.api.get("/users/alice/certificates")
    services = limited.services
    second = limited.client(services.sites.add_key(site.name, label="second", now=NOW))
    response = second.get("/users/alice/certificates")
    assert response.status_code == 200
    assert response.headers["ratelimit-remaining"] == str(LIMIT - 1)


def test_the_allowance_is_new_in_the_next_minute(services: Services) -> None:
    with serving(with_clock(services, NOW, api_rate_limit_per_minute=LIMIT)) as this_minute:
        site = this_minute()
        for _ in range(LIMIT + 1):
            site.api.get("/users/alice/certificates")
    later = NOW + dt.timedelta(seconds=RESET)
    with serving(with_clock(services, later, api_rate_limit_per_minute=LIMIT)) as next_minute:
        response = next_minute.client(site.api_key).get("/users/alice/certificates")
    assert response.status_code == 200
    assert response.headers["ratelimit-remaining"] == str(LIMIT - 1)
    assert response.headers["ratelimit-reset"] == "60"


def test_a_request_without_a_valid_key_gets_no_ratelimit_headers(limited: SiteFactory) -> None:
    response = limited.client(None).get("/users/alice/certificates")
    problem_of(response, 401, "unauthorized")
    assert "ratelimit-remaining" not in response.headers
