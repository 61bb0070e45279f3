"""A run's output on its way to the store: buffered, written in chunks, capped at the output limit.

Chunks go to ``run-output/<id>/<seq>`` a few times a second, so a follower in
another process sees the output live; past ``output_limit`` bytes the oldest
lines go (before they are stored, when the run prints faster than that) and the
record counts the dropped lines.  While the store cannot be
reached the lines wait in memory (the newest within the limit) and are written
once it answers again.  Every line is masked here, once, before anyone sees it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from bisect import bisect_left
from itertools import accumulate
from operator import itemgetter
from typing import TYPE_CHECKING

from ...store import Store, StoreError
from .records import Masker, OutputLine, output_lines

if TYPE_CHECKING:
    from .active import ActiveRun

log = logging.getLogger("gateway.runs")
FLUSH_SECONDS = 0.25
STORE_RETRY_SECONDS = 1.0  # output the store could not take is written again this often
CHUNK_CHARS = 256 * 1024  # one stored chunk at most (etcd takes requests up to 1.5 MiB)
LINE_OVERHEAD = 16  # what a line costs in a chunk beyond its text (JSON, the stream's name)


def output_prefix(run_id: str) -> str:
    return f"run-output/{run_id}/"


_TEXT = itemgetter(1)  # an OutputLine's text


def _cost(line: OutputLine) -> int:
    return len(line.text) + LINE_OVERHEAD


class OutputSink:
    """Buffers lines, writes chunks to the store, keeps only the tail within the limit.

    Lines past the limit are dropped here, before they reach the store: a run that prints faster than
    the limit per flush costs the store one limit's worth a flush, whatever it prints in all.
    """

    def __init__(self, store: Store, active: "ActiveRun", masker: Masker, limit: int):
        self.store = store
        self.active = active
        self.masker = masker
        self.limit = limit
        # Chunks are small beside the limit, so deleting the oldest one leaves most of the limit stored.
        self.chunk = max(4096, min(CHUNK_CHARS, limit // 8))
        self.buffer: list[OutputLine] = []
        self.buffered = 0  # what the buffer costs (_cost)
        # The buffer's lines as they came, in runs: [lines, cost] each, oldest first (the lines of one read, less
        # what went).  Dropping the oldest lines goes a run at a time, and looks at single lines in one run only.
        self.runs: collections.deque[list[int]] = collections.deque()
        self.seq = 0
        self.chunks: list[tuple[int, int, int]] = []  # (seq, cost, lines) stored, oldest first
        self.stored_bytes = 0
        self.last_flush = time.monotonic()
        self._lock = asyncio.Lock()
        self._later: asyncio.Task | None = None
        self._flushing: asyncio.Task | None = None  # a flush on its way while lines go on arriving
        # Chunks before this seq hold lines older than some line dropped from the buffer: they go too, so that
        # what is stored is always the newest lines, without a hole (the chunk on its way counts).
        self.stale_before = 0
        self._writing = False  # a chunk is on its way to the store
        self.failing = False  # the store did not take the last chunk: the lines wait in the buffer
        self.error = ""  # why, when failing

    async def lines(self, stream: str, texts: list[str]) -> None:
        """Lines of one stream, in order: masked, told to the followers, buffered for the store."""
        mask = self.masker
        if mask.active:
            texts = list(map(mask, texts))
        lines = output_lines(stream, texts)
        if not lines:
            return
        cost = sum(map(len, texts)) + LINE_OVERHEAD * len(lines)
        self.buffer.extend(lines)
        self.runs.append([len(lines), cost])
        self.buffered += cost
        self.active.run.output_lines += len(lines)
        self.active.publish_lines_of(lines)
        if self.buffered > self.limit + self.limit // 4:  # trimmed in steps, not at every line
            self._keep_tail()
        if not self.failing and time.monotonic() - self.last_flush >= FLUSH_SECONDS:
            # Stored beside the reading, not in its way: the process's output is read on while the store writes
            # (the buffer keeps within the limit meanwhile).
            if self._flushing is None or self._flushing.done():
                self.last_flush = time.monotonic()
                self._flushing = asyncio.get_running_loop().create_task(self._flush_aside())
                return
        if self._later is None:  # a quiet process (or a store away): stored soon all the same
            self._later = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_aside(self) -> None:
        try:
            await self.flush()
        except Exception:  # noqa: BLE001 - a store error is kept in .failing/.error; anything else is logged
            log.exception("run %s: storing its output", self.active.run.id)

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
        if self._flushing is not None:
            await asyncio.shield(self._flushing)  # in order: its lines go before the last ones
            self._flushing = None
        return await self.flush()

    async def flush(self) -> bool:
        """Store the buffered lines; False (the lines kept for the next try) when the store cannot."""
        async with self._lock:
            return await self._flush()

    async def _flush(self) -> bool:
        self.last_flush = time.monotonic()
        self._keep_tail()
        left = len(self.buffer)  # at most the lines there now: lines that go on arriving wait for the next flush
        while self.buffer and left > 0:
            count, size = 0, 0
            for line in self.buffer:  # one chunk: a small part of the limit, at least one line
                if count and size + _cost(line) > self.chunk:
                    break
                size += _cost(line)
                count += 1
            # Out of the buffer while the store writes them: lines go on arriving (and the oldest going).
            lines = self.buffer[:count]
            del self.buffer[:count]
            self._taken(count, size)
            self.buffered -= size
            left -= count
            data = json.dumps(lines, separators=(",", ":"), ensure_ascii=False).encode()  # [[stream, text], ...]
            self._writing = True
            try:
                await self.store.put(f"{output_prefix(self.active.run.id)}{self.seq:08d}", data)
            except StoreError as exc:
                self._writing = False
                self.buffer[:0] = lines
                self.runs.appendleft([count, size])
                self.buffered += size
                self._keep_tail()
                self.error = str(exc)
                if not self.failing:
                    log.warning("run %s: cannot store its output now (will keep trying): %s", self.active.run.id, exc)
                    self.failing = True
                return False
            self._writing = False
            self.failing = False
            self.error = ""
            self.chunks.append((self.seq, size, count))
            self.seq += 1
            self.stored_bytes += size
            await self._trim()
            self.active.run.output_bytes = self.stored_bytes
        return True

    async def _trim(self) -> None:
        """Delete the oldest stored chunks while the stored output is over the limit (the newest stays), and
        those older than a line dropped from the buffer."""
        while self.chunks and (self.chunks[0][0] < self.stale_before
                               or (self.stored_bytes > self.limit and len(self.chunks) > 1)):
            old_seq, size, count = self.chunks[0]
            try:
                await self.store.delete(f"{output_prefix(self.active.run.id)}{old_seq:08d}")
            except StoreError:
                break  # trimmed at the next flush
            self.chunks.pop(0)
            self.stored_bytes -= size
            self.active.run.output_dropped += count

    def _taken(self, count: int, cost: int) -> None:
        """The oldest `count` lines, costing `cost`, left the buffer: the runs say so."""
        runs = self.runs
        while count and runs and runs[0][0] <= count:
            lines, run_cost = runs.popleft()
            count -= lines
            cost -= run_cost
        if count:
            runs[0][0] -= count
            runs[0][1] -= cost

    def _keep_tail(self) -> None:
        """The buffer keeps the newest lines within the output limit (the newest line always): the fewest oldest
        lines whose cost covers the excess go.  Whole runs first, then lines of one run, found in C: a run that
        prints 100 MB drops a million lines here."""
        if self.buffered <= self.limit:
            return
        excess, last = self.buffered - self.limit, len(self.buffer) - 1
        drop = dropped = 0
        runs = self.runs
        while runs and runs[0][1] <= excess and drop + runs[0][0] <= last:
            lines, cost = runs.popleft()
            drop += lines
            dropped += cost
            excess -= cost
        if excess > 0 and drop < last:  # some lines of the next run
            lines, cost = runs[0]  # about as many of its lines as the excess takes, all of them if too few
            guess = min(lines, int(excess * lines / max(cost, 1) * 1.25) + 64)
            costs = list(accumulate(map(LINE_OVERHEAD.__add__, map(len, map(_TEXT, self.buffer[drop:drop + guess])))))
            if costs[-1] < excess and guess < lines:
                costs = list(accumulate(map(LINE_OVERHEAD.__add__, map(len, map(_TEXT, self.buffer[drop:drop + lines])))))
            some = min(bisect_left(costs, excess) + 1, last - drop, len(costs))
            drop += some
            dropped += costs[some - 1]
            runs[0][0] -= some
            runs[0][1] -= costs[some - 1]
            if not runs[0][0]:
                runs.popleft()
        if drop:
            del self.buffer[:drop]
            self.buffered -= dropped
            self.active.run.output_dropped += drop
            self.stale_before = self.seq + (1 if self._writing else 0)
