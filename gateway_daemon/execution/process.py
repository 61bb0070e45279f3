"""One child process: started in its own process group, read line by line, stopped for sure.

Output arrives as (stream, [text, ...]) batches of lines in bounded memory: a line longer than
MAX_LINE is cut and marked, bytes that are not UTF-8 are replaced, control
characters (terminal escapes included) are removed.  Stopping sends TERM to
the whole group, then KILL after the grace period, so a script's children go
too.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from dataclasses import dataclass
from typing import Awaitable, Callable

MAX_LINE = 16 * 1024
READ_SIZE = 64 * 1024
_ANSI_RE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b\n]*(\x07|\x1b\\)|[@-Z\\-_])")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_CUT = f" [line cut at {MAX_LINE // 1024} KiB]"

# Called with the lines of one read at a time (a list of texts, in order), so the cost per line stays small.
LineSink = Callable[[str, list[str]], Awaitable[None] | None]


def clean(raw: bytes) -> str:
    """Text of a block of whole lines (newlines kept): UTF-8 with replacements, escapes and control
    characters removed (the carriage return too)."""
    text = raw.decode("utf-8", errors="replace")
    if "\x1b" in text:
        text = _ANSI_RE.sub("", text)
    return _CONTROL_RE.sub("", text)


def _cut(line: str) -> str:
    return line[:MAX_LINE] + _CUT if len(line) > MAX_LINE else line


@dataclass
class Outcome:
    exit_code: int | None
    stopped: str = ""  # "", "timeout" or "cancel": why the gateway stopped it


class Process:
    def __init__(self, argv: list[str], cwd: str, env: dict[str, str]):
        self.argv = argv
        self.cwd = cwd
        self.env = env
        self._proc: asyncio.subprocess.Process | None = None
        self._stop_reason = ""
        self._stopping: asyncio.Task | None = None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv, cwd=self.cwd, env=self.env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: stop() reaches its children too
        )

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    async def _pump(self, reader: asyncio.StreamReader, stream: str, sink: LineSink) -> None:
        pending = b""
        cut = False  # the start of the pending line went out already, cut
        while True:
            chunk = await reader.read(READ_SIZE)
            if not chunk:
                break
            end = chunk.rfind(b"\n")
            if end < 0:
                pending += chunk
            else:
                block, pending = pending + chunk[:end], chunk[end + 1:]
                lines = clean(block).split("\n")
                if cut:  # the rest of a line already cut
                    del lines[0]
                    cut = False
                if lines:
                    if len(block) > MAX_LINE and max(map(len, lines)) > MAX_LINE:
                        lines = [_cut(line) for line in lines]
                    await _emit(sink, stream, lines)
            if len(pending) > MAX_LINE:
                await _emit(sink, stream, [clean(pending[:MAX_LINE]) + _CUT])
                pending = b""
                cut = True
        if pending and not cut:
            await _emit(sink, stream, [clean(pending)])

    async def run(self, sink: LineSink, timeout: float | None, grace: float) -> Outcome:
        """Read every line into `sink` until the process ends, or stop it at `timeout`."""
        assert self._proc is not None and self._proc.stdout and self._proc.stderr
        pumps = asyncio.gather(
            self._pump(self._proc.stdout, "stdout", sink), self._pump(self._proc.stderr, "stderr", sink)
        )
        try:
            await asyncio.wait_for(asyncio.shield(pumps), timeout)
        except asyncio.TimeoutError:
            self.stop("timeout", grace)
        except asyncio.CancelledError:
            self.stop("cancel", grace)
            await asyncio.shield(self._finish(pumps))
            raise
        return await self._finish(pumps)

    async def _finish(self, pumps: Awaitable[object]) -> Outcome:
        assert self._proc is not None
        # The pipes close when the process (and every child holding them) is gone.
        await pumps
        exit_code = await self._proc.wait()
        if self._stopping is not None:
            await self._stopping
        return Outcome(exit_code, self._stop_reason)

    def stop(self, reason: str, grace: float) -> None:
        """TERM the process group now, KILL it after `grace` seconds if anything is left."""
        if self._proc is None or self._stopping is not None:
            return
        self._stop_reason = reason
        self._stopping = asyncio.get_running_loop().create_task(self._terminate(grace))

    async def _terminate(self, grace: float) -> None:
        assert self._proc is not None
        pgid = self._proc.pid
        _signal_group(pgid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self._proc.wait()), grace)
        except asyncio.TimeoutError:
            pass
        # Children may outlive the leader and keep the pipes open: the group goes in any case.
        _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def _emit(sink: LineSink, stream: str, texts: list[str]) -> None:
    result = sink(stream, texts)
    if result is not None:
        await result
