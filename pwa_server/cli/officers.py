"""`shomei officer ...`: the bootstrap link of the first security officer, and the list."""

from __future__ import annotations

import argparse
import datetime as dt

from pwa_server.names import for_terminal
from pwa_server.officers.invitations import BOOTSTRAP_DISPLAY_NAME
from pwa_server.officers.service import OfficerService
from pwa_server.settings import Settings
from pwa_server.store.database import check, create_database_engine


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """The `officer` command and its subcommands."""
    officer = commands.add_parser("officer", help="officers of the console")
    officer_commands = officer.add_subparsers(dest="officer_command", required=True)
    bootstrap = officer_commands.add_parser(
        "bootstrap",
        parents=[common],
        help="print a one-time link (valid 1 hour) that registers the first security officer",
    )
    bootstrap.add_argument(
        "--name", default=BOOTSTRAP_DISPLAY_NAME, help="the first officer's display name"
    )
    officer_commands.add_parser("list", parents=[common], help="the officers and their keys")


def run(settings: Settings, arguments: argparse.Namespace) -> int:
    """Run one `officer` subcommand; a refusal (OfficerError) reaches main, which prints it."""
    engine = create_database_engine(settings.effective_database_url)
    try:
        check(engine)
        service = OfficerService.from_settings(settings, engine)
        now = dt.datetime.now(dt.UTC)
        if arguments.officer_command == "bootstrap":
            return _bootstrap(service, arguments.name, now)
        return _list(service)
    finally:
        engine.dispose()


def _bootstrap(service: OfficerService, name: str, now: dt.datetime) -> int:
    link = service.invitations.bootstrap(now=now, display_name=name)
    print("Open this link in a browser, with your security key, to register the first")
    print("security officer. It works once; running bootstrap again replaces it.")
    print()
    print(f"  {link.url}")
    print()
    print(f"Valid until {link.expires_at:%Y-%m-%d %H:%M} UTC.")
    return 0


def _list(service: OfficerService) -> int:
    officers = service.roster.officers()
    for officer in officers:
        signed_in = (
            f"{officer.last_sign_in_at:%Y-%m-%d %H:%M}" if officer.last_sign_in_at else "never"
        )
        print(
            f"{officer.id}  {for_terminal(officer.display_name)}  {officer.role.value}"
            f"  [{officer.status}]"
            f"  last sign-in {signed_in}"
        )
        for key in service.keys.of(officer.id):
            used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
            label = for_terminal(key.label)
            print(f"  key {label}  added {key.created_at:%Y-%m-%d}  last used {used}")
    if not officers:
        print("no officers; register the first with `shomei officer bootstrap`")
    return 0
