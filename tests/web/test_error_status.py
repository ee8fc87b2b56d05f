"""One status for each kind of error: a page and an API problem document for the same domain
error agree, because both take it from the one table in web/error_status.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from pwa_server.enrollment.errors import (
    CertificateAlreadyRevokedError,
    CertificateNotFoundError,
    DownloadWindowClosedError,
    EnrollmentCancelledError,
    EnrollmentLockedError,
    InvalidInputError,
    TooManyAttemptsAtOnceError,
    WrongStepError,
)
from pwa_server.errors import ErrorKind, ShomeiError
from pwa_server.runtime import Services
from pwa_server.sites.errors import ReturnAssertionReplayedError
from pwa_server.web.api import problems
from pwa_server.web.app import create_app
from pwa_server.web.error_status import STATUS

ERRORS: dict[str, ShomeiError] = {
    "window-closed": DownloadWindowClosedError("shm-abcdefgh"),
    "cancelled": EnrollmentCancelledError("shm-abcdefgh"),
    "locked": EnrollmentLockedError("shm-abcdefgh"),
    "wrong-step": WrongStepError("the one-time password was used already"),
    "invalid": InvalidInputError("answer", "empty"),
    "no-certificate": CertificateNotFoundError("1f"),
    "revoked-already": CertificateAlreadyRevokedError("1f"),
    "at-once": TooManyAttemptsAtOnceError(),
    "replayed": ReturnAssertionReplayedError(),
}


@pytest.fixture(scope="module")
def raising(services: Services) -> Iterator[TestClient]:
    """The application, with one more page that raises the domain error its path names."""

    async def raise_error(request: Request) -> Response:
        raise ERRORS[request.path_params["name"]]

    app = create_app(services)
    app.router.routes.append(Route("/raise/{name}", raise_error))
    with TestClient(app, base_url="https://testserver") as client:
        yield client


def test_every_kind_of_error_has_one_status() -> None:
    assert set(STATUS) == set(ErrorKind)


@pytest.mark.parametrize("name", ERRORS)
def test_a_page_and_a_problem_for_the_same_error_have_the_status_of_its_kind(
    raising: TestClient, name: str
) -> None:
    error = ERRORS[name]

    page = raising.get(f"/raise/{name}", headers={"accept": "text/html"})
    problem = problems.for_error(error, instance="/api/v1/x")

    assert page.status_code == problem.status_code == STATUS[error.kind]
    assert page.headers["content-type"].startswith("text/html")
    assert "Traceback" not in page.text


def test_the_closed_download_window_is_410_gone_in_both_and_keeps_its_problem_type(
    raising: TestClient,
) -> None:
    page = raising.get("/raise/window-closed", headers={"accept": "text/html"})
    problem = problems.for_error(ERRORS["window-closed"], instance="/api/v1/x")

    assert page.status_code == problem.status_code == 410
    assert bytes(problem.body).startswith(b'{"type":"urn:shomei:problem:wrong-state"')


def test_an_error_the_api_does_not_name_is_a_problem_of_its_kind() -> None:
    class DependencyGoneError(ShomeiError):
        kind = ErrorKind.UNAVAILABLE

    problem = problems.for_error(DependencyGoneError("the database went away"), instance="/x")

    assert problem.status_code == 503
    assert bytes(problem.body).startswith(b'{"type":"urn:shomei:problem:unavailable"')
