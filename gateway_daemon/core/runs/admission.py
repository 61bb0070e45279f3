"""The queue of runs on this machine: at most `limit` at once, the rest wait in the order they came."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable


class Admission:
    def __init__(self, limit: int):
        self.limit = limit
        self.running = 0
        self._waiting: list[str] = []  # run ids in queue order
        self._changed = asyncio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def acquire(self, run_id: str, cancel: asyncio.Event,
                      waiting: Callable[[str], Awaitable[None]]) -> bool:
        """Wait for a free slot in queue order, telling `waiting(reason)` where the run stands whenever
        that changes; False (no slot taken) when `cancel` is set first."""
        self._waiting.append(run_id)
        told = ""
        try:
            while not cancel.is_set():
                position = self._waiting.index(run_id)
                if self.running < self.limit and position == 0:
                    self.running += 1
                    return True
                reason = (f"waiting: position {position + 1} in the queue, "
                          f"{self.running} of {self.limit} runs at once already running")
                if reason != told:
                    told = reason
                    await waiting(reason)
                    continue  # the queue may have moved meanwhile
                changed = asyncio.ensure_future(self._changed.wait())
                cancelled = asyncio.ensure_future(cancel.wait())
                try:
                    await asyncio.wait({changed, cancelled}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    changed.cancel()
                    cancelled.cancel()
            return False
        finally:
            self._waiting.remove(run_id)
            self._notify()

    def release(self) -> None:
        self.running -= 1
        self._notify()
