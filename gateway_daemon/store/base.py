"""The one small key-value interface every backend implements.

Keys are strings relative to the store's namespace (``/gateway/<cluster_id>/``);
the backend adds the namespace, so callers never see it and clusters sharing
one etcd never see each other's keys.  Values are bytes.  Every write returns
the store revision it made; ``create`` and ``update`` are the atomic
create-if-absent and update-if-unchanged (compare-and-set on the revision).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import AsyncIterator


class StoreError(Exception):
    """Base of every store error; the message is fit for a user."""


class StoreUnavailable(StoreError):
    """The backend cannot be reached (etcd down, database locked or unreadable)."""


class StoreFull(StoreUnavailable):
    """The backend refuses writes because it is out of space (etcd past its --quota-backend-bytes)."""


class KeyExists(StoreError):
    """create() found the key already there."""


class RevisionMismatch(StoreError):
    """update() or delete(revision=...) found the key changed or gone."""


class LeasesUnsupported(StoreError):
    """This backend has no leases (keys that vanish when their owner stops renewing them)."""


@dataclass(frozen=True)
class Entry:
    key: str
    value: bytes
    revision: int  # the revision that last modified this key


@dataclass(frozen=True)
class WatchEvent:
    kind: str  # "put" or "delete"
    key: str
    value: bytes | None
    revision: int


@dataclass(frozen=True)
class StoreSpace:
    """How full a backend with a quota is (etcd): the largest member's figures."""

    size: int     # bytes the database takes (etcd's dbSize: what its quota is checked against)
    in_use: int   # bytes of it that hold data (the rest is free pages a defragmentation gives back)
    quota: int    # bytes past which the backend refuses writes
    full: bool    # it refuses writes now (etcd's NOSPACE alarm is raised)


def namespace_for(cluster_id: str) -> str:
    return f"/gateway/{cluster_id}/"


class Store(abc.ABC):
    """Async key-value store. Implementations: memory, local (SQLite), etcd."""

    def __init__(self, namespace: str):
        self.namespace = namespace
        self.bytes_written = 0  # what this store has written since it was opened (keys and values)
        self.refusals = 0       # writes refused for want of space (StoreFull) since it was opened

    def _full(self, key: str) -> str:
        return self.namespace + key

    def _relative(self, full_key: str) -> str:
        return full_key[len(self.namespace):]

    @abc.abstractmethod
    async def get(self, key: str) -> Entry | None: ...

    @abc.abstractmethod
    async def put(self, key: str, value: bytes) -> int:
        """Write unconditionally; returns the new revision."""

    @abc.abstractmethod
    async def create(self, key: str, value: bytes) -> int:
        """Write only when the key is absent, else raise KeyExists."""

    @abc.abstractmethod
    async def update(self, key: str, value: bytes, revision: int) -> int:
        """Write only when the key is still at `revision`, else raise RevisionMismatch."""

    @abc.abstractmethod
    async def delete(self, key: str, revision: int | None = None) -> bool:
        """Remove the key; False when it was absent. With `revision`, only when unchanged."""

    @abc.abstractmethod
    async def list(self, prefix: str) -> list[Entry]:
        """Entries whose key starts with `prefix`, sorted by key."""

    @abc.abstractmethod
    def watch(self, prefix: str) -> AsyncIterator[WatchEvent]:
        """Events for keys under `prefix` from now on, until the iterator is closed."""

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every key under `prefix`; how many were removed."""
        removed = 0
        for entry in await self.list(prefix):
            removed += await self.delete(entry.key)
        return removed

    # ------------------------------------------------------------ space (backends with a quota: etcd)
    async def space(self) -> StoreSpace | None:
        """How full the backend is; None for a backend without a quota."""
        return None

    async def reclaim(self) -> None:
        """Give back the space history and deleted keys take (etcd: compact, defragment, and lift the
        NOSPACE alarm once under the quota again).  Nothing for a backend without a quota."""
        return None

    # ------------------------------------------------------------ leases (etcd and memory only)
    # A lease is granted for `ttl` seconds; keys written with it vanish (a delete event) when it is
    # revoked, or when nobody has kept it alive for `ttl` seconds.

    async def grant_lease(self, ttl: int) -> int:
        """A new lease id."""
        raise LeasesUnsupported(f"the {type(self).__name__} backend has no leases; runners need etcd")

    async def put_leased(self, key: str, value: bytes, lease: int) -> int:
        """put(), the key tied to `lease`."""
        raise LeasesUnsupported(f"the {type(self).__name__} backend has no leases; runners need etcd")

    async def keep_alive(self, lease: int) -> bool:
        """Renew the lease for its ttl; False when it is gone already (expired or revoked)."""
        raise LeasesUnsupported(f"the {type(self).__name__} backend has no leases; runners need etcd")

    async def revoke_lease(self, lease: int) -> None:
        """End the lease now: its keys are deleted."""
        raise LeasesUnsupported(f"the {type(self).__name__} backend has no leases; runners need etcd")

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> "Store":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
