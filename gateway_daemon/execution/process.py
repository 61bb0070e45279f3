"""One command of a run: started under its supervisor, read line by line, stopped for sure, with every child.

The command runs under supervisor.py (in the sandbox, when there is one), in a
process group of its own.  The supervisor ends every descendant of the command
when the command exits, and everything when the gateway asks it to stop (a byte
on its control pipe) or dies (the pipe closes): TERM, then KILL after the grace
period.  Should the supervisor itself not be done a few seconds after that, the
gateway KILLs the group (and, in the sandbox, bwrap with it: the whole pid
namespace goes).

The command's stdout and stderr come from the supervisor as frames on one pipe,
in the order the supervisor read them (see supervisor.py): the order the command
wrote them in, however late the gateway reads.  What the supervisor, bwrap or the
interpreter say themselves comes on the supervisor's stderr, shown as stderr.

Output arrives as (stream, [text, ...]) batches of lines in bounded memory, in that order: a line
longer than MAX_LINE is cut and marked, bytes that are not UTF-8 are replaced, control
characters (terminal escapes and C1 controls included) are removed.  A line is masked before it is
cut (the core masks every line later, but a secret cut in two would no longer match): the start of
a long line is held until it holds the longest secret beyond the cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

from ..core.runs.records import Masker
from .launch import Launch

MAX_LINE = 16 * 1024
READ_SIZE = 64 * 1024
FRAMES_READ_SIZE = 256 * 1024  # a read of the frames pipe: several frames at once when the gateway was busy
FRAME = struct.Struct(">BI")  # supervisor.py's: stream byte, data length
STREAMS = {1: "stdout", 2: "stderr"}
NOTICE = 3  # a frame of the supervisor's own: b"memory" when it ended the run at its memory bound
MAX_FRAME = 1024 * 1024  # the supervisor's are at most 64 KiB: a bigger length is not a frame
SUPERVISOR = str(Path(__file__).with_name("supervisor.py"))
MEMORY_EXCEEDED = b"memory"  # supervisor.py's notice
SUPERVISOR_SLACK = 5.0  # beyond the grace period, before the gateway KILLs a supervisor that is not done
_ANSI_RE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b\n]*(\x07|\x1b\\)|[@-Z\\-_])")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_ASCII_CONTROLS = bytes([*range(0x00, 0x09), *range(0x0b, 0x20), 0x7f])  # _CONTROL_RE's, in ASCII
_CUT = f" [line cut at {MAX_LINE // 1024} KiB]"

# Called with the lines of one read at a time (a list of texts, in order), so the cost per line stays small.
LineSink = Callable[[str, list[str]], Awaitable[None] | None]


def clean(raw: bytes) -> str:
    """Text of a block of whole lines (newlines kept): UTF-8 with replacements, escapes and control
    characters removed (the carriage return too)."""
    if raw.isascii() and 27 not in raw:  # the usual block: the controls go in one pass over the bytes
        return raw.translate(None, _ASCII_CONTROLS).decode("ascii")
    text = raw.decode("utf-8", errors="replace")
    if "\x1b" in text:
        text = _ANSI_RE.sub("", text)
    return _CONTROL_RE.sub("", text)


def _cut(line: str) -> str:
    return line[:MAX_LINE] + _CUT if len(line) > MAX_LINE else line


class Lines:
    """One stream's bytes to its lines: whole lines out as they complete, a line longer than MAX_LINE cut
    (masked with `mask` first, when it has something to mask)."""

    def __init__(self, mask: Masker | None = None) -> None:
        self.pending = b""
        self.cut = False  # the start of the pending line went out already, cut
        self.mask = mask if mask is not None and mask.active else None
        # A line without its end yet is cut once it holds this much: the longest secret fits beyond the cut.
        self.hold = MAX_LINE + (self.mask.longest if self.mask else 0)

    def _cut(self, text: str) -> str:
        if len(text) <= MAX_LINE:
            return text
        return _cut(self.mask(text) if self.mask else text)

    def feed(self, chunk: bytes) -> list[str]:
        """The lines `chunk` completes (or cuts), in order."""
        texts: list[str] = []
        end = chunk.rfind(b"\n")
        if end < 0:
            self.pending += chunk
        else:
            block, self.pending = self.pending + chunk[:end], chunk[end + 1:]
            texts = clean(block).split("\n")
            if self.cut:  # the rest of a line already cut
                del texts[0]
                self.cut = False
            if texts and len(block) > MAX_LINE and max(map(len, texts)) > MAX_LINE:
                texts = [self._cut(text) for text in texts]
        if len(self.pending) > self.hold:
            text = clean(self.pending)
            texts.append((self.mask(text) if self.mask else text)[:MAX_LINE] + _CUT)
            self.pending = b""
            self.cut = True
        return texts

    def end(self) -> list[str]:
        """The last line, when it had no newline."""
        texts = [self._cut(clean(self.pending))] if self.pending and not self.cut else []
        self.pending = b""
        return texts


class Frames:
    """The supervisor's frames to (stream, texts) batches in frame order; consecutive frames of one stream
    make one batch.  Bytes that do not parse as frames (nothing the supervisor writes) count as stderr."""

    def __init__(self, mask: Masker | None = None) -> None:
        self.buffer = b""
        self.lines = {stream: Lines(mask) for stream in STREAMS}
        self.broken = False
        self.notices: list[bytes] = []

    def feed(self, chunk: bytes) -> list[tuple[str, list[str]]]:
        if self.broken:
            return self._batches([(2, chunk)])
        buffer = self.buffer + chunk if self.buffer else chunk
        pieces: list[tuple[int, list]] = []  # consecutive frames of one stream: their data, joined once
        at, size = 0, len(buffer)
        view = memoryview(buffer)
        while size - at >= FRAME.size:
            stream, length = FRAME.unpack_from(buffer, at)
            if stream == NOTICE and length <= 64:
                if size - at - FRAME.size < length:
                    break
                self.notices.append(bytes(buffer[at + FRAME.size:at + FRAME.size + length]))
                at += FRAME.size + length
                continue
            if stream not in STREAMS or length > MAX_FRAME:
                self.broken = True
                pieces.append((2, [buffer[at:]]))
                at = size
                break
            if size - at - FRAME.size < length:
                break
            data = view[at + FRAME.size:at + FRAME.size + length]  # copied once, when the stream's frames join
            at += FRAME.size + length
            if pieces and pieces[-1][0] == stream:
                pieces[-1][1].append(data)
            else:
                pieces.append((stream, [data]))
        self.buffer = buffer[at:]
        return self._batches([(stream, b"".join(parts)) for stream, parts in pieces])

    def _batches(self, pieces: list[tuple[int, bytes]]) -> list[tuple[str, list[str]]]:
        batches: list[tuple[str, list[str]]] = []
        for stream, data in pieces:
            texts = self.lines[stream].feed(data)
            if not texts:
                continue
            if batches and batches[-1][0] == STREAMS[stream]:
                batches[-1][1].extend(texts)
            else:
                batches.append((STREAMS[stream], texts))
        return batches

    def end(self) -> list[tuple[str, list[str]]]:
        """What is left: each stream's last line without a newline (a frame cut short is dropped)."""
        self.buffer = b""
        return [(STREAMS[stream], texts) for stream, lines in self.lines.items() if (texts := lines.end())]


