"""Key pairs made once on the session's token for the hsm tests, and a runner for CLI tools."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from hsm import KeyAlgorithm, KeyRef
from pwa_server.runtime import Services


@pytest.fixture(scope="package")
def generated_keys(services: Services) -> Iterator[dict[KeyAlgorithm, KeyRef]]:
    """One key pair per algorithm on the session's token (a single RSA-3072 generation)."""
    token = services.token
    refs = {
        algorithm: token.generate_key(algorithm, f"test-{algorithm.value}-{secrets.token_hex(4)}")
        for algorithm in KeyAlgorithm
    }
    yield refs
    for ref in refs.values():
        token.destroy_key(ref)
