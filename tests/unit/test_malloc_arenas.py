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
