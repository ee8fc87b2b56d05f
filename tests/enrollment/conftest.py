"""Enrollment services over an empty database (SQLite and PostgreSQL) and the session's CAs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine

from pwa_server.enrollment.administration import EnrollmentAdministration
from pwa_server.enrollment.download import Delivery, Downloads, Platform
from pwa_server.enrollment.policy import EnrollmentPolicy
from pwa_server.enrollment.service import EnrollmentService, Invitation
from pwa_server.pki.authority import load_authority
from pwa_server.pki.hierarchy import record_authority
from pwa_server.pki.issuance import Issuance, sign_certificate
from pwa_server.pki.ocsp import OcspResponder, OcspResponders
from pwa_server.pki.packaging.signing_identity import load_signing_identity
from pwa_server.pki.profiles import CertificateProfile
from pwa_server.pki.tls_identity import TlsFiles
from pwa_server.runtime import (
    Services,
    configuration_profile_identifier_prefix,
    enrollment_administration,
    enrollment_service,
    publication_urls,
)
from pwa_server.store.database import create_database_engine, migrate
from pwa_server.vocabulary import AuthorityRole

START = dt.datetime(2026, 4, 1, 9, 0, tzinfo=dt.UTC)


@dataclass
class Enrolling:
    """The enrollment services on one database, and the policy they apply."""

    engine: Engine
    service: EnrollmentService
    administration: EnrollmentAdministration
    downloads: Downloads
    policy: EnrollmentPolicy
    ocsp: OcspResponders

    def invite(self, user_id: str = "alice", now: dt.datetime = START) -> Invitation:
        return self.service.create(user_id=user_id, email=f"{user_id}@example.jp", now=now)

    def download_from(
        self, client: str, cuid: str, password: str, now: dt.datetime = START
    ) -> Delivery:
        """An Android download sent from the address `client`."""
        return self.downloads.download(
            certificate_user_id=cuid,
            download_password=password,
            platform=Platform.ANDROID,
            now=now,
            client=client,
        )

    def signed_by_issuing(
        self, common_name: str, profile: CertificateProfile, lifetime: dt.timedelta
    ) -> x509.Certificate:
        """A certificate the issuing CA signs from START, that nothing records."""
        issuing = self.downloads.issuing
        return sign_certificate(
            issuing.private_key,
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
            public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
            issuer_name=issuing.certificate.subject,
            issuer_public_key=issuing.private_key.public_key(),
            profile=profile,
            not_before=START,
            not_after=START + lifetime,
            alt_names=[common_name] if profile is CertificateProfile.TLS_SERVER else [],
        )

    def ready_to_download(
        self, user_id: str = "alice", now: dt.datetime = START
    ) -> tuple[Invitation, str]:
        """An invitation taken through the one-time password and the secret question."""
        invitation = self.invite(user_id, now)
        self.service.verify_one_time_password(
            invitation.enrollment_id, invitation.one_time_password, now=now
        )
        issued = self.service.register_secret(
            invitation.enrollment_id,
            question="first-pet",
            answer="Pochi",
            answer_confirm="pochi",
            now=now,
        )
        return invitation, issued.download_password


def _copy_authorities(engine: Engine, services: Services) -> None:
    """Record the session's CAs (same token keys) in a fresh database."""
    with engine.begin() as connection:
        parent = None
        for authority in (services.root, services.issuing, services.ocsp.responder):
            parent = record_authority(
                connection,
                name=authority.name,
                role=authority.role,
                parent_id=parent,
                ref=authority.key_ref,
                certificate=authority.certificate,
                now=START,
            )


@pytest.fixture
def enrolling(database_url: str, services: Services) -> Iterator[Enrolling]:
    """Enrollment services on an empty database of each kind."""
    engine = create_database_engine(database_url)
    try:
        migrate(engine)
        _copy_authorities(engine, services)
        settings = services.settings
        policy = EnrollmentPolicy.from_settings(settings)
        files = TlsFiles(settings.tls_dir)
        issuing = load_authority(engine, services.token, AuthorityRole.ISSUING)
        downloads = Downloads(
            engine,
            policy,
            issuance=Issuance(
                issuing,
                organization=policy.organization,
                urls=publication_urls(settings, issuing),
            ),
            root=load_authority(engine, services.token, AuthorityRole.ROOT),
            signing=load_signing_identity(files.certificate_chain, files.private_key),
            identifier_prefix=configuration_profile_identifier_prefix(settings),
            hashes=services.downloads.hashes,
        )
        responder = OcspResponders(
            [
                OcspResponder(
                    engine,
                    downloads.issuing,
                    load_authority(engine, services.token, AuthorityRole.OCSP),
                )
            ]
        )
        hashes = services.downloads.hashes
        yield Enrolling(
            engine=engine,
            service=enrollment_service(settings, engine, hashes),
            administration=enrollment_administration(settings, engine, hashes),
            downloads=downloads,
            policy=policy,
            ocsp=responder,
        )
    finally:
        engine.dispose()
