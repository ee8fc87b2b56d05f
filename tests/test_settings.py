"""Settings: defaults, SHOMEI_* environment variables, a TOML file, and the HSM PIN."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from pwa_server.settings import SOFTHSM_MODULE, ConfigurationError, load_settings

pytestmark = pytest.mark.usefixtures("clean_environment")


def write_toml(path: Path, content: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Write a configuration file and name it in SHOMEI_CONFIG_FILE."""
    path.write_text(content, encoding="utf-8")
    monkeypatch.setenv("SHOMEI_CONFIG_FILE", str(path))
    return path


# Defaults


def test_data_dir_defaults_to_an_absolute_var_in_the_working_directory(tmp_path: Path) -> None:
    settings = load_settings()

    assert settings.data_dir == tmp_path / "var"
    assert settings.data_dir.is_absolute()


def test_database_defaults_to_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings()

    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'var' / 'shomei.db'}"


def test_ports_default_to_8443_for_the_pwa_and_8444_for_the_check() -> None:
    settings = load_settings()

    assert (settings.https_port, settings.check_port) == (8443, 8444)


def test_workers_default_to_at_least_two() -> None:
    assert load_settings().workers >= 2


def test_the_token_defaults_to_the_embedded_softhsm(tmp_path: Path) -> None:
    settings = load_settings()

    assert settings.pkcs11_module == SOFTHSM_MODULE
    assert settings.token_label == "shomei"
    assert settings.effective_softhsm_conf == tmp_path / "var" / "hsm" / "softhsm2.conf"


def test_the_pin_file_defaults_to_user_pin_in_the_hsm_directory(tmp_path: Path) -> None:
    assert load_settings().effective_pin_file == tmp_path / "var" / "hsm" / "user.pin"


def test_tls_files_live_in_the_data_dir(tmp_path: Path) -> None:
    assert load_settings().tls_dir == tmp_path / "var" / "tls"


# Environment variables


def test_an_environment_variable_overrides_a_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOMEI_HTTPS_PORT", "9443")

    assert load_settings().https_port == 9443


@pytest.mark.parametrize(
    ("variable", "value", "attribute", "expected"),
    [
        ("SHOMEI_CHECK_PORT", "9444", "check_port", 9444),
        ("SHOMEI_HOST", "::1", "host", "::1"),
        ("SHOMEI_WORKERS", "3", "workers", 3),
        ("SHOMEI_TOKEN_LABEL", "production", "token_label", "production"),
        ("SHOMEI_CA_ORGANIZATION", "Example Corp", "ca_organization", "Example Corp"),
        ("SHOMEI_DATABASE_URL", "postgresql://db/shomei", "database_url", "postgresql://db/shomei"),
        (
            "SHOMEI_PUBLIC_HOSTNAMES",
            '["ca.example.org", "192.0.2.7"]',
            "public_hostnames",
            ["ca.example.org", "192.0.2.7"],
        ),
        ("SHOMEI_TRUSTED_PROXIES", '["10.0.0.1"]', "trusted_proxies", ["10.0.0.1"]),
        (
            "SHOMEI_PKCS11_MODULE",
            "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
            "pkcs11_module",
            Path("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"),
        ),
    ],
)
def test_each_setting_is_read_from_its_shomei_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, attribute: str, expected: object
) -> None:
    monkeypatch.setenv(variable, value)

    assert getattr(load_settings(), attribute) == expected


def test_a_relative_data_dir_from_the_environment_is_made_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHOMEI_DATA_DIR", "state/shomei")

    assert load_settings().data_dir == tmp_path / "state" / "shomei"


def test_a_data_dir_from_the_environment_moves_every_derived_location(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHOMEI_DATA_DIR", str(tmp_path / "elsewhere"))

    settings = load_settings()

    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'elsewhere' / 'shomei.db'}"
    assert settings.effective_pin_file == tmp_path / "elsewhere" / "hsm" / "user.pin"
    assert settings.tls_dir == tmp_path / "elsewhere" / "tls"


def test_a_database_url_replaces_the_sqlite_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOMEI_DATABASE_URL", "postgresql://postgres@db.example/shomei")

    assert load_settings().effective_database_url == "postgresql://postgres@db.example/shomei"


def test_an_explicit_value_beats_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHOMEI_DATA_DIR", str(tmp_path / "from-env"))

    assert load_settings(data_dir=tmp_path / "from-flag").data_dir == tmp_path / "from-flag"


def test_an_explicit_none_leaves_the_environment_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHOMEI_DATA_DIR", str(tmp_path / "from-env"))

    assert load_settings(data_dir=None).data_dir == tmp_path / "from-env"


