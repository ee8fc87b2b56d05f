"""Return assertions: after a good installation check, the person goes back to the site that
sent them with a short-lived ES256 JWT, signed by a key in the token.

The site verifies it with the published JWKS (each key with its certificate chain in `x5c`),
or redeems it through the API, which also makes sure it is used once.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from hsm import Token
from pwa_server.pki.authority import Authority, AuthorityError, load_authority
from pwa_server.sites.errors import (
    ReturnAssertionExpiredError,
    ReturnAssertionInvalidError,
    ReturnAssertionReplayedError,
    ReturnUrlNotAllowedError,
)
from pwa_server.sites.registry import allowed_return_url
from pwa_server.store.certificates import certificate_row
from pwa_server.store.enrollments import enrollment_by_id
from pwa_server.store.sites import site_by_id
from pwa_server.store.tables import certificate_authorities, redeemed_assertions
from pwa_server.vocabulary import AccountStatus, AuthorityRole, AuthorityStatus

ALGORITHM = "ES256"
# The most a verifier's clock may differ from ours: exp and nbf are judged with this margin.
CLOCK_SKEW = dt.timedelta(seconds=30)
MAX_ASSERTION_LENGTH = 4096  # ours are ~700 characters; refuse anything far larger unread
_JTI_LENGTH = 64  # redeemed_assertions.jti
_REQUIRED = ["iss", "aud", "sub", "iat", "nbf", "exp", "jti"]


@dataclass(frozen=True)
class AssertionClaims:
    """What a verified return assertion says."""

    issuer: str  # iss: our public URL
    site_name: str  # aud
    user_id: str  # sub: the site's own user id of the enrollment
    certificate_user_id: str
    serial: str  # lower-case hex, as the certificate's serial number
    certificate_sha256: str  # x5t#S256: base64url SHA-256 of the certificate's DER
    issued_at: dt.datetime
    not_before: dt.datetime
    expires_at: dt.datetime
    jti: str

    def as_claims(self) -> dict[str, Any]:
        """The JWT claim set, under the names the token carries."""
        return {
            "iss": self.issuer,
            "aud": self.site_name,
            "sub": self.user_id,
            "certificate_user_id": self.certificate_user_id,
            "serial": self.serial,
            "x5t#S256": self.certificate_sha256,
            "iat": int(self.issued_at.timestamp()),
            "nbf": int(self.not_before.timestamp()),
            "exp": int(self.expires_at.timestamp()),
            "jti": self.jti,
        }


@dataclass(frozen=True)
class ReturnToSite:
    """Where the check page sends the person back, with the assertion the form carries."""

    site_name: str
    site_display_name: str
    return_url: str
    assertion: str


@dataclass(frozen=True)
class PublishedKey:
    """A signing key as the JWKS shows it: the public key and its certificate chain."""

    kid: str
    public_key: ec.EllipticCurvePublicKey
    chain: tuple[x509.Certificate, ...]  # the signer's certificate, then its issuing CA's

    def jwk(self) -> dict[str, Any]:
        return {
            **_ec_members(self.public_key),
            "kid": self.kid,
            "use": "sig",
            "alg": ALGORITHM,
            "x5c": [
                base64.b64encode(certificate.public_bytes(Encoding.DER)).decode("ascii")
                for certificate in self.chain
            ],
            "x5t#S256": certificate_thumbprint(self.chain[0]),
        }


class AssertionSigner:
    """Signs return assertions with the token key of `signer`; verifies and redeems them.

    `published` are the keys whose assertions are accepted, the signer's first (after a
    renewal, the previous signer's too, while its certificate is valid).
    """

    def __init__(
        self,
        signer: Authority,
        published: Sequence[PublishedKey],
        *,
        issuer: str,
        lifetime: dt.timedelta,
    ) -> None:
        if not published or published[0].public_key != signer.private_key.public_key():
            raise ValueError("the signer's own key must be the first published key")
        self._signer = signer
        self.kid = published[0].kid
        self.issuer = issuer
        self.lifetime = lifetime
        self._published = {key.kid: key for key in published}
        self._jwks = {"keys": [key.jwk() for key in published]}

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set that sites verify assertions with (RFC 7517)."""
        return self._jwks

    def sign(
        self,
        *,
        site_name: str,
        user_id: str,
        certificate: x509.Certificate,
        certificate_user_id: str,
        now: dt.datetime,
    ) -> str:
        """A fresh assertion about `certificate`, for the site `site_name`."""
        issued_at = int(now.timestamp())
        claims = {
            "iss": self.issuer,
            "aud": site_name,
            "sub": user_id,
            "certificate_user_id": certificate_user_id,
            "serial": format(certificate.serial_number, "x"),
            "x5t#S256": certificate_thumbprint(certificate),
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + int(self.lifetime.total_seconds()),
            "jti": secrets.token_urlsafe(24),
        }
        return jwt.encode(
            claims, self._signer.private_key, algorithm=ALGORITHM, headers={"kid": self.kid}
        )

    def return_to_site(
        self, engine: Engine, issuing: Authority, certificate: x509.Certificate, *, now: dt.datetime
    ) -> ReturnToSite | None:
        """Where a certificate of `issuing` that passed the installation check goes back to.

        Only when its enrollment was made by an active site with a return URL that is still
        on the site's allow list; None otherwise.
        """
        serial = format(certificate.serial_number, "x")
        with engine.connect() as connection:
            row = certificate_row(connection, issuing.id, serial)
            if (
                row is None
                or row.enrollment_id is None
                or row.certificate_der != certificate.public_bytes(Encoding.DER)
            ):
                return None
            enrollment = enrollment_by_id(connection, row.enrollment_id)
            if enrollment is None or enrollment.site_id is None or not enrollment.return_url:
                return None
            site = site_by_id(connection, enrollment.site_id)
        if site is None or site.status != AccountStatus.ACTIVE:
            return None
        try:
            return_url = allowed_return_url(site, enrollment.return_url)
        except ReturnUrlNotAllowedError:
            return None  # the site took the URL off its list after the invitation
        assertion = self.sign(
            site_name=site.name,
            user_id=enrollment.user_id,
            certificate=certificate,
            certificate_user_id=enrollment.certificate_user_id,
            now=now,
        )
        return ReturnToSite(site.name, site.display_name, return_url, assertion)

    def verify(self, token: str, *, site_name: str, now: dt.datetime) -> AssertionClaims:
        """The claims of an assertion of ours for `site_name`, valid at `now`."""
        if len(token) > MAX_ASSERTION_LENGTH:
            raise ReturnAssertionInvalidError("longer than any assertion of ours")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise ReturnAssertionInvalidError("not a well-formed JWS in compact form") from None
        if header.get("alg") != ALGORITHM:
            raise ReturnAssertionInvalidError(f"alg must be {ALGORITHM}")
        kid = header.get("kid")
        key = self._published.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise ReturnAssertionInvalidError("kid names none of our published keys")
        try:
            payload = jwt.decode(
                token,
                key.public_key,
                algorithms=[ALGORITHM],
                audience=site_name,
                issuer=self.issuer,
                # The times are judged below against the injected clock, not PyJWT's.
                options={
                    "require": _REQUIRED,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise ReturnAssertionInvalidError("the signature does not verify") from None
        except jwt.InvalidAudienceError:
            raise ReturnAssertionInvalidError("issued for another site") from None
        except jwt.InvalidIssuerError:
            raise ReturnAssertionInvalidError("issued by another server") from None
        except jwt.MissingRequiredClaimError as error:
            raise ReturnAssertionInvalidError(f"the {error.claim} claim is missing") from None
        except jwt.PyJWTError:
            raise ReturnAssertionInvalidError("malformed") from None
        claims = _parse_claims(payload, issuer=self.issuer, site_name=site_name)
        if claims.not_before > now + CLOCK_SKEW:
            raise ReturnAssertionInvalidError("not valid yet")
        if claims.expires_at <= now - CLOCK_SKEW:
            raise ReturnAssertionExpiredError("the assertion has expired")
        return claims

    def verify_and_redeem(
        self, engine: Engine, token: str, *, site_name: str, now: dt.datetime
    ) -> AssertionClaims:
        """Verify the assertion and record its jti, so that it is accepted once only.

        Rows of assertions that could no longer be accepted anyway are purged here.
        """
        claims = self.verify(token, site_name=site_name, now=now)
        replayed = False
        with engine.begin() as connection:
            connection.execute(
                delete(redeemed_assertions).where(redeemed_assertions.c.expires_at < now)
            )
            try:
                with connection.begin_nested():
                    connection.execute(
                        insert(redeemed_assertions).values(
                            jti=claims.jti,
                            redeemed_at=now,
                            expires_at=claims.expires_at + CLOCK_SKEW,
                        )
                    )
            except IntegrityError:
                replayed = True
        if replayed:
            raise ReturnAssertionReplayedError("the assertion was redeemed before")
        return claims


def load_assertion_signer(
    engine: Engine, token: Token, *, issuer: str, lifetime: dt.timedelta, now: dt.datetime
) -> AssertionSigner:
    """The active assertion signer (made by `shomei init`), its key found on `token`, and
    the earlier signers whose certificates are still valid at `now` (published too)."""
    signer = load_authority(engine, token, AuthorityRole.ASSERTION)
    table = certificate_authorities
    with engine.connect() as connection:
        rows = connection.execute(
            select(table.c.id, table.c.parent_id, table.c.certificate_der)
            .where(
                table.c.role == AuthorityRole.ASSERTION, table.c.status == AuthorityStatus.ACTIVE
            )
            .order_by(table.c.id.desc())
        ).all()
        parents = {
            row.id: x509.load_der_x509_certificate(bytes(row.certificate_der))
            for row in connection.execute(
                select(table.c.id, table.c.certificate_der).where(
                    table.c.id.in_({row.parent_id for row in rows if row.parent_id is not None})
                )
            )
        }
    current: PublishedKey | None = None
    earlier: list[PublishedKey] = []
    for row in rows:
        certificate = x509.load_der_x509_certificate(bytes(row.certificate_der))
        public_key = certificate.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or row.parent_id not in parents:
            raise AuthorityError(f"assertion signer {row.id}: not a P-256 key certified by a CA")
        key = PublishedKey(
            jwk_thumbprint(public_key), public_key, (certificate, parents[row.parent_id])
        )
        if row.id == signer.id:
            current = key
        elif now < certificate.not_valid_after_utc:
            earlier.append(key)
    if current is None:
        raise AuthorityError(f"assertion signer {signer.name} is not among the active ones")
    published = [current, *earlier]
    return AssertionSigner(signer, published, issuer=issuer, lifetime=lifetime)


def jwk_thumbprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """The RFC 7638 thumbprint: base64url SHA-256 of the required members, sorted, compact."""
    canonical = json.dumps(_ec_members(public_key), separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def certificate_thumbprint(certificate: x509.Certificate) -> str:
    """x5t#S256 (RFC 7515 4.1.8): base64url SHA-256 of the certificate's DER."""
    return _b64url(hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest())


def _ec_members(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The required members of a P-256 public JWK (RFC 7518 6.2.1)."""
    if not isinstance(public_key.curve, ec.SECP256R1):
        raise ValueError(f"{ALGORITHM} needs a P-256 key, not {public_key.curve.name}")
    numbers = public_key.public_numbers()
    return {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
    }


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _parse_claims(payload: dict[str, Any], *, issuer: str, site_name: str) -> AssertionClaims:
    """The verified payload as typed claims; a claim of the wrong type makes it invalid."""
    texts = {}
    for name in ("sub", "certificate_user_id", "serial", "x5t#S256", "jti"):
        value = payload.get(name)
        if not isinstance(value, str) or not value:
            raise ReturnAssertionInvalidError(f"the {name} claim must be a non-empty string")
        texts[name] = value
    if len(texts["jti"]) > _JTI_LENGTH:
        raise ReturnAssertionInvalidError("the jti claim is too long")
    times = {}
    for name in ("iat", "nbf", "exp"):
        value = payload[name]
        if not isinstance(value, int) or isinstance(value, bool):
            raise ReturnAssertionInvalidError(f"the {name} claim must be an integer")
        times[name] = dt.datetime.fromtimestamp(value, dt.UTC)
    return AssertionClaims(
        issuer=issuer,
        site_name=site_name,
        user_id=texts["sub"],
        certificate_user_id=texts["certificate_user_id"],
        serial=texts["serial"],
        certificate_sha256=texts["x5t#S256"],
        issued_at=times["iat"],
        not_before=times["nbf"],
        expires_at=times["exp"],
        jti=texts["jti"],
    )
