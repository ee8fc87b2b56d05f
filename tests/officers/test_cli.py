"""`shomei officer bootstrap` and `shomei officer list`, run as the lead wires them into main."""

from __future__ import annotations

import argparse
import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pwa_server.cli import officers as officers_cli
from pwa_server.cli import reporting_errors
from pwa_server.officers.service import OfficerService
from pwa_server.settings import Settings
from tests.officers.authenticator import SoftwareAuthenticator
from tests.officers.conftest import register

PUBLIC_URL = "https://pki.example.org:8443"


def run(settings: Settings, *arguments: str) -> int:
    parser = argparse.ArgumentParser(prog="shomei")
    commands = parser.add_subparsers(dest="command", required=True)
    officers_cli.add_parsers(commands, argparse.ArgumentParser(add_help=False))
    parsed = parser.parse_args(["officer", *arguments])
    return reporting_errors(lambda: officers_cli.run(settings, parsed))


@pytest.fixture
def settings(engine: Engine, database_url: str, tmp_path: Path) -> Settings:
    """An instance on the migrated test database."""
    return Settings(data_dir=tmp_path, database_url=database_url, public_url=PUBLIC_URL)


def test_bootstrap_prints_a_one_time_link_and_its_expiry(
    settings: Settings, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    before = dt.datetime.now(dt.UTC)

    assert run(settings, "bootstrap", "--name", "Aiko Security") == 0

    output = capsys.readouterr().out
    match = re.search(rf"{re.escape(PUBLIC_URL)}/officer/register/([A-Za-z0-9_-]{{43}})\n", output)
    assert match is not None
    expiry = re.search(r"Valid until (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", output)
    assert expiry is not None
    expires = dt.datetime.strptime(expiry.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=dt.UTC)
    assert dt.timedelta(minutes=59) <= expires - before <= dt.timedelta(hours=1)
    service = OfficerService.from_settings(settings, engine)
    invitation = service.invitations.offer(token=match.group(1), now=dt.datetime.now(dt.UTC))
    assert invitation.display_name == "Aiko Security"


def test_bootstrap_once_an_officer_exists_is_refused_in_one_line(
    settings: Settings, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    service = OfficerService.from_settings(settings, engine)
    now = dt.datetime.now(dt.UTC)
    register(
        service,
        SoftwareAuthenticator(service.party.origin),
        service.invitations.bootstrap(now=now).token,
        now,
    )

    assert run(settings, "bootstrap") == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("shomei: error: officers exist already")


def test_list_shows_the_officers_and_their_keys(
    settings: Settings, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(settings, "list") == 0
    assert "no officers" in capsys.readouterr().out
    service = OfficerService.from_settings(settings, engine)
    now = dt.datetime.now(dt.UTC)
    officer = register(
        service,
        SoftwareAuthenticator(service.party.origin),
        service.invitations.bootstrap(now=now, display_name="Aiko Security").token,
        now,
        label="blue key",
    )

    assert run(settings, "list") == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{officer.id}  Aiko Security  security_officer  [active]")
    assert lines[0].endswith("last sign-in never")
    assert lines[1].startswith("  key blue key  added ")


def test_bootstrap_refuses_a_name_with_terminal_escapes(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(settings, "bootstrap", "--name", "Aiko\x1b]0;pwned\x07") != 0
    assert "control or invisible characters" in capsys.readouterr().err
