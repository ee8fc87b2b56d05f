"""The `shomei` command, run in a child process as a person runs it: init, hsm status, serve.

Every run gets an environment without the caller's SHOMEI_* variables, so that only what a
test sets reaches the command. One data directory, initialised once, serves the whole module.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Row, create_engine, select

from pwa_server.store.tables import certificate_authorities, certificates
from testbed.serving import free_port

# No token ever had this PIN; no output may ever contain it either.
WRONG_PIN = "not-the-pin-5b1e0c"
# A `serve` that fails at start-up ends in a second or two; one that wrongly starts is killed.
SERVE_TIMEOUT = 30.0


@dataclass(frozen=True)
class Run:
    """What one run of the command left behind."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def environment(**variables: str) -> dict[str, str]:
    """This process's environment without SHOMEI_* and SOFTHSM2_CONF, plus `variables`."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("SHOMEI_") and name != "SOFTHSM2_CONF"
    }
    return {**inherited, **variables}


def shomei(
    arguments: Sequence[str], *, env: dict[str, str], cwd: Path, timeout: float = 60.0
) -> Run:
    """Run `shomei ARGUMENTS`; fail the test (after killing its process group) on a timeout."""
    with subprocess.Popen(
        [sys.executable, "-m", "pwa_server.cli", *arguments],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: workers it may spawn die with it
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            pytest.fail(
                f"shomei {' '.join(arguments)} still ran after {timeout:.0f} s and was killed;"
                f"\nstdout:\n{stdout}\nstderr:\n{stderr}"
            )
    return Run(process.returncode, stdout, stderr)


def table_rows(data_dir: Path, table: Any) -> list[Row[Any]]:
    """Every row of `table` in the data directory's SQLite database, in id order."""
    engine = create_engine(f"sqlite:///{data_dir / 'shomei.db'}")
    try:
        with engine.connect() as connection:
            return list(connection.execute(select(table).order_by(table.c.id)))
    finally:
        engine.dispose()


def one_line_error(run: Run) -> str:
    """The single `shomei: error:` line of a failed run, after checking that it is one."""
    assert run.returncode != 0, run.output
    assert "Traceback" not in run.stderr, run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("shomei: error: "), run.stderr
    return lines[0]


@dataclass(frozen=True)
class Initialised:
    """A data directory after the module's one `shomei init`."""

    workdir: Path
    data_dir: Path
    first_init: Run

    @property
    def pin(self) -> str:
        return (self.data_dir / "hsm" / "user.pin").read_text(encoding="utf-8").strip()

    def env(self, **variables: str) -> dict[str, str]:
        return environment(SHOMEI_DATA_DIR=str(self.data_dir), **variables)

    def role_key_labels(self) -> dict[str, str]:
        return {
            row.role: row.key_label for row in table_rows(self.data_dir, certificate_authorities)
        }


@pytest.fixture(scope="module")
def initialised_dir(tmp_path_factory: pytest.TempPathFactory) -> Initialised:
    """`shomei init --data-dir <a directory that does not exist yet>`, once for the module."""
    workdir = tmp_path_factory.mktemp("cli")
    data_dir = workdir / "var"
    run = shomei(["init", "--data-dir", str(data_dir)], env=environment(), cwd=workdir)
    if run.returncode != 0:
        pytest.fail(f"shomei init failed; every test of this module needs it:\n{run.output}")
    return Initialised(workdir, data_dir, run)


@dataclass(frozen=True)
class SecondInit:
    """A second `shomei init` on the initialised directory, and the state around it."""

    run: Run
    authorities_before: list[Row[Any]]
    authorities_after: list[Row[Any]]
    certificates_before: list[Row[Any]]
    certificates_after: list[Row[Any]]
    server_pem_before: bytes
    server_pem_after: bytes


