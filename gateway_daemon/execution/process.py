"""One command of a run: started under its supervisor, read line by line, stopped for sure, with every child.

The command runs under supervisor.py (in the sandbox, when there is one), in a
process group of its own.  The supervisor ends every descendant of the command
when the command exits, and everything when the gateway asks it to stop (a byte
on its control pipe) or dies (the pipe closes): TERM, then KILL after the grace
period.  Should the supervisor itself not be done a few seconds after that, the
gateway KILLs the group (and, in the sandbox, bwrap with it: the whole pid
namespace goes).

Output arrives as (stream, [text, ...]) batches of lines in bounded memory: a line longer than
MAX_LINE is cut and marked, bytes that are not UTF-8 are replaced, control
characters (terminal escapes included) are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

MAX_LINE = 16 * 1024
READ_SIZE = 64 * 1024
SUPERVISOR = str(Path(__file__).with_name("supervisor.py"))
SUPERVISOR_SLACK = 5.0  # beyond the grace period, before the gateway KILLs a supervisor that is not done
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
    """`argv` run by `python` under the supervisor, itself run by `sandbox` (the bwrap command line that ends
    with "--"; empty: no sandbox).  `grace`: between TERM and KILL for what the command leaves or is stopped."""

    def __init__(self, argv: list[str], cwd: str, env: dict[str, str], python: str, grace: float,
                 sandbox: list[str] | None = None):
        self.argv = argv
        self.cwd = cwd
        self.env = env
        self.python = python
        self.grace = grace
        self.sandbox = sandbox or []
        self._proc: asyncio.subprocess.Process | None = None
        self._control: int | None = None  # the gateway's end of the supervisor's control pipe
        self._stop_reason = ""
        self._stopping: asyncio.Task | None = None

    async def start(self) -> None:
        control, self._control = os.pipe()  # both ends close-on-exec; the supervisor gets its own end only
        supervised = [self.python, "-I", "-S", "-B", SUPERVISOR, str(control), f"{self.grace:g}", "--", *self.argv]
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self.sandbox, *supervised, cwd=self.cwd, env=self.env, pass_fds=(control,),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own process group: the last resort reaches it whole
            )
        except BaseException:
            self._close_control()
            raise
        finally:
            os.close(control)

    def _close_control(self) -> None:
        if self._control is not None:
            with contextlib.suppress(OSError):
                os.close(self._control)
            self._control = None

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
        # The pipes close when the supervisor is done: the command and every descendant are gone by then.
        try:
            await pumps
            exit_code = await self._proc.wait()
        finally:
            self._close_control()
        if self._stopping is not None:
            await self._stopping
        return Outcome(exit_code, self._stop_reason)

    def stop(self, reason: str, grace: float) -> None:
        """Ask the supervisor to end everything (TERM, KILL after its grace period); KILL the group after
        `grace` and a few seconds more if it is not done by then."""
        if self._proc is None or self._stopping is not None:
            return
        self._stop_reason = reason
        if self._control is not None:
            with contextlib.suppress(OSError):
                os.write(self._control, b"stop")
        self._close_control()
        self._stopping = asyncio.get_running_loop().create_task(self._terminate(grace))

    async def _terminate(self, grace: float) -> None:
        assert self._proc is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._proc.wait()), max(grace, self.grace) + SUPERVISOR_SLACK)
            return
        except asyncio.TimeoutError:
            pass
        # The supervisor is not done (killed by the script, or stuck): the group goes, and in the sandbox bwrap
        # with it, which takes the whole pid namespace.  What still holds the pipes then is cut off.
        _signal_group(self._proc.pid, signal.SIGKILL)
        try:
            await asyncio.wait_for(asyncio.shield(self._proc.wait()), SUPERVISOR_SLACK)
        except asyncio.TimeoutError:
            transport = getattr(self._proc, "_transport", None)
            if transport is not None:
                transport.close()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def _emit(sink: LineSink, stream: str, texts: list[str]) -> None:
    result = sink(stream, texts)
    if result is not None:
        await result
