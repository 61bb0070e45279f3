"""A runner's side of a run: accept or refuse the prepared job a server sends, execute it, report as it goes.

The server prepared the job (inputs checked, secrets opened) and keeps the
run's record; the runner executes the job as it is with its local executor
(injected: core.jobs.Executor) and prepares nothing again.  Output goes back
raw: the server masks it once, where it records it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import AsyncIterator

from ..core.errors import FailedPrecondition, GatewayError
from ..core.runs.jobs import Executor, Job, JobResult
from ..core.runs.records import CANCELLED, FAILED, INTERRUPTED, OutputLine, check_run_id
from ..core.resources.secrets import SecretBox
from .directory import Announcer

log = logging.getLogger("gateway.runner")
BATCH_LINES = 500


class Busy(Exception):
    """The runner takes no more work now (full, or stopping); nothing was started."""


@dataclasses.dataclass(frozen=True)
class ExecEvent:
    kind: str  # accepted, progress, output, final
    lines: tuple[OutputLine, ...] = ()
    status: str = ""
    reason: str = ""
    exit_code: int | None = None
    commit: str = ""
    state: str | None = dataclasses.field(default=None, repr=False)  # with final: an opentofu-plan run's state


class _QueuedEvents:
    """core.jobs.JobEvents into a queue of ExecEvents (the runner keeps no record and no queue of its own)."""

    def __init__(self, queue: asyncio.Queue):
        self.queue = queue
        self.commit = ""

    async def waiting(self, reason: str) -> None:
        pass

    async def started(self, runner: str = "") -> None:
        pass  # the server marks the run running when the runner accepts it

    def checked_out(self, commit: str) -> None:
        self.commit = commit

    async def output(self, stream: str, text: str) -> None:
        self.queue.put_nowait(ExecEvent("output", lines=(OutputLine(stream, text),)))

    async def output_lines(self, stream: str, texts: list[str]) -> None:
        self.queue.put_nowait(ExecEvent("output", lines=tuple(OutputLine(stream, text) for text in texts)))

    def progress(self, text: str) -> None:
        self.queue.put_nowait(ExecEvent("progress", lines=(OutputLine("gateway", text),)))


class Intake:
    def __init__(self, executor: Executor, secret_box: SecretBox, runner_id: str, capacity: int,
                 announcer: Announcer | None = None):
        self.executor = executor
        self.secret_box = secret_box
        self.runner_id = runner_id
        self.capacity = capacity
        self.announcer = announcer
        self.draining = False
        self.key_problem = ""  # its secrets key is not the cluster's (see keycheck)
        self._cancels: dict[str, asyncio.Event] = {}  # the runs in flight, by id
        self._tasks: set[asyncio.Task] = set()

    @property
    def load(self) -> int:
        return len(self._cancels)

    def problem(self) -> str:
        """Why this runner would refuse every run, or ''."""
        if self.key_problem:
            return self.key_problem
        try:
            self.secret_box.check()
        except FailedPrecondition as exc:
            return str(exc)
        return ""

    def _announce_load(self) -> None:
        if self.announcer is not None:
            self.announcer.update(load=self.load)

    async def execute(self, job: Job) -> AsyncIterator[ExecEvent]:
        """Events of one job: accepted first, final last.  Raises Busy or FailedPrecondition before accepting."""
        check_run_id(job.run_id)
        if self.draining:
            raise Busy(f"runner {self.runner_id} is stopping")
        if self.load >= self.capacity:
            raise Busy(f"runner {self.runner_id} is full ({self.load} of {self.capacity} runs)")
        if job.run_id in self._cancels:
            raise FailedPrecondition(f"runner {self.runner_id} is already executing run {job.run_id}")
        problem = self.problem()
        if problem:
            raise FailedPrecondition(f"runner {self.runner_id} refuses work: {problem}")
        cancel = self._cancels[job.run_id] = asyncio.Event()
        self._announce_load()
        events: asyncio.Queue = asyncio.Queue()
        task = asyncio.get_running_loop().create_task(self._work(job, cancel, events))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            yield ExecEvent("accepted")
            held: ExecEvent | None = None
            while True:
                event, held = held or await events.get(), None
                if event.kind == "output":  # the lines already waiting go in the same message
                    lines = list(event.lines)
                    while len(lines) < BATCH_LINES and not events.empty():
                        following = events.get_nowait()
                        if following.kind != "output":
                            held = following
                            break
                        lines.extend(following.lines)
                    event = ExecEvent("output", lines=tuple(lines))
                yield event
                if event.kind == "final":
                    return
        finally:
            if not task.done():  # the server went away (or this runner stops): the process goes
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._cancels.pop(job.run_id, None)
            self._announce_load()

    async def _work(self, job: Job, cancel: asyncio.Event, queue: asyncio.Queue) -> None:
        events = _QueuedEvents(queue)
        result = JobResult(FAILED)
        try:
            log.info("run %s: %s", job.run_id, job.service.name)
            result = await self.executor.execute(job, events, cancel)
        except GatewayError as exc:
            await events.output("gateway", str(exc))
            result = JobResult(FAILED, str(exc))
        except asyncio.CancelledError:
            result = JobResult(INTERRUPTED, f"runner {self.runner_id} stopped while the run was in flight")
            raise
        except Exception as exc:  # a bug must end the run, not leave it "running"
            log.exception("run %s", job.run_id)
            result = JobResult(FAILED, f"internal error on runner {self.runner_id}: {type(exc).__name__}: {exc}")
        finally:
            if cancel.is_set() and result.status == INTERRUPTED:
                result = JobResult(CANCELLED, "cancelled", result.exit_code)
            queue.put_nowait(ExecEvent("final", status=result.status, reason=result.reason,
                                       exit_code=result.exit_code, commit=events.commit, state=result.state))

    def cancel(self, run_id: str) -> bool:
        cancel = self._cancels.get(run_id)
        if cancel is None:
            return False
        cancel.set()
        return True

    async def drain(self, grace: float) -> None:
        """Take nothing new; let what runs finish for `grace` seconds, then stop it (interrupted)."""
        self.draining = True
        if self.announcer is not None:
            self.announcer.update(draining=True)
        tasks = list(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)
        # let the servicers send the final events they now hold
        deadline = asyncio.get_running_loop().time() + 5
        while self._cancels and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
