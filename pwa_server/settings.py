"""Typed settings, read once at start-up from SHOMEI_* environment variables and files.

This is the only module that reads the environment. Precedence: explicit values (CLI flags),
then environment variables, then the TOML file named by SHOMEI_CONFIG_FILE, then the settings
file `shomei init` wrote into the data directory (`settings.json`), then defaults.
"""

from __future__ import annotations

import json
import os
import zoneinfo
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from pwa_server.errors import ErrorKind, ShomeiError
from pwa_server.names import is_mail_address

SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
DEFAULT_DATA_DIR = Path("var")
SETTINGS_FILE_NAME = "settings.json"
# The operator's logo, by file suffix: the media type it is served with.
LOGO_TYPES = {".png": "image/png", ".svg": "image/svg+xml"}


class ConfigurationError(ShomeiError):
    """The configuration is invalid; the message says which setting and why."""

    kind = ErrorKind.INVALID


class Settings(BaseSettings):
    """Everything a Shomei process needs to know about its environment."""

    model_config = SettingsConfigDict(env_prefix="SHOMEI_", extra="forbid", frozen=True)

    data_dir: Path = Field(
        DEFAULT_DATA_DIR, description="State directory: token, database, TLS files"
    )
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite in data_dir")

    pkcs11_module: Path = Field(SOFTHSM_MODULE, description="Path of the PKCS#11 module")
    token_label: str = Field("shomei", min_length=1, max_length=32)
    hsm_pin: SecretStr | None = Field(None, description="User PIN (prefer hsm_pin_file)")
    hsm_pin_file: Path | None = Field(None, description="File holding the user PIN")
    softhsm_conf: Path | None = Field(
        None, description="SoftHSM configuration; default data_dir/hsm/softhsm2.conf"
    )

    ca_organization: str = Field(
        "Shomei", min_length=1, max_length=64, description="O= and CN prefix of our CA names"
    )

    host: str = Field("127.0.0.1", description="Address the listeners bind to")
    https_port: int = Field(8443, ge=0, le=65535, description="The PWA over HTTPS")
    check_port: int = Field(8444, ge=0, le=65535, description="Installation check (client TLS)")
    http_port: int = Field(
        8080, ge=0, le=65535, description="Plain HTTP for /pki (CRL, CA certificates) only"
    )
    public_hostnames: list[str] = Field(
        ["localhost", "127.0.0.1"], min_length=1, description="Names in the TLS certificate"
    )
    workers: int = Field(default_factory=lambda: max(2, os.cpu_count() or 1), ge=1, le=64)
    trusted_proxies: list[str] = Field(
        [], description="Addresses whose client-certificate headers are believed"
    )

    public_url: str | None = Field(
        None, description="Base URL in mails and links; default https://<first hostname>:<port>"
    )

    # Enrollment rules (seed defaults: 6 tries, one download within 3 days, 30 days overall).
    enrollment_expiry_days: int = Field(30, ge=1, le=365)
    one_time_password_max_failures: int = Field(6, ge=1, le=100)
    downloads_allowed: int = Field(1, ge=1, le=10)
    download_window_days: int = Field(3, ge=1, le=90, description="After the first download")
    certificate_validity_days: int = Field(730, ge=1, le=3650)
    # After 5 wrong download passwords from one client for one ID, the next waits this long,
    # doubling with each further one (up to an hour); no lock (issue 17, finding 5).
    download_throttle_seconds: float = Field(1.0, gt=0, le=3600)
    # Argon2id checks (secret answers) one worker runs at once, 64 MiB each; default from
    # the machine's memory (a quarter of it over all workers, 1 to 16 each).
    argon2_concurrency: int | None = Field(None, ge=1, le=256)
    # Key ceremonies (a new issuing CA, retiring one): approvals from this many distinct
    # security officers (fewer when fewer exist), and how long a proposal stays open.
    ceremony_approvals: int = Field(2, ge=1, le=9)
    ceremony_proposal_hours: int = Field(24, ge=1, le=168)

    # Mail: with no SMTP host, messages are written to data_dir/mail as .eml files.
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = "Shomei <no-reply@localhost>"

    # Per client address (an IPv6 /64), shared by every instance: posts of the forms that check
    # a secret, and officer sign-in steps, per minute (and at most that many at once).
    secret_checks_per_minute: int = Field(30, ge=1, le=100_000)
    officer_sign_ins_per_minute: int = Field(20, ge=1, le=100_000)
    # Relying sites' JSON API: requests per API key per minute, shared by every instance.
    api_rate_limit_per_minute: int = Field(120, ge=1, le=100_000)
    # Development only: webhooks may go to loopback and private addresses (a test receiver).
    webhook_private_addresses: bool = False
    # How long a return assertion may be used after the installation check made it.
    return_assertion_seconds: int = Field(120, ge=10, le=900)

    # Who runs this service, as the user pages and mails show it (each optional), and the zone
    # every date and time a user sees is written in.
    time_zone: str = Field("Asia/Tokyo", description="IANA time zone of dates users see")
    operator_name: str | None = Field(None, min_length=1, max_length=128)
    operator_contact_url: str | None = Field(None, max_length=2048)
    operator_contact_email: str | None = Field(None, max_length=320)
    operator_logo: Path | None = Field(
        None, description="PNG or SVG file, served from our own origin (the CSP allows no other)"
    )

    # The identity that signs configuration profiles; default the listeners' TLS identity.
    profile_signing_certificate: Path | None = None
    profile_signing_key: Path | None = None

    @field_validator("data_dir", "hsm_pin_file", "pkcs11_module", "softhsm_conf")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.expanduser().absolute() if value is not None else None

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as Asia/Tokyo") from None
        return value

    @field_validator("operator_contact_url")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        if value is not None and (
            urlsplit(value).scheme not in ("https", "http") or not urlsplit(value).netloc
        ):
            raise ValueError("must be an https:// (or http://) address")
        return value

    @field_validator("operator_contact_email")
    @classmethod
    def _mail_address(cls, value: str | None) -> str | None:
        if value is not None and not is_mail_address(value):
            raise ValueError("must be an e-mail address")
        return value

    @field_validator("operator_logo")
    @classmethod
    def _logo_file(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        value = value.expanduser().absolute()
        if value.suffix.lower() not in LOGO_TYPES:
            raise ValueError("must be a .png or .svg file")
        if not value.is_file():
            raise ValueError(f"{value} is not a file")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = os.environ.get("SHOMEI_CONFIG_FILE")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        data_dir: object = None
        if isinstance(init_settings, InitSettingsSource):
            data_dir = init_settings.init_kwargs.get("data_dir")
        data_dir = data_dir or os.environ.get("SHOMEI_DATA_DIR")
        if config_file:
            if not Path(config_file).is_file():
                raise ValueError(f"SHOMEI_CONFIG_FILE names {config_file}, which is not a file")
            toml = TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file))
            data_dir = data_dir or toml().get("data_dir")
            sources.append(toml)
        # The data directory is itself a setting, so the file is found from the three places
        # that can name it before the file is read; the file never names it.
        settings_file = Path(str(data_dir or DEFAULT_DATA_DIR)).expanduser() / SETTINGS_FILE_NAME
        sources.append(JsonConfigSettingsSource(settings_cls, json_file=settings_file))
        return tuple(sources)

    # Derived locations. Kept as properties so there is one source of truth: data_dir.

    @property
    def embedded_softhsm(self) -> bool:
        """True when the token is SoftHSM, which `shomei init` creates (the development default)."""
        return self.pkcs11_module.name == SOFTHSM_MODULE.name

    @property
    def hsm_dir(self) -> Path:
        return self.data_dir / "hsm"

    @property
    def effective_softhsm_conf(self) -> Path | None:
        """The SoftHSM configuration to load the module with, when the token is SoftHSM."""
        if not self.embedded_softhsm:
            return None
        return self.softhsm_conf or self.hsm_dir / "softhsm2.conf"

    @property
    def settings_file(self) -> Path:
        """The settings `shomei init` ran with, read by every later command."""
        return self.data_dir / SETTINGS_FILE_NAME

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    @property
    def session_key_file(self) -> Path:
        """The key that signs session cookies, shared by every worker."""
        return self.data_dir / "session.key"

    @property
    def webhook_key_file(self) -> Path:
        """The key from which each site's webhook secret is derived, shared by every worker."""
        return self.data_dir / "webhook.key"

    @property
    def mail_dir(self) -> Path:
        """Where mails go as .eml files when no SMTP server is configured."""
        return self.data_dir / "mail"

    @property
    def public_pki_url(self) -> str:
        """Where relying parties fetch CRLs and CA certificates: plain HTTP (RFC 5280 practice;
        the objects are signed, and TLS would make revocation checking depend on itself)."""
        host = urlsplit(self.effective_public_url).hostname or self.public_hostnames[0]
        return f"http://{host}:{self.http_port}/pki"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The operator's time zone, in which users see dates and times."""
        return zoneinfo.ZoneInfo(self.time_zone)

    @property
    def effective_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"https://{self.public_hostnames[0]}:{self.https_port}"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'shomei.db'}"

    @property
    def effective_pin_file(self) -> Path:
        """Where the user PIN is read from when no PIN is given directly."""
        return self.hsm_pin_file or self.hsm_dir / "user.pin"

    def read_pin(self) -> str:
        """The token's user PIN, from hsm_pin or the PIN file; never logged or stored."""
        if self.hsm_pin is not None and self.hsm_pin.get_secret_value():
            return self.hsm_pin.get_secret_value()
        path = self.effective_pin_file
        try:
            pin = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise ConfigurationError(
                f"no HSM PIN: set SHOMEI_HSM_PIN or SHOMEI_HSM_PIN_FILE ({path} does not exist;"
                " run 'shomei init' for the embedded SoftHSM token)"
            ) from None
        except OSError as error:
            raise ConfigurationError(f"cannot read HSM PIN file {path}: {error.strerror}") from None
        if not pin:
            raise ConfigurationError(f"HSM PIN file {path} is empty")
        return pin


def unwritten_settings(settings: Settings) -> list[str]:
    """The settings given to this process that the settings file must not hold: secrets (the
    HSM PIN, the SMTP password, a database URL with a password in it). Every command needs
    them from its own environment."""
    unwritten = [
        name
        for name, field in Settings.model_fields.items()
        if name in settings.model_fields_set
        and (field.annotation is SecretStr or SecretStr in get_args(field.annotation))
    ]
    if settings.database_url and urlsplit(settings.database_url).password:
        unwritten.append("database_url")
    return sorted(unwritten)


def write_settings_file(settings: Settings) -> bool:
    """Write the settings given to this process (flags, environment, TOML file), without the
    secrets, to data_dir/settings.json; True when the file changed. Defaults stay out of it,
    so that a later release's defaults apply, as does `workers` on a bigger machine."""
    values = settings.model_dump(
        mode="json",
        include=settings.model_fields_set,
        exclude={"data_dir", *unwritten_settings(settings)},
    )
    text = json.dumps(values, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    path = settings.settings_file
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.chmod(0o600)  # not secret, but nothing in the data directory is for others
    temporary.replace(path)
    return True


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings once; invalid ones raise ConfigurationError."""
    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'settings'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from None
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"cannot read configuration: {error}") from None
