"""The audio cache: LRU bounds in memory, atomic files on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from tts import cache as cache_module
from tts.cache import AudioCache, CacheKey

pytestmark = pytest.mark.anyio


def audio_files(folder: Path) -> list[Path]:
    return sorted(folder.iterdir())


def key(text: str, **kw: object) -> CacheKey:
    fields: dict[str, object] = {
        "provider": "espeak", "voice": "gmw/en", "lang": "en", "speed": 1.0, "fmt": "mp3", **kw
    }  # fmt: skip
    return CacheKey(text=text, **fields)  # type: ignore[arg-type]


async def test_every_field_is_part_of_the_key() -> None:
    cache = AudioCache()
    await cache.put(key("hi"), b"a")
    assert await cache.get(key("hi")) == b"a"
    for variant in [
        key("hi!"),
        key("hi", provider="sample"),
        key("hi", voice="gmw/en-US"),
        key("hi", lang="en-us"),
        key("hi", speed=1.5),
        key("hi", fmt="wav"),
    ]:
        assert await cache.get(variant) is None


async def test_least_recently_used_entry_goes_first() -> None:
    cache = AudioCache(max_entries=2)
    await cache.put(key("a"), b"1")
    await cache.put(key("b"), b"2")
    assert await cache.get(key("a")) == b"1"  # now "b" is the oldest
    await cache.put(key("c"), b"3")
    assert await cache.get(key("b")) is None
    assert await cache.get(key("a")) == b"1" and await cache.get(key("c")) == b"3"
    assert len(cache) == 2


async def test_byte_budget_is_kept() -> None:
    cache = AudioCache(max_entries=100, max_bytes=1000, max_entry_bytes=600)
    for i in range(5):
        await cache.put(key(str(i)), bytes(300))
    assert cache.nbytes <= 1000 and len(cache) == 3
    await cache.put(key("huge"), bytes(700))  # over max_entry_bytes: not kept
    assert await cache.get(key("huge")) is None


async def test_zero_entries_keeps_nothing_in_memory() -> None:
    cache = AudioCache(max_entries=0)
    await cache.put(key("a"), b"1")
    assert await cache.get(key("a")) is None


async def test_disk_entries_survive_a_new_cache_object(tmp_path: Path) -> None:
    first = AudioCache(directory=tmp_path)
    await first.put(key("persist"), b"audio-bytes")
    second = AudioCache(directory=tmp_path)
    assert await second.get(key("persist")) == b"audio-bytes"
    assert len(second) == 1  # promoted into memory
    assert [f.suffix for f in audio_files(tmp_path)] == [".audio"]  # no temporary files left behind


async def test_disk_is_pruned_to_the_most_recent_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "PRUNE_EVERY", 1)
    cache = AudioCache(max_entries=0, directory=tmp_path, max_disk_entries=3)
    for i in range(6):
        await cache.put(key(str(i)), b"x")
    assert len(audio_files(tmp_path)) == 3
    assert await cache.get(key("5")) == b"x"
