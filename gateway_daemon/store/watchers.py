"""Fan-out of watch events to subscribers, safe to publish from any thread."""

from __future__ import annotations

import asyncio
import threading
from typing import Callable

from .base import StoreUnavailable, WatchEvent

_CLOSED = object()


class Subscription:
    """An async iterator of WatchEvents under one prefix.

    It is registered when made, so no event between ``watch()`` and the first
    ``__anext__`` is lost.  Closing it (``aclose``) unregisters it.
    """

    def __init__(self, prefix: str, on_close: Callable[["Subscription"], None]):
        self.prefix = prefix
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue = asyncio.Queue()
        self._on_close = on_close
        self._closed = False

    def deliver(self, item: object) -> None:
        """Called from any thread."""
        if self._closed:
            return
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed
            self._closed = True

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> WatchEvent:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _CLOSED:
            self._closed = True
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        return item  # type: ignore[return-value]

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._on_close(self)


class Watchers:
    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()

    def subscribe(self, prefix: str, on_close: Callable[[Subscription], None] | None = None) -> Subscription:
        def closed(sub: Subscription) -> None:
            with self._lock:
                if sub in self._subs:
                    self._subs.remove(sub)
            if on_close:
                on_close(sub)

        sub = Subscription(prefix, closed)
        with self._lock:
            self._subs.append(sub)
        return sub

    def publish(self, event: WatchEvent) -> None:
        with self._lock:
            targets = [s for s in self._subs if event.key.startswith(s.prefix)]
        for sub in targets:
            sub.deliver(event)

    def fail(self, error: StoreUnavailable) -> None:
        """End every subscription with an error (the backend is gone)."""
        with self._lock:
            targets, self._subs = self._subs, []
        for sub in targets:
            sub.deliver(error)

    def close(self) -> None:
        with self._lock:
            targets, self._subs = self._subs, []
        for sub in targets:
            sub.deliver(_CLOSED)

    def __len__(self) -> int:
        return len(self._subs)
