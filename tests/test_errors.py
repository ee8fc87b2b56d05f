"""One root for Shomei's own errors: every error class of the package subclasses ShomeiError
and has a kind, and the CLI prints such an error as one line, never a traceback."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
from pathlib import Path

import pytest

import pwa_server
from pwa_server.audit import AuditError
from pwa_server.cli import main, reporting_errors
from pwa_server.errors import ErrorKind, ShomeiError

# Exceptions of the web layer that never reach a domain caller: one redirects to the sign-in
# page, the other stops the listeners from starting. (A private one, named with a leading
# underscore, is control flow caught in its own module, and is not walked.)
WEB_ONLY = {"SignInRequiredError", "TlsContextError"}
# Importing these runs them: the console script, and Alembic's migration environment.
NOT_IMPORTED = ("pwa_server.cli.__main__", "pwa_server.store.migrations")


def _error_classes() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for module_info in pkgutil.walk_packages(pwa_server.__path__, "pwa_server."):
        if module_info.name.startswith(NOT_IMPORTED):
            continue
        module = importlib.import_module(module_info.name)
        found.extend(
            member
            for _, member in inspect.getmembers(module, inspect.isclass)
            if issubclass(member, BaseException)
            and member.__module__ == module.__name__
            and not member.__name__.startswith("_")
        )
    return found


ERROR_CLASSES = _error_classes()


def test_the_walk_finds_the_errors_of_every_package() -> None:
    modules = {error.__module__.split(".")[1] for error in ERROR_CLASSES}
    assert {"enrollment", "officers", "sites", "audit", "pki", "store", "notify"} <= modules
    assert {"settings", "names"} <= modules


@pytest.mark.parametrize("error", ERROR_CLASSES, ids=lambda error: error.__qualname__)
def test_every_error_class_of_the_package_subclasses_the_root(error: type[Exception]) -> None:
    if error.__qualname__ in WEB_ONLY:
        assert error.__module__.startswith(("pwa_server.web", "pwa_server.serve"))
        return
    assert issubclass(error, ShomeiError)


# The packages' roots (OfficerError, InvitationError...) have none: the errors below them do.
CONCRETE_ERRORS = [
    error
    for error in ERROR_CLASSES
    if issubclass(error, ShomeiError)
    and not any(other is not error and issubclass(other, error) for other in ERROR_CLASSES)
]


@pytest.mark.parametrize("error", CONCRETE_ERRORS, ids=lambda error: error.__qualname__)
def test_every_concrete_error_states_its_kind(error: type[ShomeiError]) -> None:
    assert isinstance(error.kind, ErrorKind)


def test_the_cli_prints_a_domain_error_as_one_line_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def command() -> int:
        raise AuditError("the audit log's head does not match its seal")

    assert reporting_errors(command) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "shomei: error: the audit log's head does not match its seal\n"


def test_a_command_meeting_an_unmigrated_database_prints_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [name for name in os.environ if name.startswith("SHOMEI_")]:
        monkeypatch.delenv(name)

    assert main(["officer", "list", "--data-dir", str(tmp_path)]) == 1

    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert captured.err.startswith("shomei: error: ")
    assert captured.err.count("\n") == 1
