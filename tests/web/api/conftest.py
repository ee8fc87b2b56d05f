"""The relying-site API in process: Starlette's TestClient over `create_app(services)`.

Every answer a test receives through `ApiClient` is judged against the server's own OpenAPI
document on the way in: its status must be documented for the operation, its media type
must be the documented one, and its body must validate against the documented schema (JSON
Schema 2020-12, with the document's components). A test about something else therefore
fails, naming the contract, if the server answers outside its document.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import httpx
import httpx2
import jsonschema_rs
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy import Engine, ScalarResult, func, select
from starlette.testclient import TestClient

from pwa_server.enrollment.download import Platform
from pwa_server.notify.mail import parse_stored
from pwa_server.runtime import Services
from pwa_server.sites.api_keys import parse_api_key
from pwa_server.store.sites import SiteRow
from pwa_server.store.tables import enrollments, outbox_messages
from pwa_server.web.app import create_app

API = "/api/v1"
BASE_URL = "https://localhost"
RETURN_URL = "https://relying.example/return"
PROBLEM = "application/problem+json"


# --- the OpenAPI document as the judge of every answer ------------------------------------


class ContractViolation(AssertionError):
    """An answer the OpenAPI document does not describe."""


@dataclass(frozen=True)
class Contract:
    """The OpenAPI document served at /api/v1/openapi.json."""

    document: dict[str, Any]

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        """(path template, operation) documented for a request, or None.

        A parameter is one path segment; failing that, any text (a user id may hold "/").
        """
        for parameter in ("[^/]+", ".+"):
            for template, item in self.document["paths"].items():
                pattern = re.sub(r"\\\{[^}]+\\\}", parameter, re.escape(template))
                if re.fullmatch(pattern, path) and method.lower() in item:
                    return template, item[method.lower()]
        return None

    def validator(self, schema: dict[str, Any]) -> jsonschema_rs.Validator:
        """A 2020-12 validator for `schema`, its $refs resolved in the document's components."""
        root = {**schema, "components": self.document["components"]}
        return jsonschema_rs.Draft202012Validator(root, validate_formats=True)

    def check(self, response: httpx.Response | httpx2.Response) -> None:
        """Raise ContractViolation unless the document describes `response`.

        An answer comes from Starlette's TestClient (httpx2) or from a running server (httpx).
        """
        request = response.request
        found = self.operation(request.method, request.url.path)
        if found is None:
            return  # not an operation of the document (the document itself, unknown paths)
        template, operation = found
        where = f"{request.method} {template} answered {response.status_code}"
        documented = operation["responses"].get(str(response.status_code))
        if documented is None:
            raise ContractViolation(
                f"{where}, a status the document does not list "
                f"({', '.join(operation['responses'])}): {response.text}"
            )
        content = documented.get("content")
        if content is None:
            if response.content:
                raise ContractViolation(f"{where} with a body the document does not describe")
            return
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        if media_type not in content:
            raise ContractViolation(f"{where} as {media_type}, documented as {list(content)}")
        body = response.json()
        errors = [
            f"{'/'.join(map(str, error.instance_path))}: {error.message}"
            for error in self.validator(content[media_type]["schema"]).iter_errors(body)
        ]
        if errors:
            raise ContractViolation(f"{where} with a body against its schema: {errors}: {body}")


# --- a relying site's client ----------------------------------------------------------------


