"""Counts of refused console sign-ins per client address, minute and reason, until they are
written to the audit log as one event per address and minute."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from pwa_server.store.tables import sign_in_refusals


@dataclass(frozen=True)
class RefusalWindow:
    """The refusals counted for one client address in one minute, by reason."""

    client: str
    window_start: int  # Unix minute
    reasons: dict[str, int]

    @property
    def count(self) -> int:
        return sum(self.reasons.values())


def count_refusal(connection: Connection, client: str, window_start: int, reason: str) -> None:
    """Count one refusal: an UPDATE first (the common case in a flood), an INSERT for the
    first of its window and reason; two first ones at once make one INSERT fail, and it is
    retried as an UPDATE."""
    table = sign_in_refusals
    key = (
        table.c.client == client,
        table.c.window_start == window_start,
        table.c.reason == reason,
    )
    for _ in range(2):
        counted = connection.execute(
            update(table).where(*key).values(refusals=table.c.refusals + 1)
        )
        if counted.rowcount:
            return
        try:
            with connection.begin_nested():
                connection.execute(
                    insert(table).values(
                        client=client, window_start=window_start, reason=reason, refusals=1
                    )
                )
        except IntegrityError:
            continue
        return
    raise RuntimeError("could not count the refused sign-in")


def windows_before(connection: Connection, window_start: int) -> list[tuple[str, int]]:
    """The (client, minute) of every counted window that started before `window_start`, the
    oldest first."""
    table = sign_in_refusals
    rows = connection.execute(
        select(table.c.client, table.c.window_start)
        .where(table.c.window_start < window_start)
        .distinct()
        .order_by(table.c.window_start, table.c.client)
    )
    return [(row.client, row.window_start) for row in rows]


def take_window(connection: Connection, client: str, window_start: int) -> RefusalWindow | None:
    """Delete one window's counts and return what was deleted; None when another process
    took them first."""
    table = sign_in_refusals
    rows = connection.execute(
        delete(table)
        .where(table.c.client == client, table.c.window_start == window_start)
        .returning(table.c.reason, table.c.refusals)
    )
    reasons = {row.reason: row.refusals for row in rows}
    return RefusalWindow(client, window_start, reasons) if reasons else None
