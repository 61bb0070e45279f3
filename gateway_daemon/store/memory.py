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
        self._leases: dict[int, tuple[float, set[str]]] = {}  # id -> (ttl, keys)
        self._expiry: dict[int, asyncio.TimerHandle] = {}
        self._last_lease = 0

    def _write(self, key: str, value: bytes) -> int:
        for _, keys in self._leases.values():
            keys.discard(key)  # a plain write takes the key off its lease, as etcd does
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

    # ------------------------------------------------------------ leases
    def _arm(self, lease: int) -> None:
        if lease in self._expiry:
            self._expiry.pop(lease).cancel()
        ttl = self._leases[lease][0]
        self._expiry[lease] = asyncio.get_running_loop().call_later(ttl, self._expire, lease)

    def _expire(self, lease: int) -> None:
        self._expiry.pop(lease, None)
        _, keys = self._leases.pop(lease, (0, set()))
        for key in sorted(keys):
            if key in self._data:
                del self._data[key]
                self._revision += 1
                self._watchers.publish(WatchEvent("delete", key, None, self._revision))

    async def grant_lease(self, ttl: int) -> int:
        self._last_lease += 1
        lease = self._last_lease
        self._leases[lease] = (float(ttl), set())
        self._arm(lease)
        return lease

    async def put_leased(self, key: str, value: bytes, lease: int) -> int:
        async with self._lock:
            if lease not in self._leases:
                raise RevisionMismatch(f"{key}: the lease is gone")
            revision = self._write(key, value)
            self._leases[lease][1].add(key)
            return revision

    async def keep_alive(self, lease: int) -> bool:
        if lease not in self._leases:
            return False
        self._arm(lease)
        return True

    async def revoke_lease(self, lease: int) -> None:
        if lease in self._expiry:
            self._expiry.pop(lease).cancel()
        self._expire(lease)
