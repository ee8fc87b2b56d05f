"""Back to the site: an enrollment a relying site made with a return URL ends, after a good
installation check over mutual TLS, with a form that posts a signed assertion to that URL;
the assertion verifies with the keys the server publishes and names the right person."""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Engine

from pwa_server.runtime import site_registry
from pwa_server.web.middleware.security_headers import CONTENT_SECURITY_POLICY
from tests.conftest import openssl
from tests.e2e.journey.conftest import JourneyServer
from tests.e2e.journey.flow import (
    PIXEL,
    DownloadCredentials,
    Identity,
    Invitation,
    Phone,
    assert_person_page,
    check,
    check_status_of,
    enrollment_row,
    open_pkcs12,
)

RETURN_URL = "https://shop.example.jp/return?from=shomei&step=2"
RETURN_ORIGIN = "https://shop.example.jp"
DISPLAY_NAME = "例のショップ"
USER_ID = "shop-user-1001"


@dataclass(frozen=True)
class Returned:
    """One person's enrollment for the site, and what the installation check answered."""

    site_name: str
    invitation: Invitation
    credentials: DownloadCredentials
    certificate: x509.Certificate
    json_check: httpx.Response
    page: httpx.Response
    english_page: httpx.Response


_INVITE_FOR_SITE = """
import datetime as dt, json, sys
from pwa_server.runtime import open_services
from pwa_server.settings import load_settings

services = open_services(load_settings())
try:
    created = services.enrollments.create(
        user_id=sys.argv[1], email=sys.argv[2], site_id=int(sys.argv[3]),
        return_url=sys.argv[4], now=dt.datetime.now(dt.UTC),
    )
finally:
    services.close()
print(json.dumps({
    "enrollment_id": created.enrollment_id, "enrollment_url": created.enrollment_url,
    "one_time_password": created.one_time_password,
    "expires_at": created.expires_at.isoformat(),
}))
"""


