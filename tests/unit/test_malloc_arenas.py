"""`limit_malloc_arenas`: applied on glibc, never over an operator's own setting."""

from __future__ import annotations

import platform

import pytest

from streaming.malloc_arenas import limit_malloc_arenas


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_glibc_takes_the_arena_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    assert limit_malloc_arenas(8) is True  # glibc's default on this machine's 2 cores would be 16


@pytest.mark.parametrize(
    "name, value",
    [("MALLOC_ARENA_MAX", "4"), ("GLIBC_TUNABLES", "glibc.malloc.arena_max=4:glibc.malloc.tcache_count=0")],
)
def test_an_operators_own_setting_is_left_alone(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    assert limit_malloc_arenas() is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_freed_memory_is_handed_back() -> None:
    from streaming.malloc_arenas import give_back_free_memory

    chunks = [bytes(20_000) for _ in range(5_000)]  # 100 MB, from malloc (above Python's small-object limit)
    del chunks[::2]  # half of it freed in holes glibc keeps for reuse
    assert give_back_free_memory() is True
    del chunks


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_a_dedicated_converter_hands_memory_back_on_a_period(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from streaming import malloc_arenas

    called = threading.Semaphore(0)
    monkeypatch.setattr(malloc_arenas, "give_back_free_memory", lambda: called.release() or True)
    stop = threading.Event()
    thread = malloc_arenas.give_back_free_memory_every(0.01, stop)
    try:
        assert thread is not None and thread.daemon
        assert called.acquire(timeout=5) and called.acquire(timeout=5), "not called twice within 5 s"
    finally:
        stop.set()
    thread.join(5)
    assert not thread.is_alive()
