"""The settings file `shomei init` writes into the data directory: where it is found, what it
holds and what overrides it (issue 12, "First run for an operator")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pwa_server.settings import load_settings, unwritten_settings, write_settings_file

pytestmark = pytest.mark.usefixtures("clean_environment")


def write_file(data_dir: Path, values: dict[str, object]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "settings.json").write_text(json.dumps(values), encoding="utf-8")


def test_the_file_in_the_default_data_dir_is_read(tmp_path: Path) -> None:
    write_file(tmp_path / "var", {"https_port": 9443})

    assert load_settings().https_port == 9443


def test_the_file_in_the_data_dir_named_by_the_environment_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_file(tmp_path / "state", {"https_port": 9443})
    monkeypatch.setenv("SHOMEI_DATA_DIR", str(tmp_path / "state"))

    assert load_settings().https_port == 9443


def test_the_file_in_the_data_dir_named_by_the_flag_is_read(tmp_path: Path) -> None:
    write_file(tmp_path / "flag", {"https_port": 9443})

    assert load_settings(data_dir=tmp_path / "flag").https_port == 9443


def test_the_file_in_the_data_dir_named_by_the_toml_file_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_file(tmp_path / "toml-dir", {"https_port": 9443})
    (tmp_path / "shomei.toml").write_text(f'data_dir = "{tmp_path / "toml-dir"}"\n')
    monkeypatch.setenv("SHOMEI_CONFIG_FILE", str(tmp_path / "shomei.toml"))

    assert load_settings().https_port == 9443


def test_the_environment_overrides_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_file(tmp_path / "var", {"https_port": 9443})
    monkeypatch.setenv("SHOMEI_HTTPS_PORT", "7443")

    assert load_settings().https_port == 7443


def test_the_file_overrides_the_defaults_only_where_it_says(tmp_path: Path) -> None:
    write_file(tmp_path / "var", {"https_port": 9443})

    assert load_settings().check_port == 8444


def test_the_written_file_holds_what_was_given_and_no_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHOMEI_HTTPS_PORT", "9443")
    monkeypatch.setenv("SHOMEI_PUBLIC_HOSTNAMES", '["192.168.1.20"]')
    settings = load_settings()
    settings.data_dir.mkdir()

    assert write_settings_file(settings)
    written = json.loads(settings.settings_file.read_text(encoding="utf-8"))
    assert written == {"https_port": 9443, "public_hostnames": ["192.168.1.20"]}


def test_writing_the_same_settings_again_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOMEI_HTTPS_PORT", "9443")
    settings = load_settings()
    settings.data_dir.mkdir()
    write_settings_file(settings)

    assert not write_settings_file(load_settings())


def test_the_written_file_holds_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOMEI_HSM_PIN", "pin-9f3e")
    monkeypatch.setenv("SHOMEI_SMTP_PASSWORD", "smtp-6a1d")
    monkeypatch.setenv("SHOMEI_DATABASE_URL", "postgresql://shomei:db-2c7b@db.example/shomei")
    settings = load_settings()
    settings.data_dir.mkdir()

    write_settings_file(settings)

    text = settings.settings_file.read_text(encoding="utf-8")
    assert json.loads(text) == {}
    assert unwritten_settings(settings) == ["database_url", "hsm_pin", "smtp_password"]


def test_a_database_url_without_a_password_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOMEI_DATABASE_URL", "postgresql://shomei@db.example/shomei")
    settings = load_settings()
    settings.data_dir.mkdir()

    write_settings_file(settings)

    assert json.loads(settings.settings_file.read_text(encoding="utf-8")) == {
        "database_url": "postgresql://shomei@db.example/shomei"
    }
