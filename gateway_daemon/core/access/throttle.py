"""Login throttling: repeated wrong passwords lock a user, or a source address, for a growing delay.

After `per_user` wrong passwords in a row for one user (default 5), or
`per_address` from one address (default 20), every further attempt is
refused - the right password too - until the lock ends.  Each wrong password
past the limit doubles the lock, from `first_lock` seconds (default 5) up to
`longest_lock` (default 900).  A successful login clears the user's count and
its address's.  An admin lifts a user's lock with ``gateway edit user NAME
--unlock``; an address's lock ends with time (or a restart of the server).

An attempt counts as a wrong password from the moment it starts, before its
password is hashed (`attempt`), and a success takes it back: so attempts in
flight at once are counted as they arrive, and a burst of parallel guesses
gets no more passwords tried than the limit, the right one last or not.  The
lock is decided atomically: an address's count without a pause in between,
a user's one attempt at a time on this server and by compare-and-swap in the
store across the servers of a cluster.

A user's count is kept in the store (``logins/<name>``), so every server of a
cluster sees it; an address's is kept in this server's memory, at most
MAX_ADDRESSES of them, so that made-up names or addresses cost the store
nothing.  A locked attempt is refused before any password is hashed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections import OrderedDict
from typing import AsyncIterator
from datetime import datetime, timezone

from ...store import KeyExists, RevisionMismatch, Store
from ..errors import Unauthenticated

MAX_ADDRESSES = 10000


def until_text(when: float) -> str:
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(when: float) -> str:
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if when else ""


@dataclasses.dataclass
class Count:
    failures: int = 0
    locked_until: float = 0.0


@dataclasses.dataclass(frozen=True)
class ThrottleLimits:
    per_user: int = 5
    per_address: int = 20
    first_lock: float = 5.0
    longest_lock: float = 900.0

    def lock_for(self, failures: int, limit: int) -> float:
        """Seconds of lock after `failures` wrong passwords in a row (0 below the limit)."""
        if failures < limit:
            return 0.0
        return min(self.first_lock * 2 ** min(failures - limit, 32), self.longest_lock)


class LoginThrottle:
    def __init__(self, store: Store, limits: ThrottleLimits | None = None):
        self.store = store
        self.limits = limits or ThrottleLimits()
        self._addresses: OrderedDict[str, Count] = OrderedDict()
        self._turns: dict[str, list] = {}  # user name -> [lock, attempts waiting for it]

    # ------------------------------------------------------------ the counts
    async def _user(self, name: str) -> Count:
        return (await self._user_entry(name))[0]

    async def _user_entry(self, name: str) -> tuple[Count, int | None]:
        """The user's count and the revision it is stored at (None: not stored)."""
        entry = await self.store.get(f"logins/{name}")
        if entry is None:
            return Count(), None
        try:
            data = json.loads(entry.value)
            return Count(int(data.get("failures", 0)), float(data.get("locked_until", 0.0))), entry.revision
        except (ValueError, TypeError, AttributeError):
            return Count(), entry.revision

    def _address(self, source: str) -> Count:
        count = self._addresses.get(source)
        if count is None:
            count = self._addresses[source] = Count()
            while len(self._addresses) > MAX_ADDRESSES:
                self._addresses.popitem(last=False)
        self._addresses.move_to_end(source)
        return count

    @contextlib.asynccontextmanager
    async def _turn(self, name: str) -> AsyncIterator[None]:
        """One attempt at a time for `name` on this server (the lock map holds only names being tried)."""
        turn = self._turns.get(name)
        if turn is None:
            turn = self._turns[name] = [asyncio.Lock(), 0]
        turn[1] += 1
        try:
            async with turn[0]:
                yield
        finally:
            turn[1] -= 1
            if not turn[1]:
                self._turns.pop(name, None)

    def _count_failure(self, count: Count, limit: int, now: float) -> None:
        count.failures += 1
        lock = self.limits.lock_for(count.failures, limit)
        if lock:
            count.locked_until = now + lock

    def _address_refusal(self, source: str, now: float) -> Unauthenticated | None:
        count = self._addresses.get(source) if source else None
        if count is not None and count.locked_until > now:
            return Unauthenticated(f"too many failed logins from {source}: try again after "
                                   f"{until_text(count.locked_until)}")
        return None

    @staticmethod
    def _user_refusal(name: str, count: Count, now: float) -> Unauthenticated | None:
        if count.locked_until > now:
            return Unauthenticated(f"too many failed logins for {name}: try again after "
                                   f"{until_text(count.locked_until)}, or ask an admin to unlock it "
                                   f"(gateway edit user {name} --unlock)")
        return None

    # ------------------------------------------------------------ what a login asks
    async def attempt(self, name: str, source: str) -> None:
        """Before a password is hashed: refuse (Unauthenticated, saying until when) while the user or the address
        is locked, else count the attempt as a wrong password for `name` (an existing user; "" when there is
        none) and from `source`, locking them when this reaches the limit.  `succeeded` takes it back."""
        refusal = self._address_refusal(source, time.time())
        if refusal is not None:
            raise refusal
        address = self._address(source) if source else None
        if address is not None:  # counted now, with no pause since the check: atomic per address
            self._count_failure(address, self.limits.per_address, time.time())
        if not name:
            return
        try:
            async with self._turn(name):
                while True:
                    count, revision = await self._user_entry(name)
                    now = time.time()
                    refusal = self._user_refusal(name, count, now)
                    if refusal is not None:
                        raise refusal
                    self._count_failure(count, self.limits.per_user, now)
                    value = json.dumps(dataclasses.asdict(count)).encode()
                    try:
                        if revision is None:
                            await self.store.create(f"logins/{name}", value)
                        else:
                            await self.store.update(f"logins/{name}", value, revision)
                        return
                    except (KeyExists, RevisionMismatch):
                        continue  # another server counted one meanwhile: count again on top of it
        except Unauthenticated:
            if address is not None:  # refused for the user's lock: no password of this address was tried
                address.failures = max(0, address.failures - 1)
            raise

    async def succeeded(self, name: str, source: str) -> None:
        self._addresses.pop(source, None)
        if await self.store.get(f"logins/{name}") is not None:
            await self.store.delete(f"logins/{name}")

    async def unlock(self, name: str) -> bool:
        """Lift `name`'s lock and forget their failures; False when there was nothing to lift."""
        return await self.store.delete(f"logins/{name}")

    async def locked_until(self, name: str) -> str:
        count = await self._user(name)
        return iso(count.locked_until) if count.locked_until > time.time() else ""
