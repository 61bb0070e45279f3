"""In-memory backend: a dict and a revision counter. Nothing survives the process."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

from .base import Entry, KeyExists, RevisionMismatch, Store, WatchEvent
from .watchers import Watchers


class MemoryStore(Store):
    def __init__(self, namespace: str):
        super().__init__(namespace)
        self._data: dict[str, Entry] = {}
        self._revision = 0
        self._lock = asyncio.Lock()
        self._watchers = Watchers()

    def _write(self, key: str, value: bytes) -> int:
        self._revision += 1
        self._data[key] = Entry(key, value, self._revision)
        self._watchers.publish(WatchEvent("put", key, value, self._revision))
        return self._revision

    async def get(self, key: str) -> Entry | None:
        return self._data.get(key)

    async def put(self, key: str, value: bytes) -> int:
        async with self._lock:
            return self._write(key, value)

    async def create(self, key: str, value: bytes) -> int:
        async with self._lock:
            if key in self._data:
                raise KeyExists(key)
            return self._write(key, value)

    async def update(self, key: str, value: bytes, revision: int) -> int:
        async with self._lock:
            current = self._data.get(key)
            if current is None or current.revision != revision:
                raise RevisionMismatch(key)
            return self._write(key, value)

    async def delete(self, key: str, revision: int | None = None) -> bool:
        async with self._lock:
            current = self._data.get(key)
            if current is None:
                if revision is not None:
                    raise RevisionMismatch(key)
                return False
            if revision is not None and current.revision != revision:
                raise RevisionMismatch(key)
            del self._data[key]
            self._revision += 1
            self._watchers.publish(WatchEvent("delete", key, None, self._revision))
            return True

    async def list(self, prefix: str) -> list[Entry]:
        return [self._data[k] for k in sorted(self._data) if k.startswith(prefix)]

    def watch(self, prefix: str) -> AsyncIterator[WatchEvent]:
        return self._watchers.subscribe(prefix)
