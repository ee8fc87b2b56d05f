"""`shomei audit verify | seal | list`, run in a child process as a person runs them.

One data directory is initialised for the module, given events and a seal; every test works
on its own copy of the SQLite database (SHOMEI_DATABASE_URL), so that tampering stays there.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from pwa_server.audit import ActorKind, AuditAction, Outcome, record
from pwa_server.store.database import create_database_engine
from tests.test_cli import Run, environment, one_line_error, shomei

EVENTS_BEFORE_SEAL = 5
EVENTS_AFTER_SEAL = 2


@dataclass(frozen=True)
class AuditDir:
    """An initialised data directory whose audit log has events and one seal."""

    workdir: Path
    data_dir: Path
    init: Run
    first_seal: Run


def add_events(database: Path, count: int, start: int) -> None:
    engine = create_database_engine(f"sqlite:///{database}")
    try:
        for number in range(start, start + count):
            with engine.begin() as connection:
                record(
                    connection,
                    actor_kind=ActorKind.USER,
                    actor=f"shm-{number:04d}",
                    action=AuditAction.ENROLLMENT_DOWNLOAD_PASSWORD_FAILED,
                    subject_kind="enrollment",
                    subject=f"e-{number}",
                    outcome=Outcome.FAILURE,
                    details={"attempt": number},
                    now=dt.datetime.now(dt.UTC),
                )
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def audit_dir(tmp_path_factory: pytest.TempPathFactory) -> AuditDir:
    workdir = tmp_path_factory.mktemp("audit-cli")
    data_dir = workdir / "var"
    init = shomei(["init", "--data-dir", str(data_dir)], env=environment(), cwd=workdir)
    if init.returncode != 0:
        pytest.fail(f"shomei init failed; every test of this module needs it:\n{init.output}")
    # Event 1 is the seal key's making; then events 2-6, sealed; then 7-8, not yet sealed.
    add_events(data_dir / "shomei.db", EVENTS_BEFORE_SEAL, start=2)
    first_seal = shomei(
        ["audit", "seal", "--data-dir", str(data_dir)], env=environment(), cwd=workdir
    )
    add_events(data_dir / "shomei.db", EVENTS_AFTER_SEAL, start=2 + EVENTS_BEFORE_SEAL)
    return AuditDir(workdir, data_dir, init, first_seal)


@pytest.fixture
def database(audit_dir: AuditDir, tmp_path: Path) -> Path:
    """This test's own copy of the module's database."""
    copy = tmp_path / "copy.db"
    with (
        sqlite3.connect(audit_dir.data_dir / "shomei.db") as source,
        sqlite3.connect(copy) as target,
    ):
        source.backup(target)
    source.close()
    target.close()
    return copy


def audit(audit_dir: AuditDir, database: Path, *arguments: str) -> Run:
    return shomei(
        ["audit", *arguments, "--data-dir", str(audit_dir.data_dir)],
        env=environment(SHOMEI_DATABASE_URL=f"sqlite:///{database}"),
        cwd=audit_dir.workdir,
    )


def tamper(database: Path, statement: str) -> None:
    engine = create_database_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


def test_init_reports_the_audit_seal_key(audit_dir: AuditDir) -> None:
    assert "created audit seal key" in audit_dir.init.stdout.splitlines()


def test_seal_signs_the_events_so_far(audit_dir: AuditDir) -> None:
    assert audit_dir.first_seal.returncode == 0, audit_dir.first_seal.output
    assert audit_dir.first_seal.stdout.startswith("sealed events up to 6 (hash ")


def test_verify_on_an_intact_log_exits_zero_and_counts(audit_dir: AuditDir, database: Path) -> None:
    run = audit(audit_dir, database, "verify")

    assert run.returncode == 0, run.output
    assert run.stdout.splitlines() == [
        "audit log intact: 8 events; 1 seal, covering events up to 6; 2 unsealed"
    ]
    assert run.stderr == ""


def test_verify_json_on_an_intact_log(audit_dir: AuditDir, database: Path) -> None:
    run = audit(audit_dir, database, "verify", "--json")

    assert run.returncode == 0, run.output
    assert json.loads(run.stdout) == {
        "ok": True,
        "event_id": None,
        "problem": None,
        "events": 8,
        "last_event_id": 8,
        "seals": 1,
        "sealed_up_to": 6,
        "unsealed": 2,
    }


def test_verify_with_the_token_on_an_intact_log(audit_dir: AuditDir, database: Path) -> None:
    run = audit(audit_dir, database, "verify", "--check-token")

    assert run.returncode == 0, run.output


def test_verify_names_a_changed_row(audit_dir: AuditDir, database: Path) -> None:
    tamper(database, "UPDATE audit_events SET outcome = 'success' WHERE id = 4")

    run = audit(audit_dir, database, "verify")

    line = one_line_error(run)
    assert line == (
        "shomei: error: audit log broken: event 4 was changed: its contents do not match its hash"
    )


def test_verify_names_a_deleted_row(audit_dir: AuditDir, database: Path) -> None:
    tamper(database, "DELETE FROM audit_events WHERE id = 3")

    run = audit(audit_dir, database, "verify")

    assert "event 3 is missing" in one_line_error(run)


def test_verify_names_a_deleted_sealed_tail_even_with_the_head_moved_back(
    audit_dir: AuditDir, database: Path
) -> None:
    tamper(database, "DELETE FROM audit_events WHERE id >= 5")
    tamper(
        database,
        "UPDATE audit_head SET last_event_id = 4,"
        " last_hash = (SELECT hash FROM audit_events WHERE id = 4)",
    )

    run = audit(audit_dir, database, "verify")

    assert "event 5 is missing: seal 1 signed the log up to event 6" in one_line_error(run)


def test_verify_json_names_the_row_and_exits_one(audit_dir: AuditDir, database: Path) -> None:
    tamper(database, "UPDATE audit_events SET actor = 'someone-else' WHERE id = 7")

    run = audit(audit_dir, database, "verify", "--json")

    assert run.returncode == 1
    result = json.loads(run.stdout)
    assert (result["ok"], result["event_id"]) == (False, 7)
    assert "event 7 was changed" in result["problem"]
    assert run.stderr.startswith("shomei: error: audit log broken: event 7")


def test_seal_then_nothing_new_to_seal(audit_dir: AuditDir, database: Path) -> None:
    first = audit(audit_dir, database, "seal")
    second = audit(audit_dir, database, "seal")

    assert first.returncode == 0, first.output
    assert first.stdout.startswith("sealed events up to 8 (hash ")
    assert second.stdout.splitlines() == ["nothing new to seal"]
    verified = audit(audit_dir, database, "verify")
    assert "covering events up to 8; 0 unsealed" in verified.stdout


def test_list_prints_the_newest_events_first(audit_dir: AuditDir, database: Path) -> None:
    run = audit(audit_dir, database, "list", "--limit", "3")

    assert run.returncode == 0, run.output
    lines = run.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["8", "7", "6"]
    assert "user:shm-0007  enrollment.download_password_failed  enrollment:e-7" in lines[1]


def test_list_filters_by_action(audit_dir: AuditDir, database: Path) -> None:
    run = audit(audit_dir, database, "list", "--action", "key.generated", "--json")

    assert run.returncode == 0, run.output
    [event] = json.loads(run.stdout)
    assert (event["id"], event["actor"], event["details"]) == (
        1,
        "shomei init",
        {"algorithm": "ec-p256", "purpose": "audit seal"},
    )


def test_list_escapes_control_characters(audit_dir: AuditDir, database: Path) -> None:
    tamper(database, "UPDATE audit_events SET actor = 'evil' || char(27) || '[2J' WHERE id = 8")

    run = audit(audit_dir, database, "list", "--limit", "1")

    assert "\x1b" not in run.stdout
    assert "evil\\x1b[2J" in run.stdout
