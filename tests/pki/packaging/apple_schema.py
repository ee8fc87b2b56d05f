"""A small checker of configuration profiles against Apple's payload schemas (YAML).

The schemas (apple/device-management `mdm/profiles/`) list, per payload type, every key a
payload may carry, its type, whether it is required, its allowed values and the OS versions
that support it. This checker applies exactly those rules to a parsed profile, for iOS.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# A copy of apple/device-management mdm/profiles (MIT, LICENSE.txt beside them), kept in
# the repository so that the tests never depend on a folder outside the checkout.
SCHEMA_DIR = Path(__file__).resolve().parent / "apple_profiles"

PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "<string>": (str,),
    "<integer>": (int,),
    "<boolean>": (bool,),
    "<real>": (float,),
    "<data>": (bytes,),
    "<date>": (dt.datetime,),
    "<array>": (list,),
    "<dictionary>": (dict,),
    "<any>": (object,),
}


@dataclass(frozen=True)
class Schema:
    """One YAML file: the payload's own support and its keys by name."""

    payload_type: str
    supported_os: dict[str, Any]
    keys: dict[str, dict[str, Any]]


def load_schema(name: str) -> Schema:
    document = yaml.safe_load((SCHEMA_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    payload = document["payload"]
    return Schema(
        payload["payloadtype"],
        payload.get("supportedOS", {}),
        {entry["key"]: entry for entry in document["payloadkeys"]},
    )


def _type_ok(value: Any, schema_type: str) -> bool:
    # plist integers and booleans are distinct types; Python's bool is an int subclass.
    if schema_type == "<integer>" and isinstance(value, bool):
        return False
    return isinstance(value, PYTHON_TYPES[schema_type])


def _map_value_type(entry: dict[str, Any]) -> str | None:
    """The value type of a dictionary whose keys are free (Apple writes them as `ANY`).

    ConsentText is described as ConsentText -> ConsentTextItem -> ANY <string>: per its
    content text, a map from language (BCP 47) or `default` to the text.
    """
    subkeys = entry.get("subkeys") or []
    while len(subkeys) == 1:
        if subkeys[0]["key"] == "ANY":
            return str(subkeys[0]["type"])
        subkeys = subkeys[0].get("subkeys") or []
    return None


def check_dictionary(
    where: str, payload: dict[str, Any], schemas: list[Schema], os_name: str = "iOS"
) -> list[str]:
    """Problems of one payload dictionary against the merged keys of `schemas`."""
    keys: dict[str, dict[str, Any]] = {}
    for schema in schemas:
        keys.update(schema.keys)
    problems = []
    for name, definition in keys.items():
        if definition.get("presence") == "required" and name not in payload:
            problems.append(f"{where}: required key {name} is missing")
    for name, value in payload.items():
        entry = keys.get(name)
        if entry is None:
            problems.append(f"{where}: key {name} is not in the schema")
            continue
        if entry.get("supportedOS", {}).get(os_name, {}).get("introduced") == "n/a":
            problems.append(f"{where}: key {name} is not supported on {os_name}")
        if not _type_ok(value, entry["type"]):
            problems.append(f"{where}: {name} is {type(value).__name__}, not {entry['type']}")
            continue
        if "rangelist" in entry and value not in entry["rangelist"]:
            problems.append(f"{where}: {name}={value!r} is not one of {entry['rangelist']}")
        value_type = _map_value_type(entry) if entry["type"] == "<dictionary>" else None
        if value_type is not None:
            for item_key, item in value.items():
                if not _type_ok(item, value_type):
                    problems.append(f"{where}: {name}[{item_key!r}] is not {value_type}")
    return problems


def check_profile(profile: dict[str, Any], os_name: str = "iOS") -> list[str]:
    """Problems of a whole profile: the top level and every payload in PayloadContent."""
    top_level = load_schema("TopLevel")
    common = load_schema("CommonPayloadKeys")
    problems = check_dictionary("profile", profile, [top_level], os_name)
    for position, payload in enumerate(profile.get("PayloadContent", [])):
        where = f"PayloadContent[{position}]"
        if not isinstance(payload, dict):
            problems.append(f"{where}: not a dictionary")
            continue
        payload_type = payload.get("PayloadType")
        if not (SCHEMA_DIR / f"{payload_type}.yaml").is_file():
            problems.append(f"{where}: no schema for PayloadType {payload_type!r}")
            continue
        schema = load_schema(str(payload_type))
        os_support = schema.supported_os.get(os_name, {})
        # Our profiles are installed by hand from Safari, never pushed by an MDM server.
        if not os_support.get("allowmanualinstall"):
            problems.append(f"{where}: {payload_type} cannot be installed by hand on {os_name}")
        problems += check_dictionary(f"{where} ({payload_type})", payload, [common, schema])
    return problems
