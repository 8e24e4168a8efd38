"""Java's AOT cache: used when present, recorded by one process when absent, kept only after a clean exit."""

from __future__ import annotations

from pathlib import Path

from kdp.devstack.aot import aot_cache, keep_recordings
from kdp.devstack.java import JavaRuntime

OPTIONS = ("-Xmx512m",)


def _java(major: int, executable: str = "/opt/java/bin/java") -> JavaRuntime:
    return JavaRuntime(executable, major, f'openjdk version "{major}.0.1"', "test")


def test_java_before_25_gets_no_aot_options(tmp_path: Path) -> None:
    assert aot_cache(_java(21), tmp_path, "kafka", OPTIONS, tmp_path / "libs", tmp_path / "node-1") is None


def test_without_a_cache_only_the_chosen_process_records(tmp_path: Path) -> None:
    cache = aot_cache(_java(25), tmp_path / "cache", "kafka", OPTIONS, tmp_path / "libs", tmp_path / "node-1")
    assert cache is not None

    assert cache.jvm_options(may_record=False) == []
    assert f"-XX:AOTCacheOutput={cache.recording}" in cache.jvm_options(may_record=True)
    assert cache.recording.parent == tmp_path / "node-1"


def test_an_existing_cache_is_used_by_every_process(tmp_path: Path) -> None:
    cache = aot_cache(_java(25), tmp_path / "cache", "kafka", OPTIONS, tmp_path / "libs", tmp_path / "node-2")
    assert cache is not None
    cache.cached.parent.mkdir(parents=True)
    cache.cached.write_bytes(b"aot")

    assert f"-XX:AOTCache={cache.cached}" in cache.jvm_options(may_record=False)
    assert f"-XX:AOTCache={cache.cached}" in cache.jvm_options(may_record=True)
    assert not any("AOTCacheOutput" in option for option in cache.jvm_options(may_record=True))


def test_caches_of_other_java_builds_or_jars_do_not_collide(tmp_path: Path) -> None:
    def cached(java: JavaRuntime, libs: str, options: tuple[str, ...] = OPTIONS) -> Path:
        cache = aot_cache(java, tmp_path, "kafka", options, tmp_path / libs, tmp_path / "node-1")
        assert cache is not None
        return cache.cached

    paths = {
        cached(_java(25), "libs"),
        cached(_java(25, "/other/java"), "libs"),
        cached(_java(26), "libs"),
        cached(_java(25), "other-libs"),
        cached(_java(25), "libs", ("-Xmx1g",)),
    }
    assert len(paths) == 5


def test_a_recording_becomes_the_cache_after_a_clean_exit(tmp_path: Path) -> None:
    cache = aot_cache(_java(25), tmp_path / "cache", "registry", OPTIONS, tmp_path / "app", tmp_path / "registry")
    assert cache is not None
    cache.recording.parent.mkdir()
    cache.recording.write_bytes(b"recorded classes")

    kept = keep_recordings(cache.recording.parent, tmp_path / "cache", exited_cleanly=True)

    assert kept == [cache.cached]
    assert cache.cached.read_bytes() == b"recorded classes"
    assert not cache.recording.exists()


def test_a_new_cache_replaces_the_programs_older_one(tmp_path: Path) -> None:
    older = tmp_path / "cache" / "aot" / "registry-0000000000000000.aot"
    older.parent.mkdir(parents=True)
    older.write_bytes(b"made with another Java")
    other_program = older.with_name("kafka-0000000000000000.aot")
    other_program.write_bytes(b"kafka")
    cache = aot_cache(_java(25), tmp_path / "cache", "registry", OPTIONS, tmp_path / "app", tmp_path / "registry")
    assert cache is not None
    cache.recording.parent.mkdir()
    cache.recording.write_bytes(b"recorded classes")

    keep_recordings(cache.recording.parent, tmp_path / "cache", exited_cleanly=True)

    assert sorted(path.name for path in older.parent.iterdir()) == sorted([cache.cached.name, other_program.name])


def test_a_recording_of_a_killed_process_is_discarded(tmp_path: Path) -> None:
    cache = aot_cache(_java(25), tmp_path / "cache", "registry", OPTIONS, tmp_path / "app", tmp_path / "registry")
    assert cache is not None
    cache.recording.parent.mkdir()
    cache.recording.write_bytes(b"maybe half written")

    assert keep_recordings(cache.recording.parent, tmp_path / "cache", exited_cleanly=False) == []
    assert not cache.recording.exists()
    assert not cache.cached.exists()
