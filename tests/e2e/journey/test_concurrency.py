"""Twenty phones download at once with the one valid password: exactly the allowed number of
downloads (1 by default) succeed, and every certificate that left is in the database."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Engine

from tests.e2e.journey.conftest import JourneyServer
from tests.e2e.journey.flow import (
    PIXEL,
    Invitation,
    Phone,
    certificates_of,
    enrollment_row,
    heading,
    open_pkcs12,
)

PHONES = 20
ALLOWED = 1  # downloads_allowed, the seed's default


def test_twenty_concurrent_downloads_issue_exactly_the_allowed_number(
    journey_server: JourneyServer, invitation: Invitation, database: Engine, tmp_path: Path
) -> None:
    with Phone(journey_server, language="en", user_agent=PIXEL) as owner:
        credentials = owner.enroll(invitation)

    phones = [Phone(journey_server, language="en", user_agent=PIXEL) for _ in range(PHONES)]
    try:
        for phone in phones:  # each with its own session and CSRF token, before the race
            assert phone.get("/download").status_code == 200
        start = threading.Barrier(PHONES)

        def download(phone: Phone) -> httpx.Response:
            start.wait()
            return phone.download(credentials, "android")

        with ThreadPoolExecutor(max_workers=PHONES) as pool:
            responses = list(pool.map(download, phones))
    finally:
        for phone in phones:
            phone.client.close()

    # The others find the window closed (410), or, while the allowed guesses are being
    # checked, are asked to try again (429); none is locked out and none gets a certificate.
    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(200) == ALLOWED
    assert set(statuses) <= {200, 410, 429}
    for response in responses:
        if response.status_code == 410:
            assert heading(response.text) == "The download period is over"

    delivered = []
    for position, response in enumerate(r for r in responses if r.status_code == 200):
        p12 = tmp_path / f"{position}.p12"
        p12.write_bytes(response.content)
        identity = open_pkcs12(p12, credentials.download_password)
        certificate = x509.load_pem_x509_certificate(identity.certificate.read_bytes())
        delivered.append(certificate.public_bytes(Encoding.DER))
    recorded = certificates_of(database, invitation.enrollment_id)
    assert [bytes(row["certificate_der"]) for row in recorded] == delivered
    assert enrollment_row(database, invitation.enrollment_id)["downloads"] == ALLOWED
