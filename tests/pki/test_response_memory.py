"""The bounded memory of OCSP responses: entries and bytes, oldest first out."""

from __future__ import annotations

from pwa_server.pki.response_memory import ENTRY_OVERHEAD, ResponseMemory


def test_the_oldest_entry_goes_first_beyond_the_entry_bound() -> None:
    memory: ResponseMemory[str, bytes] = ResponseMemory(max_entries=2, max_bytes=1 << 20)
    for key in ("a", "b", "c"):
        memory.put(key, key.encode(), 1)
    assert [memory.get(key) for key in ("a", "b", "c")] == [None, b"b", b"c"]


def test_storing_a_key_again_makes_it_the_newest() -> None:
    memory: ResponseMemory[str, bytes] = ResponseMemory(max_entries=2, max_bytes=1 << 20)
    for key in ("a", "b", "a", "c"):
        memory.put(key, key.encode(), 1)
    assert memory.get("b") is None
    assert memory.get("a") == b"a"


def test_entries_are_forgotten_beyond_the_byte_bound() -> None:
    memory: ResponseMemory[int, bytes] = ResponseMemory(
        max_entries=100, max_bytes=3 * (ENTRY_OVERHEAD + 1000)
    )
    for key in range(10):
        memory.put(key, b"x" * 1000, 1000)
    assert len(memory) == 3
    assert memory.bytes == 3 * (ENTRY_OVERHEAD + 1000)
    assert memory.get(9) is not None


def test_a_value_larger_than_the_whole_memory_is_not_stored() -> None:
    memory: ResponseMemory[int, bytes] = ResponseMemory(max_entries=10, max_bytes=500)
    memory.put(1, b"x" * 1000, 1000)
    assert len(memory) == 0
