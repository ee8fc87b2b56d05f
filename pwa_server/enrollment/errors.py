"""What can go wrong in an enrollment, as our own exception types (mapped to pages in web/)."""

from __future__ import annotations

from pwa_server.errors import ErrorKind, ShomeiError


class EnrollmentError(ShomeiError):
    """Root of the enrollment errors."""


class EnrollmentNotFoundError(EnrollmentError):
    """No enrollment with that id or certificate user ID (or the secret did not match it)."""

    kind = ErrorKind.NOT_FOUND


class EnrollmentExpiredError(EnrollmentError):
    """The invitation's link expired before it was used."""

    kind = ErrorKind.GONE


class EnrollmentLockedError(EnrollmentError):
    """Too many wrong secrets: an officer must unlock it."""

    kind = ErrorKind.LOCKED


class EnrollmentCancelledError(EnrollmentError):
    """An officer cancelled the enrollment."""

    kind = ErrorKind.GONE


class WrongStepError(EnrollmentError):
    """The step asked for does not follow from where the enrollment stands."""

    kind = ErrorKind.CONFLICT


class WrongSecretError(EnrollmentError):
    """A wrong one-time password, download password or secret answer."""

    kind = ErrorKind.REFUSED

    def __init__(self, remaining: int) -> None:
        super().__init__(f"wrong secret; {remaining} tries left")
        self.remaining = remaining


class InvalidInputError(EnrollmentError):
    """Input that cannot be accepted (unknown question, answers that differ, empty answer)."""

    kind = ErrorKind.INVALID

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class DownloadWindowClosedError(EnrollmentError):
    """The allowed downloads were used or their time ran out: the certificate must be reissued."""

    kind = ErrorKind.GONE


class TooManyAttemptsAtOnceError(EnrollmentError):
    """As many guesses as the lockout allows are being checked right now: try again shortly."""

    kind = ErrorKind.RATE_LIMITED


class CertificateNotFoundError(EnrollmentError):
    """No such certificate, or not one the caller may see."""

    kind = ErrorKind.NOT_FOUND

    def __init__(self, serial: str, *, message: str | None = None) -> None:
        super().__init__(message or f"certificate {serial}")
        self.serial = serial


class CertificateAlreadyRevokedError(CertificateNotFoundError):
    """The certificate was revoked already: no valid certificate has that serial (a subclass,
    so that a caller looking for a valid certificate treats both alike)."""

    kind = ErrorKind.CONFLICT

    def __init__(self, serial: str) -> None:
        super().__init__(serial, message=f"certificate {serial} is already revoked")


class SecretCheckBusyError(EnrollmentError):
    """Every slot for the memory-hard check of a secret answer is taken: come back shortly."""

    kind = ErrorKind.RATE_LIMITED

    def __init__(self, *, retry_after: int) -> None:
        super().__init__(f"secret checks are busy; retry after {retry_after} s")
        self.retry_after = retry_after


class DownloadThrottledError(EnrollmentError):
    """Too many wrong download passwords from here: the next attempt must wait."""

    kind = ErrorKind.RATE_LIMITED

    def __init__(self, *, retry_after: int) -> None:
        super().__init__(f"too many wrong download passwords; retry after {retry_after} s")
        self.retry_after = max(1, retry_after)


class WrongDownloadCredentialsError(EnrollmentNotFoundError, WrongSecretError):
    """A certificate user ID and download password that do not go together: one error for an
    unknown ID and a wrong password alike, so that no answer tells them apart (no tries are
    counted down: wrong download passwords are throttled, not locked)."""

    def __init__(self, certificate_user_id: str) -> None:
        EnrollmentNotFoundError.__init__(self, certificate_user_id)
        self.remaining = 0
