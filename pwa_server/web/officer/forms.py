"""Values of the console's form and query fields, parsed into the domain's words."""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from starlette.datastructures import FormData

from pwa_server.vocabulary import KeyProfile

Word = TypeVar("Word", bound=StrEnum)


def chosen(words: type[Word], value: object) -> Word | None:
    """`value` as one of `words`; None when it is none of them (or missing)."""
    return next((word for word in words if word == value), None)


def chosen_key_profile(form: FormData) -> KeyProfile:
    """The key profile picked in the form's `profile` select; the default for anything else
    (the select offers only the known ones)."""
    return chosen(KeyProfile, form.get("profile")) or KeyProfile.DEFAULT
