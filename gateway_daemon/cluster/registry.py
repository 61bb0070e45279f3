"""The registry of runners: ``runners/<id>`` entries held under each runner's lease.

A runner's Announcer writes its entry (address, tags, capacity, load, last
seen) under a lease and keeps the lease alive; when the runner dies nobody
renews it and etcd deletes the entry within the lease's TTL.  A server's
Registry keeps a live view of the entries from a watch, re-made whenever the
store comes back after an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import logging
import secrets
import time

from ..core.runners import RUNNERS_PREFIX, RunnerInfo, runner_key
from ..store import KeyExists, RevisionMismatch, Store, StoreError

log = logging.getLogger("gateway.cluster")
TOKEN_KEY = "cluster/runner-token"
RETRY_SECONDS = 1.0


async def runner_token(store: Store) -> str:
    """The cluster's shared secret servers present to runners; made by whoever needs it first."""
    entry = await store.get(TOKEN_KEY)
    if entry is None:
        try:
            await store.create(TOKEN_KEY, secrets.token_urlsafe(32).encode())
        except KeyExists:
            pass  # another server or runner made it first: use theirs
        entry = await store.get(TOKEN_KEY)
    assert entry is not None
    return entry.value.decode()


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` pass; True when set.  (Not wait_for: on Python 3.11 a
    cancel that meets a just-set event can leave wait_for hanging.)"""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=seconds)
    finally:
        waiter.cancel()
    return event.is_set()


def same_token(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class Announcer:
    """Keeps this runner's entry in the registry, under a lease, while the runner lives."""

    def __init__(self, store: Store, info: RunnerInfo, ttl: int):
        self.store = store
        self.info = info
        self.ttl = ttl
        self._lease: int | None = None
        self._task: asyncio.Task | None = None
        self._poke = asyncio.Event()
        self._complained = False

    async def start(self) -> None:
        """Announce now (raises StoreError when the store cannot be reached), then keep it up."""
        await self._announce()
        self._task = asyncio.get_running_loop().create_task(self._keep())

    def update(self, **changes) -> None:
        """Change the entry (load, draining, ...); written at once, in the background."""
        self.info = dataclasses.replace(self.info, **changes)
        self._poke.set()

    async def _announce(self) -> None:
        if self._lease is None or not await self.store.keep_alive(self._lease):
            if self._lease is not None:
                log.warning("the registry lease expired; announcing again with a new one")
            self._lease = await self.store.grant_lease(self.ttl)
        self.info = dataclasses.replace(self.info, last_seen=time.time())
        try:
            await self.store.put_leased(runner_key(self.info.id), self.info.encode(), self._lease)
        except RevisionMismatch:  # the lease expired between the keep-alive and the write
            self._lease = None
            raise StoreError("the registry lease expired while announcing") from None

    async def _keep(self) -> None:
        interval = max(0.5, self.ttl / 3)
        while True:
            await wait_event(self._poke, interval)
            self._poke.clear()
            try:
                await self._announce()
                if self._complained:
                    log.info("announced in the registry again")
                    self._complained = False
            except StoreError as exc:
                if not self._complained:
                    log.warning("cannot renew the registry entry (will keep trying): %s", exc)
                    self._complained = True
                await asyncio.sleep(RETRY_SECONDS)

    async def stop(self) -> None:
        """Leave the registry now: the lease is revoked, the entry goes with it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._lease is not None:
            with contextlib.suppress(StoreError):
                await self.store.revoke_lease(self._lease)
            self._lease = None


class Registry:
    """A server's live view of the runners of its cluster."""

    def __init__(self, store: Store):
        self.store = store
        self.runners: dict[str, RunnerInfo] = {}
        self._changed = asyncio.Event()  # set (and replaced) at every change
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._keep())

    async def wait_for_change(self, timeout: float) -> None:
        await wait_event(self._changed, timeout)

    async def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _keep(self) -> None:
        complained = False
        while True:
            watch = None
            try:
                watch = self.store.watch(RUNNERS_PREFIX)
                entries = await self.store.list(RUNNERS_PREFIX)
                self.runners = {}
                for entry in entries:
                    self._apply_put(entry.value)
                await self._notify()
                if complained:
                    log.info("the runner registry is readable again: %d runners", len(self.runners))
                    complained = False
                async for event in watch:
                    if event.kind == "put" and event.value is not None:
                        self._apply_put(event.value)
                    else:
                        self.runners.pop(event.key[len(RUNNERS_PREFIX):], None)
                    await self._notify()
            except StoreError as exc:
                if not complained:
                    log.warning("cannot read the runner registry (will keep trying): %s", exc)
                    complained = True
            finally:
                if watch is not None:
                    with contextlib.suppress(Exception):
                        await watch.aclose()  # type: ignore[attr-defined]
            await asyncio.sleep(RETRY_SECONDS)

    def _apply_put(self, raw: bytes) -> None:
        try:
            info = RunnerInfo.decode(raw)
        except (ValueError, TypeError):
            log.warning("ignoring a registry entry that is not a runner")
            return
        self.runners[info.id] = info

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
