"""A run's output on its way to the store (core/outputs.py): whatever the sizes of the reads and lines, what is
stored is exactly the newest lines within the output limit, and every other line is counted as dropped.

The sink runs against the real in-memory store and a real ActiveRun; the expected tail is worked out line by
line, the slow way, beside it.
"""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from gateway_daemon.core.runs.outputs import LINE_OVERHEAD, OutputSink, output_prefix
from gateway_daemon.core.runs.records import Masker, Run
from gateway_daemon.core.runs.active import ActiveRun
from gateway_daemon.store.memory import MemoryStore


def expected_tail(lines: list[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
    """The newest lines whose costs add up to at most `limit` (the newest one always)."""
    kept, size = [], 0
    for line in reversed(lines):
        cost = len(line[1]) + LINE_OVERHEAD
        if kept and size + cost > limit:
            break
        kept.append(line)
        size += cost
    return kept[::-1]


async def stored_lines(store: MemoryStore, run_id: str) -> list[tuple[str, str]]:
    return [tuple(line) for entry in await store.list(output_prefix(run_id)) for line in json.loads(entry.value)]


@pytest.mark.parametrize("seed", range(12))
def test_the_store_keeps_exactly_the_newest_lines_within_the_limit(seed: int) -> None:
    rng = random.Random(seed)
    limit = rng.choice([4096, 20_000, 65_536])

    async def scenario() -> None:
        store = MemoryStore("/gateway/test/")
        run = Run(id=f"run-{seed}", service="s")
        active = ActiveRun(run, 0)
        sink = OutputSink(store, active, Masker([]), limit)
        sent: list[tuple[str, str]] = []
        for _ in range(rng.randint(1, 300)):
            stream = rng.choice(["stdout", "stdout", "stderr"])
            texts = [("x" * rng.choice([0, 1, 5, 40, 200, 3000]))[:rng.randint(0, 3000)] + str(len(sent) + i)
                     for i in range(rng.choice([1, 2, 10, 100, 700]))]
            sent += [(stream, text) for text in texts]
            await sink.lines(stream, texts)
            if rng.random() < 0.1:
                await sink.flush()
            if rng.random() < 0.05:
                await asyncio.sleep(0.3)  # the flush of a quiet moment, beside the lines
        assert await sink.finish()
        stored = await stored_lines(store, run.id)
        # Chunks go whole, so the store may keep up to a chunk less than the limit allows, never more, and
        # always the newest lines, in order, without a hole.
        tail = expected_tail(sent, limit)
        assert stored == sent[len(sent) - len(stored):]
        assert len(stored) <= len(tail) and stored[-1] == sent[-1]
        assert sum(len(t) + LINE_OVERHEAD for _, t in tail) - sum(len(t) + LINE_OVERHEAD for _, t in stored) \
            < sink.chunk + 3000 + LINE_OVERHEAD
        assert sum(len(t) + LINE_OVERHEAD for _, t in stored) == run.output_bytes
        assert run.output_lines == len(sent)
        assert run.output_dropped == len(sent) - len(stored)
        assert sum(cost for _, cost in sink.runs) == sink.buffered == 0 and not sink.buffer

    asyncio.run(scenario())
