"""GET /api/v1/openapi.json: an OpenAPI 3.1 document of every route under /api/v1, whose schemas
every answer of the API validates against (conftest's ApiClient checks each one)."""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx2
import jsonschema_rs
import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from pwa_server.runtime import Services
from tests.web.api.conftest import (
    API,
    Contract,
    ContractViolation,
    SiteFactory,
    invitation_for,
    issue_certificate,
    serial_of,
)

# The operations of issue 5, by their operationId in the document.
ENROLLMENT_AND_CERTIFICATE_OPERATIONS = {
    "createEnrollment",
    "getEnrollment",
    "reissueEnrollment",
    "unlockEnrollment",
    "cancelEnrollment",
    "listUserCertificates",
    "revokeCertificate",
}


def _documented(contract: Contract) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in contract.document["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch")
    }


def test_the_document_is_openapi_3_1_0_served_without_a_key(http: TestClient) -> None:
    response = http.get(f"{API}/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["openapi"] == "3.1.0"


def _served(http: TestClient) -> set[tuple[str, str]]:
    """(method, path in OpenAPI form) of every route of the app under /api/v1."""
    app = http.app
    assert isinstance(app, Starlette)
    return {
        (method, re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route.path))
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith(f"{API}/")
        for method in route.methods or ()
        if method != "HEAD"
    }


def test_every_route_of_the_app_under_api_v1_appears_in_the_document(
    http: TestClient, contract: Contract
) -> None:
    assert _served(http) - _documented(contract) == set()


def test_every_documented_operation_is_a_route_of_the_app(
    http: TestClient, contract: Contract
) -> None:
    assert _documented(contract) - _served(http) == set()


def test_every_schema_of_the_document_is_valid_json_schema_2020_12(contract: Contract) -> None:
    schemas = contract.document["components"]["schemas"]
    assert schemas
    for name, schema in schemas.items():
        assert jsonschema_rs.meta.is_valid(
            {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
        ), name


def test_every_reference_in_the_document_resolves(contract: Contract) -> None:
    def references(node: Any) -> set[str]:
        if isinstance(node, dict):
            found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
            return found.union(*(references(value) for value in node.values()))
        if isinstance(node, list):
            return set().union(*(references(value) for value in node))
        return set()

    refs = references(contract.document)
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/")
        assert (
            ref.removeprefix("#/components/schemas/") in contract.document["components"]["schemas"]
        ), ref


def test_every_enrollment_and_certificate_operation_requires_the_bearer_key(
    contract: Contract,
) -> None:
    assert contract.document["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert contract.document["security"] == [{"apiKey": []}]
    operations = {
        operation["operationId"]: operation
        for item in contract.document["paths"].values()
        for operation in item.values()
    }
    for operation_id in ENROLLMENT_AND_CERTIFICATE_OPERATIONS:
        operation = operations[operation_id]
        assert operation.get("security") != [], f"{operation_id} is public"
        assert "401" in operation["responses"], operation_id


# --- the judge of answers (conftest's Contract) is not vacuous ---------------------------


def _answer(
    method: str, path: str, status: int, body: Any, media_type: str = "application/json"
) -> httpx2.Response:
    request = httpx2.Request(method, f"https://localhost{API}{path}")
    return httpx2.Response(status, json=body, headers={"content-type": media_type}, request=request)


@pytest.mark.parametrize(
    ("answer", "complaint"),
    [
        (_answer("GET", "/enrollments/abc", 200, {"id": "abc"}), "against its schema"),
        (_answer("GET", "/enrollments/abc", 418, {}), "does not list"),
        (
            _answer(
                "GET",
                "/enrollments/abc",
                404,
                {"type": "urn:shomei:problem:not-found", "title": "x", "status": 404},
            ),
            "documented as",
        ),
        (
            _answer(
                "GET",
                "/users/alice/certificates",
                200,
                {"certificates": [{"serial": "1"}]},
            ),
            "against its schema",
        ),
    ],
    ids=["missing fields", "undocumented status", "wrong media type", "nested item"],
)
def test_the_judge_of_answers_refuses_what_the_document_does_not_describe(
    contract: Contract, answer: httpx2.Response, complaint: str
) -> None:
    with pytest.raises(ContractViolation, match=complaint):
        contract.check(answer)


def test_a_tour_of_every_operation_answers_within_the_document(
    new_site: SiteFactory, services: Services, contract: Contract
) -> None:
    """Each enrollment and certificate operation, in success and in refusal, judged."""
    site = new_site()
    api = site.api
    body = invitation_for()
    first = api.create_enrollment(body, idempotency_key="tour")  # 201
    created = first.json()
    downloaded = api.created(invitation_for())
    serial = serial_of(issue_certificate(services, downloaded))
    unknown = secrets.token_urlsafe(16)
    answers = [
        first,
        api.create_enrollment(body, idempotency_key="tour"),  # 200
        api.create_enrollment(invitation_for(), idempotency_key="tour"),  # 422 reused
        api.post("/enrollments", content=b"{"),  # 400
        new_site.client(None).get(f"/enrollments/{created['id']}"),  # 401
        api.get(f"/enrollments/{created['id']}"),
        api.get(f"/enrollments/{unknown}"),
        api.post(f"/enrollments/{downloaded['id']}/reissue"),
        api.post(f"/enrollments/{created['id']}/reissue"),  # 409
        api.post(f"/enrollments/{created['id']}/unlock"),  # 409
        api.post(f"/enrollments/{unknown}/unlock"),  # 404
        api.post(f"/enrollments/{created['id']}/cancel"),
        api.get(f"/users/{downloaded['user_id']}/certificates"),
        api.post(f"/certificates/{serial}/revoke", json={"reason": "superseded"}),
        api.post(f"/certificates/{serial}/revoke", json={"reason": "superseded"}),  # 409
        api.post(f"/certificates/{serial}/revoke", json={"reason": "certificateHold"}),  # 422
        api.post(f"/certificates/{secrets.token_hex(8)}/revoke", json={}),  # 404
    ]
    toured = set()
    for answer in answers:
        contract.check(answer)
        found = contract.operation(answer.request.method, answer.request.url.path)
        assert found is not None
        toured.add(found[1]["operationId"])
    assert toured == ENROLLMENT_AND_CERTIFICATE_OPERATIONS
    assert {answer.status_code for answer in answers} >= {200, 201, 400, 401, 404, 409, 422}
