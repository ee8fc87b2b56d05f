"""The permission table: what each role may do, as the roles module's docstring states it."""

from __future__ import annotations

import pytest

import pwa_server.officers.roles
from pwa_server.officers.roles import Permission, Role, can

# The issue: security officer (CA and HSM), registration officer (enrollments and sites),
# auditor (read-only). Written out here so that a change to the table fails a test.
EXPECTED = {
    Role.SECURITY_OFFICER: {
        Permission.VIEW_CONSOLE,
        Permission.VIEW_AUDIT,
        Permission.MANAGE_CA,
        Permission.APPROVE_CEREMONY,
        Permission.INVITE_OFFICERS,
        Permission.MANAGE_OFFICERS,
    },
    Role.REGISTRATION_OFFICER: {
        Permission.VIEW_CONSOLE,
        Permission.MANAGE_ENROLLMENTS,
        Permission.MANAGE_SITES,
    },
    Role.AUDITOR: {Permission.VIEW_CONSOLE, Permission.VIEW_AUDIT},
}
READ_ONLY = {Permission.VIEW_CONSOLE, Permission.VIEW_AUDIT}


def documented_table() -> dict[tuple[str, str], bool]:
    """The docstring's Markdown table as {(role, permission name): granted}."""
    lines = [line.strip() for line in (pwa_server.officers.roles.__doc__ or "").splitlines()]
    rows = [line.strip("|").split("|") for line in lines if line.startswith("|")]
    header = [cell.strip() for cell in rows[0]]
    table = {}
    for row in rows[2:]:
        cells = [cell.strip() for cell in row]
        for role, cell in zip(header[1:], cells[1:], strict=True):
            assert cell in ("yes", "-")
            table[(role, cells[0])] = cell == "yes"
    return table


@pytest.mark.parametrize("permission", list(Permission))
@pytest.mark.parametrize("role", list(Role))
def test_each_role_has_exactly_the_permissions_of_the_table(
    role: Role, permission: Permission
) -> None:
    assert can(role, permission) is (permission in EXPECTED[role])


@pytest.mark.parametrize("permission", list(Permission))
@pytest.mark.parametrize("role", list(Role))
def test_the_docstring_table_says_what_can_answers(role: Role, permission: Permission) -> None:
    assert documented_table()[(role.value, permission.name)] is can(role, permission)


def test_the_docstring_table_has_a_cell_for_every_role_and_permission() -> None:
    assert set(documented_table()) == {(role.value, p.name) for role in Role for p in Permission}


def test_an_auditor_can_only_read() -> None:
    granted = {permission for permission in Permission if can(Role.AUDITOR, permission)}

    assert granted == READ_ONLY


def test_running_the_ca_and_registering_people_are_separate_duties() -> None:
    security = {p for p in Permission if can(Role.SECURITY_OFFICER, p)}
    registration = {p for p in Permission if can(Role.REGISTRATION_OFFICER, p)}

    assert security & registration == {Permission.VIEW_CONSOLE}
