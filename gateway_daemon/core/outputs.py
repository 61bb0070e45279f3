"""A run's output on its way to the store: buffered, written in chunks, capped at the output limit.

Chunks go to ``run-output/<id>/<seq>`` a few times a second, so a follower in
another process sees the output live; past ``output_limit`` bytes the oldest
chunks go and the record counts the dropped lines.  While the store cannot be
reached the lines wait in memory (the newest within the limit) and are written
once it answers again.  Every line is masked here, once, before anyone sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING

from ..store import Store, StoreError
from .runs import Masker, OutputLine, RunEvent

if TYPE_CHECKING:
    from .scheduler import ActiveRun

log = logging.getLogger("gateway.runs")
FLUSH_SECONDS = 0.25
STORE_RETRY_SECONDS = 1.0  # output the store could not take is written again this often
FLUSH_LINES = 500


def output_prefix(run_id: str) -> str:
    return f"run-output/{run_id}/"


class OutputSink:
    """Buffers lines, writes chunks to the store, keeps only the tail within the limit."""

    def __init__(self, store: Store, active: "ActiveRun", masker: Masker, limit: int):
        self.store = store
        self.active = active
        self.masker = masker
        self.limit = limit
        self.buffer: list[OutputLine] = []
        self.seq = 0
        self.chunks: list[tuple[int, int, int]] = []  # (seq, bytes, lines) stored, oldest first
        self.stored_bytes = 0
        self.last_flush = time.monotonic()
        self._lock = asyncio.Lock()
        self._later: asyncio.Task | None = None
        self.failing = False  # the store did not take the last chunk: the lines wait in the buffer

    async def line(self, stream: str, text: str) -> None:
        line = OutputLine(stream, self.masker(text))
        self.buffer.append(line)
        self.active.run.output_lines += 1
        self.active.publish(RunEvent("output", lines=(line,)))
        if not self.failing and (len(self.buffer) >= FLUSH_LINES or
                                 time.monotonic() - self.last_flush >= FLUSH_SECONDS):
            await self.flush()
        elif self._later is None:  # a quiet process (or a store away): stored soon all the same
            self._later = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(STORE_RETRY_SECONDS if self.failing else FLUSH_SECONDS)
        self._later = None
        with contextlib.suppress(Exception):
            await self.flush()

    async def finish(self) -> bool:
        """The last flush; True when everything is stored."""
        if self._later is not None:
            self._later.cancel()
            self._later = None
        return await self.flush()

    async def flush(self) -> bool:
        """Store the buffered lines; False (the lines kept for the next try) when the store cannot."""
        async with self._lock:
            return await self._flush()

    async def _flush(self) -> bool:
        self.last_flush = time.monotonic()
        if not self.buffer:
            return True
        lines, self.buffer = self.buffer, []
        data = json.dumps([[l.stream, l.text] for l in lines], separators=(",", ":")).encode()
        try:
            await self.store.put(f"{output_prefix(self.active.run.id)}{self.seq:08d}", data)
        except StoreError as exc:
            self.buffer = lines + self.buffer
            self._keep_tail()
            if not self.failing:
                log.warning("run %s: cannot store its output now (will keep trying): %s", self.active.run.id, exc)
                self.failing = True
            return False
        self.failing = False
        self.chunks.append((self.seq, len(data), len(lines)))
        self.seq += 1
        self.stored_bytes += len(data)
        while self.stored_bytes > self.limit and len(self.chunks) > 1:
            old_seq, size, count = self.chunks[0]
            try:
                await self.store.delete(f"{output_prefix(self.active.run.id)}{old_seq:08d}")
            except StoreError:
                break  # trimmed at the next flush
            self.chunks.pop(0)
            self.stored_bytes -= size
            self.active.run.output_dropped += count
        return True

    def _keep_tail(self) -> None:
        """While the store is away the buffer keeps the newest lines within the output limit."""
        size, start = 0, len(self.buffer)
        while start > 0:
            cost = len(self.buffer[start - 1].text) + 16
            if size + cost > self.limit and start < len(self.buffer):  # the newest line is always kept
                break
            size += cost
            start -= 1
        if start:
            self.active.run.output_dropped += start
            del self.buffer[:start]
