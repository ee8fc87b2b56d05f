"""Both TLS listeners follow Mozilla's intermediate profile, as openssl s_client finds it:
TLS 1.2 and 1.3, no CBC suites in TLS 1.2, key exchange over X25519, P-256 and P-384 only."""

from __future__ import annotations

import pytest

from testbed.serving import ShomeiServer
from tests.conftest import run_tool


def _handshake(server: ShomeiServer, listener: str, *options: str) -> bool:
    port = server.settings.https_port if listener == "https" else server.settings.check_port
    result = run_tool(
        "openssl",
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        "-servername",
        "localhost",
        "-brief",
        *options,
        timeout=30,
    )
    return result.returncode == 0 and "Protocol version:" in result.stderr


@pytest.mark.parametrize("listener", ["https", "check"])
@pytest.mark.parametrize(
    "options",
    [
        ("-tls1_3",),
        ("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"),
        ("-tls1_3", "-groups", "X25519"),
        ("-tls1_3", "-groups", "P-256"),
        ("-tls1_3", "-groups", "P-384"),
    ],
    ids=["tls1.3", "tls1.2-gcm", "x25519", "p-256", "p-384"],
)
def test_what_the_intermediate_profile_allows_is_offered(
    server: ShomeiServer, listener: str, options: tuple[str, ...]
) -> None:
    assert _handshake(server, listener, *options)


@pytest.mark.parametrize("listener", ["https", "check"])
@pytest.mark.parametrize(
    "options",
    [
        ("-tls1_1",),
        ("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:AES128-SHA"),
        ("-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384"),
        ("-tls1_3", "-groups", "X448"),
        ("-tls1_3", "-groups", "P-521"),
    ],
    ids=["tls1.1", "tls1.2-cbc", "tls1.2-cbc-sha384", "x448", "p-521"],
)
def test_what_the_intermediate_profile_excludes_is_refused(
    server: ShomeiServer, listener: str, options: tuple[str, ...]
) -> None:
    assert not _handshake(server, listener, *options)
