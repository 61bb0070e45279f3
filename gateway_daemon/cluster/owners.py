"""Servers watch each other's runs: a server that dies does not leave them "running".

Each server holds ``owners/<its name>`` (core.owners) under a lease while it
lives; the records of the runs it keeps name it.  When a server dies nobody
renews its lease, etcd deletes the key within the TTL, and the other servers
end its unfinished runs as interrupted.  A server starting up does the same for
keepers that went while no server was watching.  (A runner executing such a run
notices that its server went away and stops the process.)  A local `gateway`
using the same etcd holds no entry: its runs are told by its process, on its
machine.  On the embedded store, which has no leases, a starting server ends
the runs left by processes of its machine that died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..core.runs.keepers import LEASED, OWNERS_PREFIX, process_gone
from ..core.runs.lifecycle import RunLifecycle
from ..store import LeasesUnsupported, StoreError, WatchEvent
from .directory import LeasedKey, keep_watching

log = logging.getLogger("gateway.cluster")


class Keepers:
    def __init__(self, lifecycle: RunLifecycle, ttl: int):
        self.lifecycle = lifecycle
        self.store = lifecycle.store
        self.ttl = ttl
        self.name = LEASED + lifecycle.owner
        self.entry: LeasedKey | None = LeasedKey(self.store, OWNERS_PREFIX + self.name, ttl)
        self.entry.what = "server's entry"
        self._task: asyncio.Task | None = None
        self._checks: set[asyncio.Task] = set()

    async def start(self) -> None:
        """Write this server's entry (StoreError when the store cannot be reached), then watch the others."""
        assert self.entry is not None
        try:
            await self.entry.start()
        except LeasesUnsupported:  # the embedded store, on one machine: a keeper is a process of it
            self.entry = None
            await self._recover()
            return
        self.lifecycle.owner = self.name  # the runs this server keeps are known to be told by its entry
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _gone(self, owner: str) -> bool:
        if owner.startswith(LEASED):
            return await self.store.get(OWNERS_PREFIX + owner) is None
        return process_gone(owner)  # a local `gateway` on this store: only its own machine can tell

    async def _recover(self, only: str | None = None) -> None:
        ended = await self.lifecycle.recover(self._gone, only)
        if ended:
            log.warning("ended %d runs as interrupted: the gateway process that kept them is gone", ended)

    async def _check_later(self, owner: str) -> None:
        # A server whose lease expired while it lived (cut off from etcd for a TTL) writes its entry
        # again within a third of the TTL once it can: give it that chance before its runs are ended.
        await asyncio.sleep(self.ttl / 2)
        with contextlib.suppress(StoreError):
            await self._recover(owner)

    async def _watch(self) -> None:
        async def changed(event: WatchEvent) -> None:
            if event.kind != "put":
                task = asyncio.get_running_loop().create_task(self._check_later(event.key[len(OWNERS_PREFIX):]))
                self._checks.add(task)
                task.add_done_callback(self._checks.discard)

        await keep_watching(self.store, OWNERS_PREFIX, self._recover, changed, "the other servers' entries")

    async def close(self) -> None:
        for task in [self._task, *self._checks]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.entry is not None:
            await self.entry.stop()
