"""What a relying site may do through the API, each call confined to the site's own
enrollments and certificates: another site's look exactly like ones that do not exist."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from pwa_server.audit import Actor
from pwa_server.enrollment import revocation
from pwa_server.enrollment.administration import EnrollmentAdministration
from pwa_server.enrollment.errors import (
    CertificateNotFoundError,
    EnrollmentNotFoundError,
    InvalidInputError,
)
from pwa_server.enrollment.service import EnrollmentService, Invitation
from pwa_server.sites.errors import IdempotencyKeyReusedError
from pwa_server.sites.registry import allowed_return_url
from pwa_server.store import sites as site_store
from pwa_server.store.certificates import SiteCertificateRow, certificates_of_site
from pwa_server.store.enrollments import EnrollmentRow, enrollment_by_id
from pwa_server.store.sites import SiteRow
from pwa_server.vocabulary import KeyProfile

# A retry with the same Idempotency-Key is recognised for a day (as Stripe's API does).
IDEMPOTENCY_WINDOW = dt.timedelta(hours=24)
MAX_IDEMPOTENCY_KEY_LENGTH = 255


@dataclass(frozen=True)
class EnrollmentRequest:
    """A site's request for a new enrollment, as parsed at the edge."""

    user_id: str
    email: str
    display_name: str | None = None
    profile: KeyProfile | None = None
    return_url: str | None = None

    def fingerprint(self) -> str:
        """What identifies the request for Idempotency-Key comparison."""
        canonical = json.dumps(self.__dict__, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Created:
    """A new enrollment, or the one an earlier request with the same key made (`replayed`)."""

    invitation: Invitation
    enrollment: EnrollmentRow
    replayed: bool


class SiteEnrollments:
    """The enrollment operations open to relying sites."""

    def __init__(
        self,
        engine: Engine,
        service: EnrollmentService,
        administration: EnrollmentAdministration,
        *,
        issuer_id: int,
    ) -> None:
        self.engine = engine
        self.service = service
        self.administration = administration
        self.issuer_id = issuer_id

    def create(
        self,
        site: SiteRow,
        request: EnrollmentRequest,
        *,
        idempotency_key: str | None,
        now: dt.datetime,
    ) -> Created:
        """Create an enrollment for the site's user (the mail with the URL is queued).

        With an Idempotency-Key seen before for the same request, the enrollment made then
        is returned with a fresh one-time password (the first is stored only as a hash, and
        the caller never got it); the same key with a different request is refused.
        """
        profile = request.profile or site.default_profile
        if request.return_url is not None:
            allowed_return_url(site, request.return_url)
        if idempotency_key is not None:
            _check_idempotency_key(idempotency_key)
            earlier = self._earlier(site, idempotency_key, request, now)
            if earlier is not None:
                return earlier
        try:
            with self.engine.begin() as connection:
                invitation = self.service.create(
                    user_id=request.user_id,
                    email=request.email,
                    display_name=request.display_name,
                    profile=profile,
                    site_id=site.id,
                    return_url=request.return_url,
                    now=now,
                    connection=connection,
                    actor=Actor.site(site.name),
                )
                # After the invitation's audit event: safe, since no transaction holds an
                # idempotency key while it waits for the audit head.
                if idempotency_key is not None:
                    site_store.insert_idempotency_key(
                        connection,
                        site_id=site.id,
                        key=idempotency_key,
                        request_sha256=request.fingerprint(),
                        enrollment_id=invitation.enrollment_id,
                        now=now,
                    )
        except IntegrityError:
            # A concurrent request with the same key committed first: answer as its replay.
            if idempotency_key is not None:
                earlier = self._earlier(site, idempotency_key, request, now)
                if earlier is not None:
                    return earlier
            raise
        return Created(invitation, self.enrollment(site, invitation.enrollment_id), False)

    def _earlier(
        self, site: SiteRow, key: str, request: EnrollmentRequest, now: dt.datetime
    ) -> Created | None:
        with self.engine.begin() as connection:
            site_store.forget_idempotency_keys(connection, before=now - IDEMPOTENCY_WINDOW)
            earlier = site_store.idempotency_key(connection, site.id, key)
        if earlier is None:
            return None
        if earlier.request_sha256 != request.fingerprint():
            raise IdempotencyKeyReusedError(key)
        invitation = self.administration.new_one_time_password(
            earlier.enrollment_id, now=now, actor=Actor.site(site.name)
        )
        return Created(invitation, self.enrollment(site, earlier.enrollment_id), True)

    def enrollment(self, site: SiteRow, enrollment_id: str) -> EnrollmentRow:
        """The site's enrollment `enrollment_id`."""
        with self.engine.connect() as connection:
            row = enrollment_by_id(connection, enrollment_id)
        if row is None or row.site_id != site.id:
            raise EnrollmentNotFoundError(enrollment_id)
        return row

    def reissue(self, site: SiteRow, enrollment_id: str, *, now: dt.datetime) -> EnrollmentRow:
        """The administrator's reissue (seed 003), for the site's enrollment."""
        self.enrollment(site, enrollment_id)
        return self.administration.reissue(enrollment_id, now=now, actor=Actor.site(site.name))

    def unlock(self, site: SiteRow, enrollment_id: str, *, now: dt.datetime) -> EnrollmentRow:
        """Unlock the site's enrollment after too many wrong secrets."""
        self.enrollment(site, enrollment_id)
        return self.administration.unlock(enrollment_id, now=now, actor=Actor.site(site.name))

    def cancel(self, site: SiteRow, enrollment_id: str, *, now: dt.datetime) -> EnrollmentRow:
        """Cancel the site's enrollment: its link stops working."""
        self.enrollment(site, enrollment_id)
        return self.administration.cancel(enrollment_id, now=now, actor=Actor.site(site.name))

    def certificates(self, site: SiteRow, user_id: str) -> list[SiteCertificateRow]:
        """Every certificate issued for the site's user, newest first."""
        with self.engine.connect() as connection:
            return certificates_of_site(connection, site.id, user_id=user_id)

    def revoke(
        self, site: SiteRow, serial: str, *, reason: str, now: dt.datetime
    ) -> SiteCertificateRow:
        """Revoke one of the site's certificates with an RFC 5280 reason."""
        revoked = revocation.revoke(
            self.engine,
            issuer_id=self.issuer_id,
            serial=serial,
            reason=reason,
            now=now,
            site_id=site.id,
            actor=Actor.site(site.name),
        )
        with self.engine.connect() as connection:
            rows = certificates_of_site(
                connection, site.id, issuer_id=self.issuer_id, serial=revoked.serial
            )
        if not rows:
            raise CertificateNotFoundError(serial)
        return rows[0]


def _check_idempotency_key(key: str) -> None:
    if (
        not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH
        or not key.isprintable()
        or not key.isascii()
    ):
        raise InvalidInputError(
            "Idempotency-Key", f"1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters"
        )
