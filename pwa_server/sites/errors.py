"""What can go wrong for a relying site, as our own exception types (mapped in web/)."""

from __future__ import annotations

from pwa_server.errors import ErrorKind, ShomeiError


class SiteError(ShomeiError):
    """Root of the site errors."""


class SiteNotFoundError(SiteError):
    """No site of that name."""

    kind = ErrorKind.NOT_FOUND


class SiteExistsError(SiteError):
    """A site of that name exists already."""

    kind = ErrorKind.CONFLICT


class InvalidSiteInputError(SiteError):
    """A setting or request field that cannot be accepted."""

    kind = ErrorKind.INVALID

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ApiKeyRefusedError(SiteError):
    """No key, a malformed or unknown key, a wrong secret, or a revoked key: all alike."""

    kind = ErrorKind.UNAUTHENTICATED


class RateLimitedError(SiteError):
    """The key sent more requests this minute than allowed."""

    kind = ErrorKind.RATE_LIMITED

    def __init__(self, retry_after: int, limit: int) -> None:
        super().__init__(f"rate limit of {limit} requests a minute reached")
        self.retry_after = retry_after
        self.limit = limit


class IdempotencyKeyReusedError(SiteError):
    """The Idempotency-Key was used before with a different request."""

    kind = ErrorKind.INVALID


class ReturnUrlNotAllowedError(InvalidSiteInputError):
    """The return URL is not on the site's allow list."""

    def __init__(self) -> None:
        super().__init__("return_url", "not one of the site's allowed return URLs")


class ReturnAssertionError(SiteError):
    """A return assertion that cannot be accepted (root of the three below)."""


class ReturnAssertionInvalidError(ReturnAssertionError):
    """Malformed, signed by a key that is not ours, for another site or issuer, or not valid
    yet; `reason` says which, for the site's developers."""

    kind = ErrorKind.INVALID

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReturnAssertionExpiredError(ReturnAssertionError):
    """Its lifetime (plus the allowed clock skew) is over."""

    kind = ErrorKind.INVALID


class ReturnAssertionReplayedError(ReturnAssertionError):
    """Redeemed before: each assertion signs a person in once."""

    kind = ErrorKind.CONFLICT
