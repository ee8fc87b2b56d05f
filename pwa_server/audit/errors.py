"""The audit package's one exception type."""

from __future__ import annotations


class AuditError(Exception):
    """The audit log cannot record or seal: its state is missing or was tampered with."""
