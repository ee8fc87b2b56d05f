"""The domain's words are declared once: the store's columns, the API document and the keys
of the key profiles take their values from pwa_server.vocabulary, so a value added anywhere
else fails here."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import pytest
from sqlalchemy import Column, Enum

from pwa_server.pki.key_profiles import KEY_SPECS
from pwa_server.store.tables import (
    certificate_authorities,
    certificates,
    enrollments,
    key_ceremonies,
    officers,
    sites,
)
from pwa_server.vocabulary import (
    AccountStatus,
    AuthorityRole,
    AuthorityStatus,
    CeremonyKind,
    CeremonyStatus,
    CertificateStatus,
    DeliveryState,
    EnrollmentStatus,
    KeyProfile,
    RevocationReason,
    word_of,
)
from pwa_server.web.api.openapi import document
from pwa_server.web.api.routes import OPERATIONS

# Every column that holds one of the vocabulary's words, with the word.
COLUMNS: list[tuple[Column[Any], type[StrEnum]]] = [
    (enrollments.c.profile, KeyProfile),
    (enrollments.c.status, EnrollmentStatus),
    (sites.c.default_profile, KeyProfile),
    (sites.c.status, AccountStatus),
    (certificate_authorities.c.role, AuthorityRole),
    (certificate_authorities.c.status, AuthorityStatus),
    (officers.c.status, AccountStatus),
    (key_ceremonies.c.kind, CeremonyKind),
    (key_ceremonies.c.status, CeremonyStatus),
    (certificates.c.status, CertificateStatus),
]
# The words the API sends or accepts, each a schema of its own in the document.
API_WORDS: list[type[StrEnum]] = [
    KeyProfile,
    EnrollmentStatus,
    CertificateStatus,
    RevocationReason,
    DeliveryState,
]


def _api_document() -> dict[str, Any]:
    return document(OPERATIONS, server_url="https://localhost", version="test")


def _value_lists(node: object) -> Iterator[list[Any]]:
    """Every `enum` list anywhere in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "enum":
                yield value
            else:
                yield from _value_lists(value)
    elif isinstance(node, list):
        for item in node:
            yield from _value_lists(item)


@pytest.mark.parametrize(
    ("column", "words"), COLUMNS, ids=lambda value: getattr(value, "__name__", str(value))
)
def test_a_column_of_a_word_holds_exactly_the_words_values(
    column: Column[Any], words: type[StrEnum]
) -> None:
    assert isinstance(column.type, Enum)
    assert column.type.enum_class is words
    assert set(column.type.enums) == {word.value for word in words}


@pytest.mark.parametrize("words", API_WORDS, ids=lambda words: words.__name__)
def test_the_api_document_lists_exactly_the_words_values(words: type[StrEnum]) -> None:
    schema = _api_document()["components"]["schemas"][words.__name__]
    assert schema["enum"] == [word.value for word in words]


def test_every_value_list_in_the_api_document_is_one_of_the_vocabulary() -> None:
    vocabulary = [[word.value for word in words] for words in API_WORDS]
    assert [values for values in _value_lists(_api_document()) if values not in vocabulary] == []


def test_each_key_profile_has_a_key_and_nothing_else_has() -> None:
    assert set(KEY_SPECS) == set(KeyProfile)


def test_text_is_read_as_the_word_of_its_value_and_anything_else_as_none() -> None:
    assert word_of(EnrollmentStatus, "locked") is EnrollmentStatus.LOCKED
    assert word_of(EnrollmentStatus, "LOCKED") is None
    assert word_of(EnrollmentStatus, None) is None
