"""The API's request and response bodies. The same models validate requests and make the
OpenAPI document, so the document cannot drift from what the server accepts."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pwa_server.names import MAIL_ADDRESS_PATTERN
from pwa_server.vocabulary import (
    CertificateStatus,
    DeliveryState,
    EnrollmentStatus,
    KeyProfile,
    RevocationReason,
)

# Text without control characters (they have no place in ids, names or mail headers), not
# starting or ending with white space (Unicode's White_Space: what `\s` means to both the
# JSON Schema regex dialect and Python once control characters are excluded).
_TEXT = r"^[^\x00-\x20\x7f-\x9f\s](?:[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\x9f\s])?$"

MailAddress = Annotated[str, Field(min_length=3, max_length=320, pattern=MAIL_ADDRESS_PATTERN)]
# pwa_server.names says why: visible ASCII, so that no user id is a look-alike of another.
UserId = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[!-~]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NewEnrollment(_Strict):
    """An invitation for one of the site's users."""

    user_id: UserId = Field(description="The site's own id of the user")
    email: Annotated[str, Field(min_length=3, max_length=320, pattern=MAIL_ADDRESS_PATTERN)] = (
        Field(description="Where the invitation mail with the enrollment URL goes")
    )
    display_name: Annotated[str, Field(min_length=1, max_length=255, pattern=_TEXT)] | None = None
    profile: KeyProfile | None = Field(
        None, description="The end-user key: EC P-256 (default) or RSA; default the site's"
    )
    return_url: Annotated[str, Field(min_length=1, max_length=2048)] | None = Field(
        None, description="Where the user returns after the check; one of the site's URLs"
    )


class Enrollment(BaseModel):
    """Where an enrollment stands."""

    id: str
    status: EnrollmentStatus
    user_id: str
    email: str
    display_name: str | None
    profile: KeyProfile
    certificate_user_id: str = Field(description="The CN of the user's certificate")
    created_at: dt.datetime
    expires_at: dt.datetime = Field(description="The enrollment URL works until then")
    download_deadline: dt.datetime | None
    installed_at: dt.datetime | None
    locked_at: dt.datetime | None
    return_url: str | None


class CreatedEnrollment(Enrollment):
    """A new enrollment: hand the URL and, by another channel, the one-time password to the
    user. The password is shown only in this answer."""

    enrollment_url: str
    one_time_password: str


class Certificate(BaseModel):
    """A certificate issued for one of the site's enrollments."""

    serial: str = Field(description="Lower-case hexadecimal")
    status: CertificateStatus
    enrollment_id: str
    certificate_user_id: str
    user_id: str
    not_before: dt.datetime
    not_after: dt.datetime
    revoked_at: dt.datetime | None
    revocation_reason: str | None
    sha256_fingerprint: str
    certificate_pem: str


class CertificateList(BaseModel):
    """A user's certificates, newest first."""

    certificates: list[Certificate]


class Revocation(_Strict):
    """Why a certificate is revoked (RFC 5280 reason codes)."""

    reason: RevocationReason = RevocationReason.UNSPECIFIED


class AssertionToVerify(_Strict):
    """A return assertion the site received at its return URL."""

    assertion: Annotated[str, Field(min_length=1, max_length=8192)]


class VerifiedAssertion(BaseModel):
    """A valid return assertion, now redeemed: it cannot be verified here again."""

    user_id: str = Field(description="The site's user id of the enrollment (sub)")
    certificate_user_id: str
    serial: str = Field(description="The certificate's serial, lower-case hexadecimal")
    certificate_sha256: str = Field(description="x5t#S256: base64url SHA-256 of the DER")
    issued_at: dt.datetime
    expires_at: dt.datetime
    jti: str


class JsonWebKey(BaseModel):
    """A public key that signs return assertions (RFC 7517), with its certificate chain."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    kty: Literal["EC"]
    crv: Literal["P-256"]
    x: str
    y: str
    kid: str = Field(description="The RFC 7638 thumbprint, as in the assertion's header")
    use: Literal["sig"]
    alg: Literal["ES256"]
    x5c: list[str] = Field(description="The signer's certificate, then the issuing CA's")
    x5t_s256: str = Field(alias="x5t#S256")


class JsonWebKeySet(BaseModel):
    """The keys that sign return assertions: the current one, and the previous one while
    its certificate is valid."""

    keys: list[JsonWebKey]


class WebhookDelivery(BaseModel):
    """One webhook event and how its delivery went."""

    id: int = Field(description="The Shomei-Delivery header's value")
    event: str
    url: str
    state: DeliveryState
    created_at: dt.datetime
    attempts: int
    next_attempt_at: dt.datetime | None = Field(description="When it is tried again, if pending")
    delivered_at: dt.datetime | None
    last_error: str | None = Field(
        description="The last failed attempt's class only: HTTP 3xx/4xx/5xx, "
        "'no answer in time', 'address not allowed' or 'not delivered'"
    )


class WebhookDeliveryList(BaseModel):
    """The site's latest webhook events, newest first."""

    deliveries: list[WebhookDelivery]


class OpenApiDocument(BaseModel):
    """An OpenAPI 3.1 document (its parts are not spelled out here)."""

    model_config = ConfigDict(extra="allow")

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]


class FieldError(BaseModel):
    """One reason a request was refused."""

    pointer: str = Field(description="JSON Pointer (RFC 6901) to the field, or a header name")
    detail: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None