@pytest.fixture(scope="module")
def second_init(initialised_dir: Initialised) -> SecondInit:
    data_dir = initialised_dir.data_dir
    server_pem = data_dir / "tls" / "server.pem"
    authorities_before = table_rows(data_dir, certificate_authorities)
    certificates_before = table_rows(data_dir, certificates)
    pem_before = server_pem.read_bytes()
    run = shomei(
        ["init", "--data-dir", str(data_dir)], env=environment(), cwd=initialised_dir.workdir
    )
    return SecondInit(
        run,
        authorities_before,
        table_rows(data_dir, certificate_authorities),
        certificates_before,
        table_rows(data_dir, certificates),
        pem_before,
        server_pem.read_bytes(),
    )


@pytest.fixture(scope="module")
def token_serial(initialised_dir: Initialised) -> str:
    """The serial number of the 'shomei' token, as SoftHSM's own tool reports it."""
    shown = subprocess.run(
        ["softhsm2-util", "--show-slots"],
        env={**environment(), "SOFTHSM2_CONF": str(initialised_dir.data_dir / "hsm/softhsm2.conf")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    serial = ""
    for line in shown.splitlines():
        name, _, value = line.strip().partition(":")
        if name == "Serial number":
            serial = value.strip()
        elif name == "Label" and value.strip() == "shomei":
            return serial
    raise AssertionError(f"softhsm2-util shows no token 'shomei':\n{shown}")


@pytest.fixture(scope="module")
def status_text(initialised_dir: Initialised) -> Run:
    return shomei(["hsm", "status"], env=initialised_dir.env(), cwd=initialised_dir.workdir)


@pytest.fixture(scope="module")
def status_json(initialised_dir: Initialised) -> Run:
    return shomei(
        ["hsm", "status", "--json"], env=initialised_dir.env(), cwd=initialised_dir.workdir
    )


# shomei init


def test_init_on_an_empty_directory_exits_zero_without_errors(
    initialised_dir: Initialised,
) -> None:
    assert initialised_dir.first_init.returncode == 0, initialised_dir.first_init.output
    assert initialised_dir.first_init.stderr == ""


MIGRATIONS = Path(__file__).resolve().parents[1] / "pwa_server" / "store" / "migrations"


@pytest.mark.parametrize(
    "line",
    [
        "created SoftHSM token 'shomei'",
        "created root CA",
        "created issuing CA",
        "created OCSP responder",
        "created return assertion signer",
        "created webhook key",
        "created TLS server certificate for localhost, 127.0.0.1",
    ],
)
def test_init_on_an_empty_directory_prints_what_it_created(
    initialised_dir: Initialised, line: str
) -> None:
    assert line in initialised_dir.first_init.stdout.splitlines()


def test_init_on_an_empty_directory_migrates_the_database_to_the_newest_schema(
    initialised_dir: Initialised,
) -> None:
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert f"created database schema {head}" in initialised_dir.first_init.stdout.splitlines()


def test_init_creates_a_root_an_issuing_ca_and_the_delegated_signers(
    initialised_dir: Initialised,
) -> None:
    rows = table_rows(initialised_dir.data_dir, certificate_authorities)

    assert sorted((row.role, row.status) for row in rows) == [
        ("assertion", "active"),
        ("issuing", "active"),
        ("ocsp", "active"),
        ("root", "active"),
    ]


def test_a_second_init_prints_that_nothing_changed(second_init: SecondInit) -> None:
    assert second_init.run.returncode == 0, second_init.run.output
    [line] = second_init.run.stdout.splitlines()
    assert line.endswith("is already initialised; nothing changed")


def test_a_second_init_leaves_the_ca_rows_unchanged(second_init: SecondInit) -> None:
    assert second_init.authorities_after == second_init.authorities_before


def test_a_second_init_issues_no_certificate(second_init: SecondInit) -> None:
    assert second_init.certificates_after == second_init.certificates_before


def test_a_second_init_leaves_the_tls_certificate_file_unchanged(second_init: SecondInit) -> None:
    assert second_init.server_pem_after == second_init.server_pem_before


@pytest.mark.parametrize("name", ["user.pin", "so.pin"])
def test_init_writes_pin_files_readable_by_the_owner_only(
    initialised_dir: Initialised, name: str
) -> None:
    mode = stat.S_IMODE((initialised_dir.data_dir / "hsm" / name).stat().st_mode)

    assert mode == 0o600


def test_init_writes_the_tls_private_key_readable_by_the_owner_only(
    initialised_dir: Initialised,
) -> None:
    mode = stat.S_IMODE((initialised_dir.data_dir / "tls" / "server.key").stat().st_mode)

    assert mode == 0o600


def test_init_creates_the_data_directory_for_the_owner_only(initialised_dir: Initialised) -> None:
    assert stat.S_IMODE(initialised_dir.data_dir.stat().st_mode) == 0o700


# shomei hsm status


def test_hsm_status_names_the_token_label_and_serial(status_text: Run, token_serial: str) -> None:
    assert status_text.returncode == 0, status_text.output
    assert f"token:   shomei (serial {token_serial}," in status_text.stdout


def test_hsm_status_lists_the_ca_private_keys_as_sensitive_and_not_extractable(
    status_text: Run, initialised_dir: Initialised
) -> None:
    labels = initialised_dir.role_key_labels()
    private_rows = {
        tuple(line.split()[1:])
        for line in status_text.stdout.splitlines()
        if line.startswith("private ")
    }

    assert private_rows >= {
        (labels["root"], "EC", "384", "true", "false"),
        (labels["issuing"], "EC", "256", "true", "false"),
        (labels["ocsp"], "EC", "256", "true", "false"),
        (labels["assertion"], "EC", "256", "true", "false"),
    }
    assert all(row[-2:] == ("true", "false") for row in private_rows)


def test_hsm_status_json_names_the_token_label_and_serial(
    status_json: Run, token_serial: str
) -> None:
    assert status_json.returncode == 0, status_json.output
    token = json.loads(status_json.stdout)["token"]

    assert (token["label"], token["serial"]) == ("shomei", token_serial)


def test_hsm_status_json_lists_the_ca_private_keys_as_sensitive_and_not_extractable(
    status_json: Run, initialised_dir: Initialised
) -> None:
    labels = initialised_dir.role_key_labels()
    keys = json.loads(status_json.stdout)["keys"]
    private_keys = {
        (key["label"], key["key_type"], key["size"], key["sensitive"], key["extractable"])
        for key in keys
        if key["object_class"] == "private"
    }

    assert private_keys >= {
        (labels["root"], "EC", 384, True, False),
        (labels["issuing"], "EC", 256, True, False),
        (labels["ocsp"], "EC", 256, True, False),
        (labels["assertion"], "EC", 256, True, False),
    }
    assert all(key[-2:] == (True, False) for key in private_keys)


def test_hsm_status_never_prints_the_pin(status_text: Run, initialised_dir: Initialised) -> None:
    assert initialised_dir.pin not in status_text.output


def test_hsm_status_json_never_prints_the_pin(
    status_json: Run, initialised_dir: Initialised
) -> None:
    assert initialised_dir.pin not in status_json.output


# Start-up errors: one line, no traceback, a non-zero exit


@dataclass(frozen=True)
class BadConfiguration:
    variables: dict[str, str]
    says: str


def bad_configurations(data_dir: Path) -> dict[str, BadConfiguration]:
    return {
        "wrong-pin": BadConfiguration({"SHOMEI_HSM_PIN": WRONG_PIN}, "refused the PIN"),
        "missing-module": BadConfiguration(
            {"SHOMEI_PKCS11_MODULE": "/nonexistent/lib.so"}, "/nonexistent/lib.so"
        ),
        "unknown-token": BadConfiguration({"SHOMEI_TOKEN_LABEL": "nope"}, "'nope'"),
        "missing-pin-file": BadConfiguration(
            {"SHOMEI_HSM_PIN_FILE": "/nonexistent/user.pin"}, "SHOMEI_HSM_PIN"
        ),
        "invalid-setting": BadConfiguration({"SHOMEI_HTTPS_PORT": "abc"}, "https_port"),
        "unreachable-postgresql": BadConfiguration(
            {"SHOMEI_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/test"}, "unreachable"
        ),
        "uninitialised-database": BadConfiguration(
            {"SHOMEI_DATABASE_URL": f"sqlite:///{data_dir.parent / 'empty.db'}"},
            "run 'shomei init'",
        ),
        # The directory of this SQLite file would be the existing database file.
        "uncreatable-sqlite-directory": BadConfiguration(
            {"SHOMEI_DATABASE_URL": f"sqlite:///{data_dir / 'shomei.db' / 'nested.db'}"},
            "unreachable",
        ),
    }


SERVE_CASES = [
    "wrong-pin",
    "missing-module",
    "unknown-token",
    "missing-pin-file",
    "invalid-setting",
    "unreachable-postgresql",
    "uninitialised-database",
    "uncreatable-sqlite-directory",
]
HSM_STATUS_CASES = [
    "wrong-pin",
    "missing-module",
    "unknown-token",
    "missing-pin-file",
    "invalid-setting",
]


@pytest.fixture
def serve_ports() -> dict[str, str]:
    """Free ports, so that a `serve` that wrongly starts collides with nothing."""
    return {
        "SHOMEI_HTTPS_PORT": str(free_port()),
        "SHOMEI_CHECK_PORT": str(free_port()),
        "SHOMEI_HTTP_PORT": str(free_port()),
        "SHOMEI_WORKERS": "1",
    }


@pytest.mark.parametrize("case", SERVE_CASES)
def test_serve_with_bad_configuration_exits_with_one_error_line(
    initialised_dir: Initialised, serve_ports: dict[str, str], case: str
) -> None:
    bad = bad_configurations(initialised_dir.data_dir)[case]

    run = shomei(
        ["serve"],
        env=initialised_dir.env(**{**serve_ports, **bad.variables}),
        cwd=initialised_dir.workdir,
        timeout=SERVE_TIMEOUT,
    )

    line = one_line_error(run)
    assert bad.says in line
    assert "Shomei PWA" not in run.stdout
    assert initialised_dir.pin not in run.output
    assert WRONG_PIN not in run.output


@pytest.mark.parametrize("case", HSM_STATUS_CASES)
def test_hsm_status_with_bad_configuration_exits_with_one_error_line(
    initialised_dir: Initialised, case: str
) -> None:
    bad = bad_configurations(initialised_dir.data_dir)[case]

    run = shomei(
        ["hsm", "status"], env=initialised_dir.env(**bad.variables), cwd=initialised_dir.workdir
    )

    line = one_line_error(run)
    assert bad.says in line
    assert initialised_dir.pin not in run.output
    assert WRONG_PIN not in run.output


@pytest.mark.parametrize("busy", ["https", "check", "http"])
def test_serve_on_a_port_in_use_exits_with_one_error_line_naming_it(
    initialised_dir: Initialised, busy: str
) -> None:
    ports = {"https": free_port(), "check": free_port(), "http": free_port()}
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        ports[busy] = occupant.getsockname()[1]

        run = shomei(
            ["serve"],
            env=initialised_dir.env(
                SHOMEI_HTTPS_PORT=str(ports["https"]),
                SHOMEI_CHECK_PORT=str(ports["check"]),
                SHOMEI_HTTP_PORT=str(ports["http"]),
                SHOMEI_WORKERS="1",
            ),
            cwd=initialised_dir.workdir,
            timeout=SERVE_TIMEOUT,
        )

    line = one_line_error(run)
    assert f"127.0.0.1:{ports[busy]}" in line
    assert "Shomei PWA" not in run.stdout
