"""`shomei audit ...`: verify the audit log, seal its head, list recent events."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from sqlalchemy import Engine

from pwa_server.audit import AuditAction, events, seal, verify
from pwa_server.runtime import open_token
from pwa_server.settings import Settings
from pwa_server.store.database import check, create_database_engine


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """The `audit` command and its subcommands."""
    audit = commands.add_parser("audit", help="the tamper-evident audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    check_log = audit_commands.add_parser(
        "verify",
        parents=[common],
        help="check the hash chain, the head and the seals; name the first broken event",
    )
    check_log.add_argument("--json", action="store_true", help="print JSON")
    check_log.add_argument(
        "--check-token",
        action="store_true",
        help="also check that the recorded seal keys are the token's (needs the token)",
    )
    audit_commands.add_parser("seal", parents=[common], help="sign the current head now")
    listing = audit_commands.add_parser("list", parents=[common], help="the newest events")
    listing.add_argument("--limit", type=_positive, default=50, help="how many (default 50)")
    listing.add_argument(
        "--action", choices=[action.value for action in AuditAction], help="only this action"
    )
    listing.add_argument("--json", action="store_true", help="print JSON")


def run(settings: Settings, arguments: argparse.Namespace) -> int:
    """Run one `audit` subcommand; 1 (with one `shomei: error:` line) when the log is broken
    (an AuditError reaches main, which prints it the same way)."""
    engine = create_database_engine(settings.effective_database_url)
    try:
        check(engine)
        if arguments.audit_command == "verify":
            return _verify(settings, engine, arguments)
        if arguments.audit_command == "seal":
            return _seal(settings, engine)
        return _list(engine, arguments)
    finally:
        engine.dispose()


def _verify(settings: Settings, engine: Engine, arguments: argparse.Namespace) -> int:
    if arguments.check_token:
        token = open_token(settings)
        try:
            result = verify(engine, token=token)
        finally:
            token.close()
    else:
        result = verify(engine)
    if arguments.json:
        print(
            json.dumps(
                {
                    "ok": result.ok,
                    "event_id": result.problem.event_id if result.problem else None,
                    "problem": result.problem.message if result.problem else None,
                    "events": result.events,
                    "last_event_id": result.last_event_id,
                    "seals": result.seals,
                    "sealed_up_to": result.sealed_up_to,
                    "unsealed": result.unsealed,
                },
                indent=2,
            )
        )
    if result.problem is not None:
        print(f"shomei: error: audit log broken: {result.problem.message}", file=sys.stderr)
        return 1
    if not arguments.json:
        seals = f"{result.seals} seal" + ("" if result.seals == 1 else "s")
        print(
            f"audit log intact: {result.events} events; {seals}, covering events up to"
            f" {result.sealed_up_to}; {result.unsealed} unsealed"
        )
    return 0


def _seal(settings: Settings, engine: Engine) -> int:
    token = open_token(settings)
    try:
        made = seal(engine, token, now=dt.datetime.now(dt.UTC))
    finally:
        token.close()
    if made is None:
        print("nothing new to seal")
    else:
        print(
            f"sealed events up to {made.event_id} (hash {made.event_hash})"
            f" with key {made.key_label}"
        )
    return 0


def _list(engine: Engine, arguments: argparse.Namespace) -> int:
    found = events(engine, limit=arguments.limit, action=arguments.action)
    if arguments.json:
        print(
            json.dumps(
                [
                    {
                        "id": event.id,
                        "occurred_at": event.occurred_at.isoformat(),
                        "actor_kind": event.actor_kind,
                        "actor": event.actor,
                        "action": event.action,
                        "subject_kind": event.subject_kind,
                        "subject": event.subject,
                        "outcome": event.outcome,
                        "details": json.loads(event.details) if event.details else None,
                    }
                    for event in found
                ],
                indent=2,
            )
        )
        return 0
    for event in found:
        subject = f"{event.subject_kind or ''}:{event.subject}" if event.subject else "-"
        line = (
            f"{event.id:>7}  {event.occurred_at:%Y-%m-%d %H:%M:%S}  {event.outcome:7}"
            f"  {event.actor_kind}:{event.actor}  {event.action}  {subject}"
            f"  {event.details or ''}"
        )
        print(_printable(line.rstrip()))
    if not found:
        print("no audit events")
    return 0


def _printable(text: str) -> str:
    """Escape control characters: actors and subjects may come from users, and a terminal
    would obey escape sequences hidden in them."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
