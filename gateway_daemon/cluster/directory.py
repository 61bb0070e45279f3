"""The registry of runners: ``runners/<id>`` entries held under each runner's lease.

A runner's Announcer writes its entry (address, tags, capacity, load, last
seen) under a lease and keeps the lease alive; when the runner dies nobody
renews it and etcd deletes the entry within the lease's TTL.  A server's
RunnerDirectory keeps a live view of the entries from a watch, re-made whenever the
store comes back after an outage.

An entry carries a MAC under the cluster's secrets key (core/integrity.py),
bound to its key: a server never chooses an entry without a valid one (written
into etcd by someone else, or by a runner without the cluster's key) and says
so once in its log.  The token servers present to runners is derived from the
same key, never stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import logging
import time
from typing import Awaitable, Callable

from ..core.errors import FailedPrecondition
from ..core.access.integrity import RecordMacs, Untrusted
from ..core.resources.runners import RUNNERS_PREFIX, RunnerInfo, runner_key
from ..store import RevisionMismatch, Store, StoreError, WatchEvent

log = logging.getLogger("gateway.cluster")
RETRY_SECONDS = 1.0


def runner_token(macs: RecordMacs) -> str | None:
    """The cluster's shared secret servers present to runners, derived from the secrets key file (None
    without a readable one: such a runner admits no server)."""
    try:
        return macs.token("runner-token")
    except FailedPrecondition:
        return None


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


async def keep_watching(store: Store, prefix: str, start: Callable[[], Awaitable[None]],
                        changed: Callable[[WatchEvent], Awaitable[None]], what: str) -> None:
    """Follow the keys under `prefix` for as long as the task lives: `start()` each time the watch
    (re)starts, to read what it follows from, then `changed(event)` for every change.  A store that
    cannot be reached is said once in the log and tried again every RETRY_SECONDS."""
    complained = False
    while True:
        watch = None
        try:
            watch = store.watch(prefix)
            await start()
            if complained:
                log.info("%s is readable again", what)
                complained = False
            async for event in watch:
                await changed(event)
        except StoreError as exc:
            if not complained:
                log.warning("cannot read %s (will keep trying): %s", what, exc)
                complained = True
        finally:
            if watch is not None:
                with contextlib.suppress(Exception):
                    await watch.aclose()  # type: ignore[attr-defined]
        await asyncio.sleep(RETRY_SECONDS)


class LeasedKey:
    """Keeps one key in the store, under a lease, while this process lives: when it dies nobody
    renews the lease and etcd deletes the key within the lease's TTL."""

    what = "entry"  # for the log: what the key is

    def __init__(self, store: Store, key: str, ttl: int):
        self.store = store
        self.key = key
        self.ttl = ttl
        self._lease: int | None = None
        self._task: asyncio.Task | None = None
        self._poke = asyncio.Event()
        self._complained = False

    def value(self) -> bytes:
        return b"1"

    async def start(self) -> None:
        """Write the key now (raises StoreError when the store cannot be reached), then keep it up."""
        await self._announce()
        self._task = asyncio.get_running_loop().create_task(self._keep())

    async def _announce(self) -> None:
        if self._lease is None or not await self.store.keep_alive(self._lease):
            if self._lease is not None:
                log.warning("the lease of the %s expired; writing it again with a new one", self.what)
            self._lease = await self.store.grant_lease(self.ttl)
        try:
            await self.store.put_leased(self.key, self.value(), self._lease)
        except RevisionMismatch:  # the lease expired between the keep-alive and the write
            self._lease = None
            raise StoreError(f"the lease of the {self.what} expired while writing it") from None

    async def _keep(self) -> None:
        interval = max(0.5, self.ttl / 3)
        while True:
            await wait_event(self._poke, interval)
            self._poke.clear()
            try:
                await self._announce()
                if self._complained:
                    log.info("the %s is written again", self.what)
                    self._complained = False
            except StoreError as exc:
                if not self._complained:
                    log.warning("cannot renew the %s (will keep trying): %s", self.what, exc)
                    self._complained = True
                await asyncio.sleep(RETRY_SECONDS)

    async def stop(self) -> None:
        """Remove the key now: the lease is revoked, the key goes with it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._lease is not None:
            with contextlib.suppress(StoreError):
                await self.store.revoke_lease(self._lease)
            self._lease = None


class Announcer(LeasedKey):
    """Keeps this runner's entry in the registry while the runner lives."""

    what = "registry entry"

    def __init__(self, store: Store, info: RunnerInfo, ttl: int, macs: RecordMacs | None = None):
        """`macs`: signs the entry (a runner without the cluster's key announces it unsigned: its problem is
        seen in the list, and no server sends it anything)."""
        super().__init__(store, runner_key(info.id), ttl)
        self.info = info
        self.macs = macs

    def update(self, **changes) -> None:
        """Change the entry (load, draining, ...); written at once, in the background."""
        self.info = dataclasses.replace(self.info, **changes)
        self._poke.set()

    def value(self) -> bytes:
        self.info = dataclasses.replace(self.info, last_seen=time.time())
        if self.macs is not None and self.macs.available():
            return self.macs.sign(self.key, self.info.to_dict())
        return self.info.encode()


class RunnerDirectory:
    """A server's live view of the runners of its cluster."""

    def __init__(self, store: Store, macs: RecordMacs):
        self.store = store
        self.macs = macs
        self.runners: dict[str, RunnerInfo] = {}  # the trusted ones: a run may go to these
        self.untrusted: dict[str, RunnerInfo] = {}  # entries without a valid MAC: never chosen
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
        async def reread() -> None:
            entries = await self.store.list(RUNNERS_PREFIX)
            self.runners, self.untrusted = {}, {}
            for entry in entries:
                await self._apply_put(entry.key, entry.value)
            await self._notify()

        async def changed(event: WatchEvent) -> None:
            if event.kind == "put" and event.value is not None:
                await self._apply_put(event.key, event.value)
            else:
                self.runners.pop(event.key[len(RUNNERS_PREFIX):], None)
                self.untrusted.pop(event.key[len(RUNNERS_PREFIX):], None)
            await self._notify()

        await keep_watching(self.store, RUNNERS_PREFIX, reread, changed, "the runner registry")

    async def _apply_put(self, key: str, raw: bytes) -> None:
        runner_id = key[len(RUNNERS_PREFIX):]
        self.runners.pop(runner_id, None)
        self.untrusted.pop(runner_id, None)
        try:
            info = RunnerInfo.decode(raw)
        except (ValueError, TypeError, AttributeError):
            await self.macs.refused(key, "it is not a runner's entry")
            return
        try:
            self.macs.open(key, raw)
        except Untrusted as exc:  # said once per entry and reason, not at every heartbeat
            await self.macs.refused(key, f"{exc}; no run is sent to it" + (f" (it announces: {info.problem})"
                                                                          if info.problem else ""))
            self.untrusted[runner_id] = info
            return
        if info.id != runner_id:
            await self.macs.refused(key, f"it names another runner ({info.id})")
            return
        self.runners[runner_id] = info

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
