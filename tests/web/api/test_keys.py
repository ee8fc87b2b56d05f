"""API keys: every kind of bad key is the same 401 with a Bearer challenge; added keys work."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pwa_server.runtime import Services
from pwa_server.sites.api_keys import new_api_key
from tests.web.api.conftest import ApiClient, Site, SiteFactory, enrollment_count, problem_of

BadKey = Callable[[Site, SiteFactory, Services], ApiClient]


def _no_authorization(site: Site, sites: SiteFactory, services: Services) -> ApiClient:
    return sites.raw(None)


def _not_bearer(site: Site, sites: SiteFactory, services: Services) -> ApiClient:
    return sites.raw(f"Basic {site.api_key}")


def _bearer_without_credentials(site: Site, sites: SiteFactory, services: Services) -> ApiClient:
    return sites.raw("Bearer ")


def _malformed(site: Site, sites: SiteFactory, services: Services) -> ApiClient:
    return sites.client("shk_not-a-key")


def _unknown_id(site: Site, sites: SiteFactory, services: Services) -> ApiClient:
    return sites.client(new_api_key().text)


def _wrong_secret(site: Site, sites: SiteFactory, services: Services) -> ApiClient:
    other_secret = new_api_key().text.rsplit("_", 1)[1]
    return sites.client(f"shk_{site.key_id}_{other_secret}")


def _revoked(site: Site, sites: SiteFactory, services: Services) -> ApiClient:
    services.sites.revoke_key(site.key_id, now=services.now())
    return site.api


BAD_KEYS: dict[str, BadKey] = {
    "no Authorization": _no_authorization,
    "another scheme": _not_bearer,
    "Bearer and nothing": _bearer_without_credentials,
    "malformed key": _malformed,
    "unknown key id": _unknown_id,
    "wrong secret": _wrong_secret,
    "revoked key": _revoked,
}


@pytest.mark.parametrize("bad_key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_a_bad_key_is_401_with_a_bearer_challenge_and_the_same_problem(
    bad_key: BadKey, site: Site, new_site: SiteFactory, services: Services
) -> None:
    response = bad_key(site, new_site, services).get("/users/alice/certificates")
    problem = problem_of(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert problem == {
        "type": "urn:shomei:problem:unauthorized",
        "title": "A valid API key is required",
        "status": 401,
        "instance": "/api/v1/users/alice/certificates",
    }


@pytest.mark.parametrize("bad_key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_a_bad_key_creates_nothing(
    bad_key: BadKey, site: Site, new_site: SiteFactory, services: Services
) -> None:
    response = bad_key(site, new_site, services).create_enrollment(
        {"user_id": "alice", "email": "alice@example.jp"}
    )
    problem_of(response, 401, "unauthorized")
    assert enrollment_count(services.engine, site.row.id) == 0


def test_the_sites_key_is_accepted(site: Site) -> None:
    response = site.api.get("/users/alice/certificates")
    assert response.status_code == 200
    assert response.json() == {"certificates": []}


def test_a_second_key_works_for_the_same_site(site: Site, new_site: SiteFactory) -> None:
    created = site.api.created({"user_id": "alice", "email": "alice@example.jp"})
    second = new_site.client(
        new_site.services.sites.add_key(site.name, label="rotation", now=new_site.services.now())
    )
    response = second.get(f"/enrollments/{created['id']}")
    assert response.status_code == 200
    assert response.json()["id"] == created["id"]


def test_the_first_key_keeps_working_after_a_second_is_added(
    site: Site, new_site: SiteFactory
) -> None:
    new_site.services.sites.add_key(site.name, label="rotation", now=new_site.services.now())
    assert site.api.get("/users/alice/certificates").status_code == 200


def test_revoking_one_key_leaves_the_sites_other_key_working(
    site: Site, new_site: SiteFactory, services: Services
) -> None:
    second = new_site.client(services.sites.add_key(site.name, label="next", now=services.now()))
    services.sites.revoke_key(site.key_id, now=services.now())
    problem_of(site.api.get("/users/alice/certificates"), 401, "unauthorized")
    assert second.get("/users/alice/certificates").status_code == 200


def test_the_bearer_scheme_is_case_insensitive(site: Site, new_site: SiteFactory) -> None:
    response = new_site.raw(f"bearer {site.api_key}").get("/users/alice/certificates")
    assert response.status_code == 200
