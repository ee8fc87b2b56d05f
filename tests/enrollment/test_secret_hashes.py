"""How secrets are stored and checked: generated ones with the token's HMAC key, chosen
ones with Argon2id, bounded and outside every database connection (issue 17, 6 and 13)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, create_engine, event, select, text, update

from pwa_server.enrollment.download import Platform
from pwa_server.enrollment.errors import SecretCheckBusyError
from pwa_server.enrollment.hashing import ARGON2_MEMORY_BYTES, SecretHashes, argon2_slots_for
from pwa_server.runtime import Services, enrollment_service
from pwa_server.store.database import create_database_engine, migrate
from pwa_server.store.tables import enrollments
from tests.enrollment.conftest import START, Enrolling


class _HeldHasher(PasswordHasher):
    """Argon2id that waits, inside each hash, until the test lets it go on."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = threading.Semaphore(0)
        self.go_on = threading.Event()

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.inside.release()
        assert self.go_on.wait(30)
        return super().hash(password, salt=salt)


def test_a_one_time_password_hashed_with_argon2id_before_the_upgrade_still_verifies(
    enrolling: Enrolling,
) -> None:
    invitation = enrolling.invite()
    with enrolling.engine.begin() as connection:
        connection.execute(
            update(enrollments).values(
                one_time_password_hash=PasswordHasher().hash(invitation.one_time_password)
            )
        )
    row = enrolling.service.verify_one_time_password(
        invitation.enrollment_id, invitation.one_time_password, now=START
    )
    assert row.status == "otp_verified"


def test_a_download_password_hashed_with_argon2id_before_the_upgrade_still_downloads(
    enrolling: Enrolling,
) -> None:
    invitation, password = enrolling.ready_to_download()
    with enrolling.engine.begin() as connection:
        connection.execute(
            update(enrollments).values(download_password_hash=PasswordHasher().hash(password))
        )
    delivery = enrolling.downloads.download(
        certificate_user_id=invitation.certificate_user_id,
        download_password=password,
        platform=Platform.ANDROID,
        now=START,
    )
    assert delivery.filename.endswith(".p12")


def test_a_keyed_hash_of_another_key_or_a_changed_mac_never_matches(services: Services) -> None:
    hashes = services.downloads.hashes
    stored = hashes.keyed("12345678")
    scheme, label, salt, mac = stored.split("$")
    assert hashes.verify(stored, "12345678")
    assert not hashes.verify(stored, "12345679")
    assert not hashes.verify(f"{scheme}$other-key${salt}${mac}", "12345678")
    assert not hashes.verify(f"{scheme}${label}${salt}${'0' * len(mac)}", "12345678")
    assert not hashes.verify(f"{scheme}${label}$zz${mac}", "12345678")
    # Salted: the same secret twice is stored twice differently.
    assert hashes.keyed("12345678") != stored


def test_a_right_download_costs_one_write_transaction(enrolling: Enrolling) -> None:
    # It took three: the guess reserved, the count reset, then claim, issue and audit.
    invitation, password = enrolling.ready_to_download()
    commits: list[int] = []
    event.listen(enrolling.engine, "commit", lambda _connection: commits.append(1))
    enrolling.downloads.download(
        certificate_user_id=invitation.certificate_user_id,
        download_password=password,
        platform=Platform.IOS,
        now=START,
    )
    assert len(commits) == 1


def test_argon2id_slots_are_sized_from_memory_per_worker() -> None:
    gib = 1024**3
    assert argon2_slots_for(2, memory_bytes=4 * gib) == 8  # 512 MiB each of 2 workers
    assert argon2_slots_for(64, memory_bytes=gib) == 1
    assert argon2_slots_for(1, memory_bytes=1024 * gib) == 16
    assert ARGON2_MEMORY_BYTES == 64 * 1024 * 1024


def test_argon2id_beyond_the_slots_waits_then_is_refused_as_busy(services: Services) -> None:
    held = _HeldHasher()
    hashes = SecretHashes(
        services.downloads.hashes.key, argon2_slots=2, argon2_wait=0.3, hasher=held
    )
    with ThreadPoolExecutor(max_workers=2) as pool:
        running = [pool.submit(hashes.argon2, "pochi") for _ in range(2)]
        for _ in range(2):
            assert held.inside.acquire(timeout=30)
        started = time.monotonic()
        with pytest.raises(SecretCheckBusyError) as busy:
            hashes.argon2("pochi")
        waited = time.monotonic() - started
        held.go_on.set()
        stored = [future.result(timeout=30) for future in running]
    assert 0.25 <= waited < 5
    assert busy.value.retry_after >= 1
    assert all(hashes.verify(value, "pochi") for value in stored)
    # The slots were given back: a third check runs now.
    assert hashes.verify(hashes.argon2("pochi"), "pochi")


@pytest.fixture
def one_connection(tmp_path: Path, services: Services) -> Iterator[Engine]:
    """A migrated SQLite database whose pool holds one connection and waits 1 s for it."""
    url = f"sqlite:///{tmp_path / 'one.db'}"
    migrate_engine = create_database_engine(url)
    migrate(migrate_engine)
    migrate_engine.dispose()
    engine = create_engine(url, pool_size=1, max_overflow=0, pool_timeout=1)
    yield engine
    engine.dispose()


def test_hashing_a_secret_answer_holds_no_database_connection(
    one_connection: Engine, services: Services
) -> None:
    held = _HeldHasher()
    hashes = SecretHashes(services.downloads.hashes.key, argon2_slots=2, hasher=held)
    service = enrollment_service(services.settings, one_connection, hashes)
    invitation = service.create(user_id="alice", email="alice@example.jp", now=START)
    service.verify_one_time_password(
        invitation.enrollment_id, invitation.one_time_password, now=START
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        registering = pool.submit(
            service.register_secret,
            invitation.enrollment_id,
            question="first-pet",
            answer="Pochi",
            answer_confirm="Pochi",
            now=START,
        )
        assert held.inside.acquire(timeout=30)
        # While Argon2id runs, the pool's only connection is free for someone else.
        with one_connection.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
        held.go_on.set()
        registering.result(timeout=30)
    with one_connection.connect() as connection:
        status: str = connection.execute(select(enrollments.c.status)).scalar_one()
    assert status == "secret_registered"
