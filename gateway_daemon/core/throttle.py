"""Login throttling: repeated wrong passwords lock a user, or a source address, for a growing delay.

After `per_user` wrong passwords in a row for one user (default 5), or
`per_address` from one address (default 20), every further attempt is
refused - the right password too - until the lock ends.  Each wrong password
past the limit doubles the lock, from `first_lock` seconds (default 5) up to
`longest_lock` (default 900).  A successful login clears the user's count and
its address's.  An admin lifts a user's lock with ``gateway edit user NAME
--unlock``; an address's lock ends with time (or a restart of the server).

A user's count is kept in the store (``logins/<name>``), so every server of a
cluster sees it; an address's is kept in this server's memory, at most
MAX_ADDRESSES of them, so that made-up names or addresses cost the store
nothing.  A locked attempt is refused before any password is hashed.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import OrderedDict
from datetime import datetime, timezone

from ..store import Store
from .errors import Unauthenticated

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

    # ------------------------------------------------------------ the counts
    async def _user(self, name: str) -> Count:
        entry = await self.store.get(f"logins/{name}")
        if entry is None:
            return Count()
        try:
            data = json.loads(entry.value)
            return Count(int(data.get("failures", 0)), float(data.get("locked_until", 0.0)))
        except (ValueError, TypeError, AttributeError):
            return Count()

    def _address(self, source: str) -> Count:
        count = self._addresses.get(source)
        if count is None:
            count = self._addresses[source] = Count()
            while len(self._addresses) > MAX_ADDRESSES:
                self._addresses.popitem(last=False)
        self._addresses.move_to_end(source)
        return count

    # ------------------------------------------------------------ what a login asks
    async def check(self, name: str, source: str) -> None:
        """Refuse (Unauthenticated, saying until when) while the user or the address is locked."""
        now = time.time()
        if source and source in self._addresses and self._addresses[source].locked_until > now:
            raise Unauthenticated(f"too many failed logins from {source}: try again after "
                                  f"{until_text(self._addresses[source].locked_until)}")
        if name and len(name) <= 256:
            count = await self._user(name)
            if count.locked_until > now:
                raise Unauthenticated(f"too many failed logins for {name}: try again after "
                                      f"{until_text(count.locked_until)}, or ask an admin to unlock it "
                                      f"(gateway edit user {name} --unlock)")

    async def failed(self, name: str, source: str) -> None:
        """A wrong password: for `name` (an existing user; "" when there is none) and from `source`."""
        now = time.time()
        if source:
            count = self._address(source)
            count.failures += 1
            lock = self.limits.lock_for(count.failures, self.limits.per_address)
            if lock:
                count.locked_until = now + lock
        if name:
            count = await self._user(name)
            count.failures += 1
            lock = self.limits.lock_for(count.failures, self.limits.per_user)
            if lock:
                count.locked_until = now + lock
            await self.store.put(f"logins/{name}", json.dumps(dataclasses.asdict(count)).encode())

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
