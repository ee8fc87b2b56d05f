"""Acceptance: the CA private keys live in the token and cannot be taken out of it.

Checked from outside this process with OpenSC's pkcs11-tool and a separate PKCS#11 client, as
an auditor would, rather than through the hsm package that made the keys.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pwa_server.runtime import Services
from pwa_server.settings import Settings
from tests.conftest import run_tool as run


def pkcs11_tool(settings: Settings, *arguments: str) -> list[str]:
    """The command line of pkcs11-tool logged in to the session's token."""
    return [
        "pkcs11-tool",
        "--module",
        str(settings.pkcs11_module),
        "--token-label",
        settings.token_label,
        "--login",
        "--pin",
        settings.read_pin(),
        *arguments,
    ]


def listed_objects(output: str) -> list[dict[str, str]]:
    """Parse `pkcs11-tool -O`: a header line per object, then indented `name: value` lines."""
    objects: list[dict[str, str]] = []
    for line in output.splitlines():
        if line and not line[0].isspace():
            objects.append({"object": line.strip()})
        elif ":" in line and objects:
            name, value = line.split(":", 1)
            objects[-1][name.strip()] = value.strip()
    return objects


@pytest.fixture(scope="module")
def ca_key_labels(services: Services) -> list[str]:
    return [services.root.key_ref.label, services.issuing.key_ref.label]


def test_pkcs11_tool_lists_the_ca_private_keys_as_sensitive_and_never_extractable(
    initialised: Settings, softhsm_env: dict[str, str], ca_key_labels: list[str]
) -> None:
    result = run(*pkcs11_tool(initialised, "-O"), env=softhsm_env)
    assert result.returncode == 0, result.stderr

    private_keys = {
        entry["label"]: entry
        for entry in listed_objects(result.stdout)
        if entry["object"].startswith("Private Key Object")
    }
    for label in ca_key_labels:
        assert label in private_keys, result.stdout
        access = {flag.strip() for flag in private_keys[label]["Access"].split(",")}
        assert {"sensitive", "always sensitive", "never extractable", "local"} <= access
        assert "extractable" not in access
        assert private_keys[label]["Usage"] == "sign"


def test_pkcs11_tool_does_not_print_the_value_of_a_ca_private_key(
    initialised: Settings,
    softhsm_env: dict[str, str],
    ca_key_labels: list[str],
    tmp_path: Path,
) -> None:
    # OpenSC 0.23 refuses before asking the token (and exits 0): nothing is written anywhere.
    for label in ca_key_labels:
        output = tmp_path / f"{label}.der"
        command = pkcs11_tool(
            initialised,
            "--read-object",
            "--type",
            "privkey",
            "--label",
            label,
            "--output-file",
            str(output),
        )
        result = run(*command, env=softhsm_env)
        assert "reading private keys not (yet) supported" in result.stderr
        assert result.stdout == ""
        assert not output.exists()


# Asks the token itself for CKA_VALUE of each private key, in a process of its own.
READ_PRIVATE_VALUE = """
import sys
import pkcs11
from pkcs11 import Attribute, ObjectClass

module, token_label, pin, *labels = sys.argv[1:]
token = pkcs11.lib(module).get_token(token_label=token_label)
with token.open(user_pin=pin) as session:
    for label in labels:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        try:
            value = key[Attribute.VALUE]
        except pkcs11.PKCS11Error as error:
            print(label, type(error).__name__)
        else:
            print(label, "VALUE", value.hex())
"""


def test_the_token_refuses_to_reveal_the_value_of_a_ca_private_key(
    initialised: Settings, softhsm_env: dict[str, str], ca_key_labels: list[str]
) -> None:
    result = run(
        sys.executable,
        "-c",
        READ_PRIVATE_VALUE,
        initialised.pkcs11_module,
        initialised.token_label,
        initialised.read_pin(),
        *ca_key_labels,
        env=softhsm_env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n") == [
        *(f"{label} AttributeSensitive" for label in ca_key_labels),
        "",
    ]