def test_an_unrelated_shomei_variable_does_not_break_loading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOMEI_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

    assert load_settings().https_port == 8443


# TOML file


def test_a_toml_file_named_by_shomei_config_file_sets_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_toml(
        tmp_path / "shomei.toml",
        f'data_dir = "{tmp_path / "toml-var"}"\n'
        "https_port = 10443\n"
        'public_hostnames = ["ca.example.org"]\n',
        monkeypatch,
    )

    settings = load_settings()

    assert settings.data_dir == tmp_path / "toml-var"
    assert settings.https_port == 10443
    assert settings.public_hostnames == ["ca.example.org"]


def test_a_toml_file_leaves_unset_values_at_their_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_toml(tmp_path / "shomei.toml", "https_port = 10443\n", monkeypatch)

    assert load_settings().check_port == 8444


def test_the_environment_beats_the_toml_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_toml(tmp_path / "shomei.toml", "https_port = 10443\ncheck_port = 10444\n", monkeypatch)
    monkeypatch.setenv("SHOMEI_HTTPS_PORT", "11443")

    settings = load_settings()

    assert (settings.https_port, settings.check_port) == (11443, 10444)


def test_an_unknown_key_in_the_toml_file_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_toml(tmp_path / "shomei.toml", "https_prot = 10443\n", monkeypatch)

    with pytest.raises(ConfigurationError, match="https_prot"):
        load_settings()


def test_an_invalid_value_in_the_toml_file_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_toml(tmp_path / "shomei.toml", 'workers = "many"\n', monkeypatch)

    with pytest.raises(ConfigurationError, match="workers"):
        load_settings()


def test_a_malformed_toml_file_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_toml(tmp_path / "shomei.toml", "https_port = = 1\n", monkeypatch)

    with pytest.raises(ConfigurationError, match="cannot read configuration"):
        load_settings()


def test_a_missing_toml_file_is_a_configuration_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such.toml"
    monkeypatch.setenv("SHOMEI_CONFIG_FILE", str(missing))

    with pytest.raises(ConfigurationError, match=re.escape(str(missing))):
        load_settings()


# Invalid values


@pytest.mark.parametrize(
    ("variable", "value", "setting"),
    [
        ("SHOMEI_HTTPS_PORT", "abc", "https_port"),
        ("SHOMEI_CHECK_PORT", "70000", "check_port"),
        ("SHOMEI_WORKERS", "0", "workers"),
        ("SHOMEI_TOKEN_LABEL", "", "token_label"),
        ("SHOMEI_TOKEN_LABEL", "x" * 33, "token_label"),
        ("SHOMEI_PUBLIC_HOSTNAMES", "[]", "public_hostnames"),
        ("SHOMEI_PUBLIC_HOSTNAMES", "not json", "public_hostnames"),
    ],
)
def test_an_invalid_value_is_a_configuration_error_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, setting: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigurationError, match=setting):
        load_settings()


def test_a_configuration_error_is_a_single_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOMEI_HTTPS_PORT", "abc")
    monkeypatch.setenv("SHOMEI_WORKERS", "0")

    with pytest.raises(ConfigurationError) as raised:
        load_settings()

    assert "\n" not in str(raised.value)
    assert "https_port" in str(raised.value)
    assert "workers" in str(raised.value)


def test_settings_cannot_be_changed_once_read() -> None:
    settings = load_settings()

    with pytest.raises(ValidationError):
        settings.https_port = 1  # type: ignore[misc]  # the frozen model refuses it


# The HSM PIN


def test_read_pin_returns_hsm_pin_when_given() -> None:
    assert load_settings(hsm_pin="1234-abcd").read_pin() == "1234-abcd"


def test_read_pin_prefers_hsm_pin_over_the_pin_file(tmp_path: Path) -> None:
    pin_file = tmp_path / "user.pin"
    pin_file.write_text("from-file\n")

    settings = load_settings(hsm_pin="from-setting", hsm_pin_file=pin_file)

    assert settings.read_pin() == "from-setting"


def test_read_pin_reads_the_pin_file_without_its_newline(tmp_path: Path) -> None:
    pin_file = tmp_path / "user.pin"
    pin_file.write_text("s3cret-pin\n")

    assert load_settings(hsm_pin_file=pin_file).read_pin() == "s3cret-pin"


def test_read_pin_reads_the_default_pin_file_in_the_data_dir(tmp_path: Path) -> None:
    (tmp_path / "var" / "hsm").mkdir(parents=True)
    (tmp_path / "var" / "hsm" / "user.pin").write_text("default-location\n")

    assert load_settings().read_pin() == "default-location"


