"""A cache of finished audio: a bounded LRU in memory, optionally backed by a directory.

Bounded by entry count AND total bytes (a 5,000-character WAV is ~13 MB, so a count
alone would not bound memory); audio over ``max_entry_bytes`` is not kept at all. On
disk each entry is one file named by the SHA-256 of its key, written atomically
(temporary file + ``os.replace``) so a reader never sees half a file; the directory
keeps the ``max_disk_entries`` most recently used files.
Use it from one event loop; disk I/O runs in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from collections import OrderedDict
from dataclasses import astuple, dataclass
from pathlib import Path

SUFFIX = ".audio"
PRUNE_EVERY = 32  # disk writes between two prunes of the directory


@dataclass(frozen=True, slots=True)
class CacheKey:
    text: str
    provider: str
    voice: str
    lang: str
    speed: float
    fmt: str

    def digest(self) -> str:
        raw = json.dumps(astuple(self), ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()


class AudioCache:
    def __init__(
        self,
        max_entries: int = 256,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        directory: str | Path | None = None,
        max_disk_entries: int = 4096,
        max_entry_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self.max_entry_bytes = min(max_entry_bytes, max_bytes)  # larger audio is not kept
        self.max_disk_entries = max_disk_entries
        self.directory = Path(directory) if directory is not None else None
        self._memory: OrderedDict[CacheKey, bytes] = OrderedDict()
        self._bytes = 0
        self._writes = 0
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)

    def __len__(self) -> int:
        return len(self._memory)

    @property
    def nbytes(self) -> int:
        return self._bytes

    async def get(self, key: CacheKey) -> bytes | None:
        data = self._memory.get(key)
        if data is not None:
            self._memory.move_to_end(key)
            return data
        if self.directory is None:
            return None
        data = await asyncio.to_thread(self._read, self._path(key))
        if data is not None:
            self._remember(key, data)
        return data

    async def put(self, key: CacheKey, data: bytes) -> None:
        self._remember(key, data)
        if self.directory is not None:
            self._writes += 1
            prune = self._writes % PRUNE_EVERY == 0
            await asyncio.to_thread(self._write, self._path(key), data, prune)

    def clear(self) -> None:
        """Forget the in-memory entries (files on disk stay)."""
        self._memory.clear()
        self._bytes = 0

    def _remember(self, key: CacheKey, data: bytes) -> None:
        if self.max_entries <= 0 or len(data) > self.max_entry_bytes:
            return
        old = self._memory.pop(key, None)
        self._bytes -= len(old) if old is not None else 0
        self._memory[key] = data
        self._bytes += len(data)
        while len(self._memory) > self.max_entries or self._bytes > self.max_bytes:
            _, evicted = self._memory.popitem(last=False)
            self._bytes -= len(evicted)

    def _path(self, key: CacheKey) -> Path:
        assert self.directory is not None
        return self.directory / f"{key.digest()}{SUFFIX}"

    @staticmethod
    def _read(path: Path) -> bytes | None:
        try:
            data = path.read_bytes()
            os.utime(path)  # most recently used: the last to be pruned
        except FileNotFoundError:
            return None
        return data

    def _write(self, path: Path, data: bytes, prune: bool) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=SUFFIX + ".part")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if prune:
            self._prune()

    def _prune(self) -> None:
        assert self.directory is not None
        files = sorted(self.directory.glob(f"*{SUFFIX}"), key=_mtime, reverse=True)
        for stale in files[self.max_disk_entries :]:
            stale.unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