@pytest.fixture(scope="module")
def returned(
    journey_server: JourneyServer, database: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Returned:
    settings = journey_server.settings
    now = dt.datetime.now(dt.UTC)
    # What the site's API does, on the server's database.
    site = (
        site_registry(settings, database)
        .create(
            name=f"shop-{secrets.token_hex(3)}",
            display_name=DISPLAY_NAME,
            return_urls=(RETURN_URL, "https://shop.example.jp/other"),
            now=now,
        )
        .site
    )
    # The one-time password is hashed with the server's token key: in a process of its own.
    made = journey_server.shomei_python(
        _INVITE_FOR_SITE, USER_ID, "shopper@example.jp", str(site.id), RETURN_URL
    )
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    invitation = Invitation(
        created["enrollment_id"],
        created["enrollment_url"],
        created["one_time_password"],
        created["expires_at"],
        "shopper@example.jp",
    )
    directory = tmp_path_factory.mktemp("return")
    with Phone(journey_server, language="ja", user_agent=PIXEL) as phone:
        credentials = phone.enroll(invitation)
        download = phone.download(credentials, "android")
    assert download.status_code == 200, download.text
    p12 = directory / "shop.p12"
    p12.write_bytes(download.content)
    identity = open_pkcs12(p12, credentials.download_password)
    certificate = x509.load_pem_x509_certificate(identity.certificate.read_bytes())
    return Returned(
        site.name,
        invitation,
        credentials,
        certificate,
        check(journey_server, identity),
        check(journey_server, identity, as_json=False, language="ja"),
        check(journey_server, identity, as_json=False, language="en"),
    )


def published_keys(server: JourneyServer) -> httpx.Response:
    with server.client() as client:
        return client.get(f"{server.base_url}/api/v1/assertion-keys")


def verified_claims(server: JourneyServer, assertion: str, site_name: str) -> dict[str, Any]:
    """The assertion checked as a site would: the key by kid from the published JWKS."""
    kid = jwt.get_unverified_header(assertion)["kid"]
    keys = published_keys(server).json()["keys"]
    [jwk] = [key for key in keys if key["kid"] == kid]
    claims: dict[str, Any] = jwt.decode(
        assertion,
        jwt.PyJWK(jwk).key,
        algorithms=["ES256"],
        audience=site_name,
        issuer=server.settings.effective_public_url,
        options={"require": ["exp", "iat", "nbf", "jti", "sub"]},
    )
    return claims


def return_form(page: str) -> tuple[str, str, str]:
    """(action, assertion, button text) of the page's return form."""
    form = re.search(
        r'<form id="return-to-site" method="post" action="([^"]*)">(.*?)</form>', page, re.S
    )
    assert form, "the page has no return form"
    assertion = re.search(r'<input type="hidden" name="assertion" value="([^"]*)">', form.group(2))
    button = re.search(r"<button[^>]*>(.*?)</button>", form.group(2), re.S)
    assert assertion
    assert button
    return (
        html.unescape(form.group(1)),
        html.unescape(assertion.group(1)),
        html.unescape(button.group(1)).strip(),
    )


def form_action(response: httpx.Response) -> list[str]:
    policy = response.headers["content-security-policy"]
    [directive] = [d.strip() for d in policy.split(";") if d.strip().startswith("form-action ")]
    return directive.split()[1:]


def test_check_answers_ok_with_the_return_url_and_an_assertion(returned: Returned) -> None:
    body = returned.json_check.json()

    assert body["status"] == "ok"
    assert body["certificate_user_id"] == returned.credentials.certificate_user_id
    assert body["return_url"] == RETURN_URL
    assert body["assertion"].count(".") == 2


def test_the_enrollment_is_installed(returned: Returned, database: Engine) -> None:
    assert enrollment_row(database, returned.invitation.enrollment_id)["status"] == "installed"


def test_the_assertion_verifies_against_the_published_keys_and_names_the_person(
    journey_server: JourneyServer, returned: Returned
) -> None:
    claims = verified_claims(
        journey_server, returned.json_check.json()["assertion"], returned.site_name
    )

    assert claims["sub"] == USER_ID
    assert claims["certificate_user_id"] == returned.credentials.certificate_user_id
    assert claims["serial"] == format(returned.certificate.serial_number, "x")
    thumbprint = base64.urlsafe_b64decode(claims["x5t#S256"] + "=")
    assert thumbprint == returned.certificate.fingerprint(hashes.SHA256())
    assert claims["exp"] - claims["iat"] == journey_server.settings.return_assertion_seconds


def test_the_assertion_for_one_site_does_not_verify_for_another(
    journey_server: JourneyServer, returned: Returned
) -> None:
    with pytest.raises(jwt.InvalidAudienceError):
        verified_claims(journey_server, returned.json_check.json()["assertion"], "another-site")


def test_the_page_offers_the_way_back_in_japanese_first(
    journey_server: JourneyServer, returned: Returned
) -> None:
    assert_person_page(returned.page)
    assert check_status_of(returned.page.text) == "ok"
    action, assertion, button = return_form(returned.page.text)

    assert action == RETURN_URL
    assert button == f"{DISPLAY_NAME}に戻る"
    claims = verified_claims(journey_server, assertion, returned.site_name)
    assert claims["sub"] == USER_ID
    assert claims["serial"] == format(returned.certificate.serial_number, "x")


def test_the_page_in_english_says_return_to_the_site(returned: Returned) -> None:
    _, _, button = return_form(returned.english_page.text)

    assert button == f"Return to {DISPLAY_NAME}"


def test_each_check_makes_a_new_assertion(returned: Returned) -> None:
    _, on_page, _ = return_form(returned.page.text)
    _, in_english, _ = return_form(returned.english_page.text)
    ids = {
        jwt.decode(token, options={"verify_signature": False})["jti"]
        for token in (on_page, in_english, returned.json_check.json()["assertion"])
    }
    assert len(ids) == 3


def test_the_page_may_post_forms_to_the_return_origin(returned: Returned) -> None:
    assert form_action(returned.page) == ["'self'", RETURN_ORIGIN]
    assert returned.page.headers["cache-control"] == "no-store"
    assert "x-shomei-form-action" not in returned.page.headers


def test_only_that_page_widens_form_action(
    journey_server: JourneyServer, returned: Returned
) -> None:
    with journey_server.client() as client:
        others = [
            client.get(f"{journey_server.base_url}/"),
            client.get(f"{journey_server.check_url}/check", headers={"accept": "text/html"}),
            published_keys(journey_server),
        ]
    for response in [*others, returned.json_check]:
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert form_action(response) == ["'self'"]


def test_published_keys_are_a_cacheable_jwks_whose_chain_leads_to_our_root(
    journey_server: JourneyServer, root_pem: Path, tmp_path: Path
) -> None:
    response = published_keys(journey_server)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["content-type"].startswith("application/jwk-set+json")
    [key] = response.json()["keys"]
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
    assert "d" not in key
    signer, issuing = (tmp_path / name for name in ("signer.pem", "issuing.pem"))
    for path, der in zip((signer, issuing), key["x5c"], strict=True):
        certificate = x509.load_der_x509_certificate(base64.b64decode(der))
        path.write_bytes(certificate.public_bytes(Encoding.PEM))
    verified = openssl("verify", "-CAfile", root_pem, "-untrusted", issuing, signer)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert jwt.PyJWK(key).key == x509.load_pem_x509_certificate(signer.read_bytes()).public_key()


def test_a_certificate_without_a_site_gets_no_way_back(
    journey_server: JourneyServer, invitation: Invitation, tmp_path: Path
) -> None:
    with Phone(journey_server, language="en", user_agent=PIXEL) as phone:
        credentials = phone.enroll(invitation)
        download = phone.download(credentials, "android")
    (tmp_path / "plain.p12").write_bytes(download.content)
    identity: Identity = open_pkcs12(tmp_path / "plain.p12", credentials.download_password)

    body = check(journey_server, identity).json()
    page = check(journey_server, identity, as_json=False)

    assert body["status"] == "ok"
    assert "return_url" not in body
    assert "assertion" not in body
    assert 'id="return-to-site"' not in page.text
    assert form_action(page) == ["'self'"]
