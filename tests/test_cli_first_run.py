"""An operator's first run: `shomei init` keeps the settings it ran with for later commands,
and `shomei serve` says what to do next (issue 12, "First run for an operator")."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from pwa_server.cli import _next_steps
from pwa_server.settings import load_settings
from testbed.serving import free_port
from tests.test_cli import SERVE_TIMEOUT, Run, environment, shomei

# Given to init only in the environment; neither may reach the settings file.
HSM_PIN = "pin-never-written-7c2d"
SMTP_PASSWORD = "smtp-never-written-41ab"


@dataclass(frozen=True)
class PortedInit:
    """`shomei init` run with a non-default HTTPS port and two secrets in its environment."""

    workdir: Path
    https_port: int
    run: Run

    @property
    def settings_file(self) -> Path:
        return self.workdir / "var" / "settings.json"

    def enroll(self, **variables: str) -> Run:
        """`shomei enroll create` from the same directory, with only the PIN (and `variables`)
        in its environment, as init told the operator."""
        return shomei(
            ["enroll", "create", "--user-id", "alice", "--email", "alice@example.com"],
            env=environment(SHOMEI_HSM_PIN=HSM_PIN, **variables),
            cwd=self.workdir,
        )


@pytest.fixture(scope="module")
def ported_init(tmp_path_factory: pytest.TempPathFactory) -> PortedInit:
    workdir = tmp_path_factory.mktemp("first-run")
    https_port = free_port()
    run = shomei(
        ["init"],
        env=environment(
            SHOMEI_HTTPS_PORT=str(https_port),
            SHOMEI_HSM_PIN=HSM_PIN,
            SHOMEI_SMTP_PASSWORD=SMTP_PASSWORD,
            SHOMEI_WORKERS="1",
        ),
        cwd=workdir,
    )
    if run.returncode != 0:
        pytest.fail(f"shomei init failed; every test of this module needs it:\n{run.output}")
    return PortedInit(workdir, https_port, run)


def test_enroll_create_after_init_on_another_port_links_to_that_port(
    ported_init: PortedInit,
) -> None:
    run = ported_init.enroll()

    assert run.returncode == 0, run.output
    assert f"https://localhost:{ported_init.https_port}/enroll/" in run.stdout


def test_the_environment_overrides_the_settings_file(ported_init: PortedInit) -> None:
    other_port = free_port()

    run = ported_init.enroll(SHOMEI_HTTPS_PORT=str(other_port))

    assert run.returncode == 0, run.output
    assert f"https://localhost:{other_port}/enroll/" in run.stdout


def test_init_writes_the_settings_it_was_given_to_the_settings_file(
    ported_init: PortedInit,
) -> None:
    written = json.loads(ported_init.settings_file.read_text(encoding="utf-8"))

    assert written == {"https_port": ported_init.https_port, "workers": 1}


def test_init_writes_no_secret_to_the_settings_file(ported_init: PortedInit) -> None:
    text = ported_init.settings_file.read_text(encoding="utf-8")

    assert HSM_PIN not in text
    assert SMTP_PASSWORD not in text
    assert not {"hsm_pin", "smtp_password"} & set(json.loads(text))


def test_init_says_which_secrets_every_command_needs_in_its_environment(
    ported_init: PortedInit,
) -> None:
    assert "SHOMEI_HSM_PIN holds a secret" in ported_init.run.stdout
    assert "SHOMEI_SMTP_PASSWORD holds a secret" in ported_init.run.stdout
    assert HSM_PIN not in ported_init.run.output
    assert SMTP_PASSWORD not in ported_init.run.output


def serve_until_next_steps(workdir: Path) -> list[str]:
    """The lines `shomei serve` prints up to its third next step; then it is stopped."""
    ports = {
        "SHOMEI_HTTPS_PORT": str(free_port()),
        "SHOMEI_CHECK_PORT": str(free_port()),
        "SHOMEI_HTTP_PORT": str(free_port()),
    }
    with subprocess.Popen(
        [sys.executable, "-m", "pwa_server.cli", "serve"],
        env=environment(SHOMEI_HSM_PIN=HSM_PIN, **ports),
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        watchdog = threading.Timer(SERVE_TIMEOUT, os.killpg, (process.pid, signal.SIGKILL))
        watchdog.start()
        lines: list[str] = []
        try:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line.rstrip("\n"))
                if line.lstrip().startswith("3. "):
                    break
        finally:
            watchdog.cancel()
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=SERVE_TIMEOUT)
    return lines


def test_serve_prints_the_next_three_commands_after_the_urls(ported_init: PortedInit) -> None:
    lines = serve_until_next_steps(ported_init.workdir)

    text = "\n".join(lines)
    urls_end = text.index("CRL (plain HTTP):")
    assert text.index("shomei enroll create --user-id alice") > urls_end
    assert "  2. First officer:    shomei officer bootstrap" in lines
    mail_dir = ported_init.workdir / "var" / "mail"
    assert f"  3. Mail:             written to {mail_dir} as .eml files;" in text


@pytest.mark.usefixtures("clean_environment")
def test_the_readme_gives_the_next_steps_in_the_words_serve_prints(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")

    for line in _next_steps(load_settings())[1:]:
        # The mail directory is absolute where serve runs; the README names it relatively.
        assert line.replace(f"{tmp_path}/", "") in readme
