"""Values of the console's form fields, parsed into the domain's words."""

from __future__ import annotations

from starlette.datastructures import FormData

from pwa_server.vocabulary import KeyProfile, word_of


def chosen_key_profile(form: FormData) -> KeyProfile:
    """The key profile picked in the form's `profile` select; the default for anything else
    (the select offers only the known ones)."""
    return word_of(KeyProfile, form.get("profile")) or KeyProfile.DEFAULT
