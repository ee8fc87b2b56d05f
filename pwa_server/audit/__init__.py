"""The tamper-evident audit log: hash-chained security events, sealed with a token key.

`record` appends an event in the caller's transaction, `seal` signs the head, `verify`
names the first changed or missing event. The exact bytes hashed and signed are described
in pwa_server.audit.chain.
"""

from pwa_server.audit.actions import ActorKind, AuditAction, Outcome
from pwa_server.audit.actors import CLI, Actor
from pwa_server.audit.chain import GENESIS_HASH
from pwa_server.audit.errors import AuditError
from pwa_server.audit.log import JsonValue, events, record
from pwa_server.audit.seals import SEAL_INTERVAL, Seal, ensure_audit_key, seal
from pwa_server.audit.verification import (
    Problem,
    Verification,
    verify,
    verify_since_last_seal,
)
from pwa_server.store.audit import AuditEventRow

__all__ = [
    "CLI",
    "GENESIS_HASH",
    "SEAL_INTERVAL",
    "Actor",
    "ActorKind",
    "AuditAction",
    "AuditError",
    "AuditEventRow",
    "JsonValue",
    "Outcome",
    "Problem",
    "Seal",
    "Verification",
    "ensure_audit_key",
    "events",
    "record",
    "seal",
    "verify",
    "verify_since_last_seal",
]