@dataclass
class Outcome:
    exit_code: int | None
    stopped: str = ""  # "", "timeout", "cancel" or "memory": why it was stopped


class Process:
    """`argv` run by `python` under the supervisor, itself run by `sandbox` (the bwrap command line that ends
    with "--"; empty: no sandbox).  `grace`: between TERM and KILL for what the command leaves or is stopped.
    `user`: (uid, gid) the supervisor becomes in the sandbox; `launch`: what joins the sandbox before the command
    starts (its network, its memory cgroup); `memory`: the bound the supervisor keeps itself (bytes; 0: none, or
    a cgroup keeps it); `mask`: the run's secrets, masked in a line before it is cut."""

    def __init__(self, argv: list[str], cwd: str, env: dict[str, str], python: str, grace: float,
                 sandbox: list[str] | None = None, user: tuple[int, int] | None = None,
                 launch: Launch | None = None, memory: int = 0, mask: Masker | None = None):
        self.argv = argv
        self.user = user
        self.launch = launch
        self.memory = memory
        self._frames = Frames(mask)
        self.cwd = cwd
        self.env = env
        self.python = python
        self.grace = grace
        self.sandbox = sandbox or []
        self.mask = mask
        self._proc: asyncio.subprocess.Process | None = None
        self._control: int | None = None  # the gateway's end of the supervisor's control pipe
        self._stop_reason = ""
        self._stopping: asyncio.Task | None = None

    async def start(self) -> None:
        control, self._control = os.pipe()  # both ends close-on-exec; the supervisor gets its own end only
        options = [*(["--user", f"{self.user[0]}:{self.user[1]}"] if self.user else []),
                   *(["--memory", str(self.memory)] if self.memory else []),
                   *(["--network"] if self.launch is not None and self.launch.slirp and self.sandbox else [])]
        supervised = [self.python, "-I", "-S", "-B", SUPERVISOR, *options, str(control), f"{self.grace:g}", "--",
                      *self.argv]
        sandbox, fds = self.sandbox, (control,)
        if self.launch is not None and sandbox:
            sandbox, fds = [sandbox[0], *self.launch.bwrap_args(), *sandbox[1:]], (control, *self.launch.pass_fds)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *sandbox, *supervised, cwd=self.cwd, env=self.env, pass_fds=fds,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own process group: the last resort reaches it whole
            )
        except BaseException:
            self._close_control()
            if self.launch is not None:
                await self.launch.close()
            raise
        finally:
            os.close(control)
        if self.launch is not None and sandbox:
            try:
                await self.launch.attach()
            except BaseException:
                _signal_group(self._proc.pid, signal.SIGKILL)
                await self._proc.wait()
                self._close_control()
                await self.launch.close()
                raise

    def _close_control(self) -> None:
        if self._control is not None:
            with contextlib.suppress(OSError):
                os.close(self._control)
            self._control = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    async def _pump(self, reader: asyncio.StreamReader, stream: str, sink: LineSink) -> None:
        """The supervisor's own stderr (its messages, bwrap's, the interpreter's): stderr lines."""
        lines = Lines(self.mask)
        while chunk := await reader.read(READ_SIZE):
            if texts := lines.feed(chunk):
                await _emit(sink, stream, texts)
        if texts := lines.end():
            await _emit(sink, stream, texts)

    async def _relay(self, reader: asyncio.StreamReader, sink: LineSink) -> None:
        """The command's output, framed by the supervisor: stdout and stderr lines in the order written."""
        frames = self._frames
        while chunk := await reader.read(FRAMES_READ_SIZE):
            for stream, texts in frames.feed(chunk):
                await _emit(sink, stream, texts)
        for stream, texts in frames.end():
            await _emit(sink, stream, texts)

    async def run(self, sink: LineSink, timeout: float | None, grace: float) -> Outcome:
        """Read every line into `sink` until the process ends, or stop it at `timeout`."""
        assert self._proc is not None and self._proc.stdout and self._proc.stderr
        pumps = asyncio.gather(self._relay(self._proc.stdout, sink), self._pump(self._proc.stderr, "stderr", sink))
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
            if self.launch is not None:
                await self.launch.close()
        if self._stopping is not None:
            await self._stopping
        if not self._stop_reason and (MEMORY_EXCEEDED in self._frames.notices
                                      or (self.launch is not None and self.launch.exceeded)):
            self._stop_reason = "memory"
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
