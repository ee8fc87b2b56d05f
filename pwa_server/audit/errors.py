"""The audit package's one exception type."""

from __future__ import annotations

from pwa_server.errors import ErrorKind, ShomeiError


class AuditError(ShomeiError):
    """The audit log cannot record or seal: its state is missing or was tampered with."""

    kind = ErrorKind.FAILED
