"""The `shomei` command: init, serve, hsm status, enroll, site, officer, audit, mail."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from hsm import HsmError, Token
from pwa_server.audit import CLI
from pwa_server.cli import audit, officers, sites
from pwa_server.errors import ShomeiError
from pwa_server.initialise import initialise
from pwa_server.notify.eml import list_mails
from pwa_server.notify.sender import deliver_due
from pwa_server.notify.transports import transport_from_settings
from pwa_server.runtime import (
    enrollment_administration,
    enrollment_service,
    open_services,
    open_token,
    secret_hashes,
)
from pwa_server.settings import DEFAULT_DATA_DIR, Settings, load_settings, unwritten_settings
from pwa_server.store.database import check, create_database_engine
from pwa_server.vocabulary import KeyProfile


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir", type=Path, help="state directory (default ./var or SHOMEI_DATA_DIR)"
    )
    parser = argparse.ArgumentParser(prog="shomei", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "init", parents=[common], help="create the token, CAs, TLS identity and database"
    )
    commands.add_parser("serve", parents=[common], help="serve the PWA and the check listener")
    hsm = commands.add_parser("hsm", help="the PKCS#11 token")
    hsm_commands = hsm.add_subparsers(dest="hsm_command", required=True)
    status = hsm_commands.add_parser("status", parents=[common], help="token and key objects")
    status.add_argument("--json", action="store_true", help="print JSON")

    enroll = commands.add_parser("enroll", help="enrollments")
    enroll_commands = enroll.add_subparsers(dest="enroll_command", required=True)
    create = enroll_commands.add_parser(
        "create", parents=[common], help="invite a user: prints the URL and one-time password"
    )
    create.add_argument("--user-id", required=True, help="the site's user id")
    create.add_argument("--email", required=True, help="where the invitation mail goes")
    create.add_argument("--name", help="the user's display name")
    create.add_argument("--profile", default=KeyProfile.DEFAULT, choices=list(KeyProfile))
    create.add_argument("--json", action="store_true", help="print JSON")
    unlock = enroll_commands.add_parser("unlock", parents=[common], help="unlock an enrollment")
    unlock.add_argument("enrollment_id")

    sites.add_parsers(commands, common)
    officers.add_parsers(commands, common)
    audit.add_parsers(commands, common)

    mail = commands.add_parser("mail", help="mail sent by the outbox")
    mail_commands = mail.add_subparsers(dest="mail_command", required=True)
    mail_commands.add_parser("list", parents=[common], help="mails written to data_dir/mail")
    mail_commands.add_parser("send", parents=[common], help="deliver the due mails now")
    return parser


def _init(settings: Settings) -> int:
    created = initialise(settings, dt.datetime.now(dt.UTC))
    if not created:
        print(f"{settings.data_dir} is already initialised; nothing changed")
    for item in created:
        print(f"created {item}")
    for name in unwritten_settings(settings):
        print(
            f"not written to {settings.settings_file}: SHOMEI_{name.upper()} holds a secret;"
            " give it to every shomei command in its environment"
        )
    return 0


def _serve(settings: Settings) -> int:
    # Imported here so that `shomei init` and `hsm status` never load uvicorn.
    from pwa_server.serve.listeners import bind
    from pwa_server.serve.supervisor import supervise

    open_services(settings).close()  # fail now, with one clear line, rather than in workers
    listeners = bind(settings)
    host = "localhost" if settings.host in ("127.0.0.1", "::1") else settings.host
    print(f"Shomei PWA:          https://{host}:{settings.https_port}/", flush=True)
    print(f"Installation check:  https://{host}:{settings.check_port}/check", flush=True)
    print(f"Root CA certificate: https://{host}:{settings.https_port}/pki/root.crt", flush=True)
    print(f"CRL (plain HTTP):    {settings.public_pki_url}/issuing.crl", flush=True)
    print(f"{settings.workers} worker processes; Ctrl-C stops", flush=True)
    print(flush=True)
    print("\n".join(_next_steps(settings)), flush=True)
    return supervise(settings, listeners)


def _next_steps(settings: Settings) -> list[str]:
    """What an operator does after the server is up: the lines `shomei serve` prints."""
    # Later commands find the settings file in the data directory, so they need its name
    # unless it is the default one below the directory they are run from.
    data_dir = (
        ""
        if settings.data_dir == DEFAULT_DATA_DIR.absolute()
        else f" --data-dir {settings.data_dir}"
    )
    if settings.smtp_host:
        mail = f"sent through the SMTP server {settings.smtp_host}:{settings.smtp_port}"
    else:
        mail = (
            f"written to {settings.mail_dir} as .eml files; list them: shomei mail list{data_dir}"
        )
    return [
        "Next, in another terminal in this directory (first `. .venv/bin/activate`"
        " when `make run` started the server):",
        f"  1. Invite a user:    shomei enroll create{data_dir}"
        " --user-id alice --email alice@example.com",
        f"  2. First officer:    shomei officer bootstrap{data_dir}",
        f"  3. Mail:             {mail}",
    ]


def _hsm_status(settings: Settings, as_json: bool) -> int:
    token = open_token(settings)
    try:
        info = token.info()
        keys = token.key_objects()
    finally:
        token.close()
    if as_json:
        print(json.dumps({"token": asdict(info), "keys": [asdict(key) for key in keys]}, indent=2))
        return 0
    print(f"module:  {info.module_path}")
    print(f"token:   {info.label} (serial {info.serial}, {info.manufacturer} {info.model})")
    print(f"{'class':8} {'label':36} {'type':5} {'size':>5} {'sensitive':9} {'extractable':11}")
    for key in keys:
        print(
            f"{key.object_class:8} {key.label:36} {key.key_type:5} {key.size:>5} "
            f"{_flag(key.sensitive):9} {_flag(key.extractable):11}"
        )
    return 0


def _enroll(settings: Settings, arguments: argparse.Namespace) -> int:
    engine = create_database_engine(settings.effective_database_url)
    token: Token | None = None
    try:
        check(engine)
        now = dt.datetime.now(dt.UTC)
        token = open_token(settings)
        hashes = secret_hashes(settings, token)
        if arguments.enroll_command == "unlock":
            administration = enrollment_administration(settings, engine, hashes)
            row = administration.unlock(arguments.enrollment_id, now=now, actor=CLI)
            print(f"enrollment {row.id} unlocked; it is {row.status}")
            return 0
        invitation = enrollment_service(settings, engine, hashes).create(
            user_id=arguments.user_id,
            email=arguments.email,
            display_name=arguments.name,
            profile=KeyProfile(arguments.profile),
            now=now,
            actor=CLI,
        )
    finally:
        if token is not None:
            token.close()
        engine.dispose()
    if arguments.json:
        print(
            json.dumps(
                {
                    "enrollment_id": invitation.enrollment_id,
                    "enrollment_url": invitation.enrollment_url,
                    "one_time_password": invitation.one_time_password,
                    "expires_at": invitation.expires_at.isoformat(),
                    "certificate_user_id": invitation.certificate_user_id,
                },
                indent=2,
            )
        )
        return 0
    print(f"Enrollment URL:      {invitation.enrollment_url}")
    print(f"One-time password:   {invitation.one_time_password}  (give it by another channel)")
    print(f"Certificate user ID: {invitation.certificate_user_id}")
    print(f"Expires:             {invitation.expires_at:%Y-%m-%d %H:%M} UTC")
    return 0


def _mail(settings: Settings, command: str) -> int:
    if command == "list":
        mails = list_mails(settings.mail_dir)
        for mail in mails:
            print(
                f"{mail.date:%Y-%m-%d %H:%M:%S}  {mail.to:32}  {mail.subject}  ({mail.file_name})"
            )
        if not mails:
            print(f"no mails in {settings.mail_dir}")
        return 0
    engine = create_database_engine(settings.effective_database_url)
    try:
        check(engine)
        sent = asyncio.run(
            deliver_due(engine, transport_from_settings(settings), now=dt.datetime.now(dt.UTC))
        )
    finally:
        engine.dispose()
    print(f"delivered {sent} mails")
    return 0


def _flag(value: bool | None) -> str:
    return "-" if value is None else str(value).lower()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `shomei` console script."""
    arguments = _parser().parse_args(argv)
    # The data directory holds PINs, the TLS key and the database: nothing in it is for others.
    os.umask(0o077)
    try:
        return reporting_errors(lambda: _run(arguments))
    except KeyboardInterrupt:
        return 130


def reporting_errors(command: Callable[[], int]) -> int:
    """`command`'s exit code; our own errors and the token's, whose messages say what to fix,
    become one `shomei: error:` line on stderr and exit code 1 instead of a traceback."""
    try:
        return command()
    except (ShomeiError, HsmError) as error:
        print(f"shomei: error: {error}", file=sys.stderr)
        return 1


def _run(arguments: argparse.Namespace) -> int:
    settings = load_settings(data_dir=getattr(arguments, "data_dir", None))
    if arguments.command == "init":
        return _init(settings)
    if arguments.command == "serve":
        return _serve(settings)
    if arguments.command == "enroll":
        return _enroll(settings, arguments)
    if arguments.command == "site":
        return sites.run(settings, arguments)
    if arguments.command == "officer":
        return officers.run(settings, arguments)
    if arguments.command == "audit":
        return audit.run(settings, arguments)
    if arguments.command == "mail":
        return _mail(settings, arguments.mail_command)
    return _hsm_status(settings, arguments.json)


if __name__ == "__main__":
    sys.exit(main())
