"""Officer roles and what each may do; the web layer checks `can` for every page and action.

| permission         | security_officer | registration_officer | auditor |
|--------------------|------------------|----------------------|---------|
| VIEW_CONSOLE       | yes              | yes                  | yes     |
| VIEW_AUDIT         | yes              | -                    | yes     |
| MANAGE_ENROLLMENTS | -                | yes                  | -       |
| MANAGE_SITES       | -                | yes                  | -       |
| MANAGE_CA          | yes              | -                    | -       |
| APPROVE_CEREMONY   | yes              | -                    | -       |
| INVITE_OFFICERS    | yes              | -                    | -       |
| MANAGE_OFFICERS    | yes              | -                    | -       |

The security officer runs the CA and the token, the registration officer the enrollments and
sites (the issue's split): neither holds the other's permissions, so that issuing to people
and operating the CA stay separate duties. The auditor only reads. Every officer manages their
own keys (add, remove) without a permission: a key is theirs, not an object of the console.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Role(StrEnum):
    """An officer's one role, stored by its value."""

    SECURITY_OFFICER = "security_officer"
    REGISTRATION_OFFICER = "registration_officer"
    AUDITOR = "auditor"


class Permission(StrEnum):
    """One kind of page or action in the officer console."""

    # Read the console: enrollments, certificates, sites, CA status, officers and their keys.
    VIEW_CONSOLE = "view the console"
    # Read and verify the audit log.
    VIEW_AUDIT = "view the audit log"
    # Create, unlock, cancel and reissue enrollments; revoke end-user certificates.
    MANAGE_ENROLLMENTS = "manage enrollments"
    # Register relying sites; their API keys, webhooks and return URLs.
    MANAGE_SITES = "manage sites"
    # The CA hierarchy, keys in the token, CRLs, profiles.
    MANAGE_CA = "manage the CA"
    # Give one of the M-of-N approvals that a sensitive CA operation needs.
    APPROVE_CEREMONY = "approve a CA ceremony"
    # Invite officers, of any role, with one-time links.
    INVITE_OFFICERS = "invite officers"
    # Disable officers.
    MANAGE_OFFICERS = "manage officers"


PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.SECURITY_OFFICER: frozenset(
        {
            Permission.VIEW_CONSOLE,
            Permission.VIEW_AUDIT,
            Permission.MANAGE_CA,
            Permission.APPROVE_CEREMONY,
            Permission.INVITE_OFFICERS,
            Permission.MANAGE_OFFICERS,
        }
    ),
    Role.REGISTRATION_OFFICER: frozenset(
        {Permission.VIEW_CONSOLE, Permission.MANAGE_ENROLLMENTS, Permission.MANAGE_SITES}
    ),
    Role.AUDITOR: frozenset({Permission.VIEW_CONSOLE, Permission.VIEW_AUDIT}),
}


def can(role: Role, permission: Permission) -> bool:
    """True when `role` grants `permission` (the table in this module's docstring)."""
    return permission in PERMISSIONS[role]