class ApiClient:
    """A relying site's calls to /api/v1 with one Authorization header (or none)."""

    def __init__(
        self, http: TestClient, contract: Contract, authorization: str | None = None
    ) -> None:
        self.http = http
        self.contract = contract
        self.authorization = authorization

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | Iterator[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx2.Response:
        sent = dict(headers or {})
        if self.authorization is not None:
            sent.setdefault("authorization", self.authorization)
        if content is not None:
            sent.setdefault("content-type", "application/json")
        response = self.http.request(method, API + path, json=json, content=content, headers=sent)
        self.contract.check(response)
        return response

    def get(self, path: str, **options: Any) -> httpx2.Response:
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> httpx2.Response:
        return self.request("POST", path, **options)

    def create_enrollment(
        self, body: dict[str, Any], *, idempotency_key: str | None = None
    ) -> httpx2.Response:
        headers = {"idempotency-key": idempotency_key} if idempotency_key is not None else {}
        return self.post("/enrollments", json=body, headers=headers)

    def created(self, body: dict[str, Any], **options: Any) -> dict[str, Any]:
        """POST /enrollments that must answer 201; its body."""
        response = self.create_enrollment(body, **options)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created


@dataclass(frozen=True)
class Site:
    """A registered relying site and a client holding its first API key."""

    row: SiteRow
    api_key: str
    api: ApiClient

    @property
    def name(self) -> str:
        return self.row.name

    @property
    def key_id(self) -> str:
        parsed = parse_api_key(self.api_key)
        assert parsed is not None
        return parsed[0]


def bearer(api_key: str) -> str:
    return f"Bearer {api_key}"


class SiteFactory:
    """Registers sites with fresh names, each with a client bound to its key."""

    def __init__(self, services: Services, http: TestClient, contract: Contract) -> None:
        self.services = services
        self.http = http
        self.contract = contract

    def __call__(self, *, return_urls: tuple[str, ...] = (RETURN_URL,)) -> Site:
        created = self.services.sites.create(
            name=f"site-{secrets.token_hex(6)}",
            display_name="A relying site",
            return_urls=return_urls,
            webhook_url=None,
            now=self.services.now(),
        )
        return Site(created.site, created.api_key, self.client(created.api_key))

    def client(self, api_key: str | None) -> ApiClient:
        """A client presenting `api_key` as a bearer token (None: no Authorization)."""
        return ApiClient(self.http, self.contract, bearer(api_key) if api_key else None)

    def raw(self, authorization: str | None) -> ApiClient:
        """A client sending exactly this Authorization header."""
        return ApiClient(self.http, self.contract, authorization)


@contextlib.contextmanager
def serving(services: Services) -> Iterator[SiteFactory]:
    """The whole application over `services`, and a factory of sites calling it."""
    with TestClient(create_app(services), base_url=BASE_URL) as http:
        contract = Contract(http.get(f"{API}/openapi.json").json())
        yield SiteFactory(services, http, contract)


@pytest.fixture(scope="module")
def new_site(services: Services) -> Iterator[SiteFactory]:
    """Registers sites of the session's instance, calling the in-process application."""
    with serving(services) as factory:
        yield factory


@pytest.fixture(scope="module")
def contract(new_site: SiteFactory) -> Contract:
    return new_site.contract


@pytest.fixture(scope="module")
def http(new_site: SiteFactory) -> TestClient:
    """The application without any API key: its pages, and /api/v1 as anyone sees it."""
    return new_site.http


@pytest.fixture
def site(new_site: SiteFactory) -> Site:
    """A relying site of its own for this test."""
    return new_site()


# --- requests and what they leave behind ------------------------------------------------------


def invitation_for(user_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A POST /enrollments body for a user nobody else invited."""
    user_id = user_id or f"user-{secrets.token_hex(6)}"
    return {"user_id": user_id, "email": f"{user_id}@example.jp", **fields}


def mails_to(engine: Engine, address: str) -> list[EmailMessage]:
    """Every mail queued in the outbox for `address`, oldest first."""
    with engine.connect() as connection:
        bodies: ScalarResult[str] = connection.execute(
            select(outbox_messages.c.body)
            .where(outbox_messages.c.channel == "mail", outbox_messages.c.destination == address)
            .order_by(outbox_messages.c.id)
        ).scalars()
        return [parse_stored(body) for body in bodies]


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert part is not None, "the mail has no text/plain part"
    return str(part.get_content())


def enrollment_count(engine: Engine, site_id: int) -> int:
    """How many enrollments the site has, as the database holds them."""
    with engine.connect() as connection:
        counted = connection.execute(
            select(func.count()).select_from(enrollments).where(enrollments.c.site_id == site_id)
        )
        return int(counted.scalar_one())


def enrollment_path(created: dict[str, Any]) -> str:
    """The path of the enrollment URL, as a phone opens it (the host is the test client's)."""
    url: str = created["enrollment_url"]
    return urlsplit(url).path


def issue_certificate(services: Services, created: dict[str, Any]) -> x509.Certificate:
    """Take an enrollment the API created through the user's steps to a downloaded PKCS#12."""
    now = services.now()
    services.enrollments.verify_one_time_password(
        created["id"], created["one_time_password"], now=now
    )
    issued = services.enrollments.register_secret(
        created["id"], question="first-pet", answer="Pochi", answer_confirm="Pochi", now=now
    )
    content = services.downloads.download(
        certificate_user_id=issued.certificate_user_id,
        download_password=issued.download_password,
        platform=Platform.ANDROID,
        now=now,
    ).content
    _, certificate, _ = pkcs12.load_key_and_certificates(content, issued.download_password.encode())
    assert certificate is not None
    return certificate


def serial_of(certificate: x509.Certificate) -> str:
    """The serial as the API writes it: lower-case hexadecimal."""
    return format(certificate.serial_number, "x")


def problem_of(response: httpx2.Response, status: int, slug: str) -> dict[str, Any]:
    """The RFC 9457 body of a refusal, after checking its status, media type and type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:shomei:problem:{slug}"
    assert body["status"] == status
    return body


def without_instance(problem: dict[str, Any]) -> dict[str, Any]:
    """A problem document less its `instance` (the request's own path)."""
    return {key: value for key, value in problem.items() if key != "instance"}


def with_clock(services: Services, now: dt.datetime, **settings: Any) -> Services:
    """The session's services with a fixed clock and, optionally, other settings."""
    changed = services.settings.model_copy(update=settings) if settings else services.settings
    return dataclasses.replace(services, settings=changed, clock=lambda: now)
