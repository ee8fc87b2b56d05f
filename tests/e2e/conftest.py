"""What the end-to-end test modules share: a console instance of each module's own, and its
first security officer at the console without a browser."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.browser.officer import ConsoleServer
from tests.e2e.console_client import ConsoleClient


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    """A Shomei instance of the test module's own for the officers' console (what officers
    do there changes what later tests see, so modules never share one)."""
    server = ConsoleServer.initialised(tmp_path_factory.mktemp("console"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def officer(console: ConsoleServer) -> Iterator[ConsoleClient]:
    """The module's first security officer, registered (and signed in) with a software key."""
    client = ConsoleClient.open(console)
    client.register(console.bootstrap_link())
    yield client
    client.close()