def test_read_pin_reads_the_pin_from_shomei_hsm_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOMEI_HSM_PIN", "from-environment")

    assert load_settings().read_pin() == "from-environment"


def test_a_missing_pin_file_is_an_error_that_says_how_to_fix_it(tmp_path: Path) -> None:
    missing = tmp_path / "absent.pin"

    with pytest.raises(ConfigurationError) as raised:
        load_settings(hsm_pin_file=missing).read_pin()

    message = str(raised.value)
    assert str(missing) in message
    assert "SHOMEI_HSM_PIN" in message
    assert "SHOMEI_HSM_PIN_FILE" in message
    assert "shomei init" in message


def test_an_empty_pin_file_is_a_configuration_error(tmp_path: Path) -> None:
    pin_file = tmp_path / "user.pin"
    pin_file.write_text("\n")

    with pytest.raises(ConfigurationError, match="empty"):
        load_settings(hsm_pin_file=pin_file).read_pin()


def test_an_unreadable_pin_file_is_a_configuration_error(tmp_path: Path) -> None:
    directory = tmp_path / "user.pin"
    directory.mkdir()

    with pytest.raises(ConfigurationError, match="cannot read HSM PIN file"):
        load_settings(hsm_pin_file=directory).read_pin()


def test_the_pin_does_not_appear_in_the_settings_repr() -> None:
    settings = load_settings(hsm_pin="do-not-print-me")

    assert "do-not-print-me" not in repr(settings)
    assert "do-not-print-me" not in str(settings)


# SoftHSM configuration


def test_effective_softhsm_conf_is_none_for_another_pkcs11_module() -> None:
    settings = load_settings(pkcs11_module="/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so")

    assert settings.effective_softhsm_conf is None


def test_effective_softhsm_conf_is_the_configured_file_for_softhsm(tmp_path: Path) -> None:
    settings = load_settings(softhsm_conf=tmp_path / "custom.conf")

    assert settings.effective_softhsm_conf == tmp_path / "custom.conf"


def test_a_softhsm_module_elsewhere_is_still_the_embedded_token(tmp_path: Path) -> None:
    settings = load_settings(pkcs11_module="/opt/softhsm/lib/libsofthsm2.so")

    assert settings.effective_softhsm_conf == tmp_path / "var" / "hsm" / "softhsm2.conf"


# The operator: time zone, name, contact and logo (issue 12)


def test_the_time_zone_defaults_to_japan() -> None:
    assert load_settings().zone.key == "Asia/Tokyo"


def test_a_time_zone_is_read_from_shomei_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOMEI_TIME_ZONE", "Europe/Berlin")

    assert load_settings().zone.key == "Europe/Berlin"


@pytest.mark.parametrize("zone", ["Asia/Tokio", "JST+9", "../etc/passwd", ""])
def test_an_unknown_time_zone_is_a_configuration_error_naming_it(zone: str) -> None:
    with pytest.raises(ConfigurationError, match=r"time_zone.*IANA time zone"):
        load_settings(time_zone=zone)


def test_the_operator_block_is_empty_by_default() -> None:
    settings = load_settings()

    assert settings.operator_name is None
    assert settings.operator_contact_url is None
    assert settings.operator_contact_email is None
    assert settings.operator_logo is None


def test_an_operator_logo_is_a_png_or_svg_file_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    monkeypatch.setenv("SHOMEI_OPERATOR_LOGO", "logo.svg")

    assert load_settings().operator_logo == tmp_path / "logo.svg"


def test_a_missing_operator_logo_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"operator_logo.*is not a file"):
        load_settings(operator_logo=tmp_path / "logo.png")


def test_an_operator_logo_of_another_type_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "logo.gif").write_bytes(b"GIF89a")

    with pytest.raises(ConfigurationError, match=r"operator_logo.*png or \.svg"):
        load_settings(operator_logo=tmp_path / "logo.gif")


@pytest.mark.parametrize("url", ["javascript:alert(1)", "mailto:help@example.jp", "example.jp"])
def test_an_operator_contact_url_must_be_a_web_address(url: str) -> None:
    with pytest.raises(ConfigurationError, match="operator_contact_url"):
        load_settings(operator_contact_url=url)


def test_an_operator_contact_email_must_be_a_mail_address() -> None:
    with pytest.raises(ConfigurationError, match="operator_contact_email"):
        load_settings(operator_contact_email="help at example.jp")
