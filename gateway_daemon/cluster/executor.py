"""A runner's side of a run: accept or refuse it, execute it as a local run would, report as it goes.

The runner reads the service, its repository and secrets from the shared store
and executes with the same code as local runs (core.scheduler.perform).  It
never writes the run's record: the server that sent the run keeps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import Any, AsyncIterator

from ..core.errors import FailedPrecondition, GatewayError
from ..core.runs import CANCELLED, FAILED, INTERRUPTED, OutputLine, Run, check_run_id
from ..core.scheduler import _Active, perform
from ..core.services import SecretRef
from .registry import Announcer

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


class RunnerExecutor:
    def __init__(self, engine: Any, runner_id: str, capacity: int, announcer: Announcer | None = None):
        self.engine = engine
        self.runner_id = runner_id
        self.capacity = capacity
        self.announcer = announcer
        self.draining = False
        self.key_problem = ""  # its secrets key is not the cluster's (see keycheck)
        self._active: dict[str, _Active] = {}
        self._tasks: set[asyncio.Task] = set()

    @property
    def load(self) -> int:
        return len(self._active)

    def problem(self) -> str:
        """Why this runner would refuse every run, or ''."""
        if self.key_problem:
            return self.key_problem
        try:
            self.engine.secret_box.check()
        except FailedPrecondition as exc:
            return str(exc)
        return ""

    def _announce_load(self) -> None:
        if self.announcer is not None:
            self.announcer.update(load=self.load)

    async def execute(self, run_id: str, service: str, inputs: dict[str, Any], secrets: list[SecretRef],
                      timeout: int) -> AsyncIterator[ExecEvent]:
        """Events of one run: accepted first, final last.  Raises Busy or FailedPrecondition before accepting."""
        check_run_id(run_id)
        if self.draining:
            raise Busy(f"runner {self.runner_id} is stopping")
        if self.load >= self.capacity:
            raise Busy(f"runner {self.runner_id} is full ({self.load} of {self.capacity} runs)")
        if run_id in self._active:
            raise FailedPrecondition(f"runner {self.runner_id} is already executing run {run_id}")
        problem = self.problem()
        if problem:
            raise FailedPrecondition(f"runner {self.runner_id} refuses work: {problem}")
        active = _Active(Run(id=run_id, service=service), 0)
        self._active[run_id] = active
        self._announce_load()
        events: asyncio.Queue = asyncio.Queue()
        task = asyncio.get_running_loop().create_task(self._work(active, inputs, secrets, timeout, events))
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
            self._active.pop(run_id, None)
            self._announce_load()

    async def _work(self, active: _Active, inputs: dict[str, Any], secrets: list[SecretRef], timeout: int,
                    events: asyncio.Queue) -> None:
        final: dict[str, Any] = {}
        masker = None

        async def line(stream: str, text: str) -> None:
            events.put_nowait(ExecEvent("output", lines=(OutputLine(stream, masker(text) if masker else text),)))

        def progress(text: str) -> None:
            events.put_nowait(ExecEvent("progress", lines=(OutputLine("gateway", masker(text) if masker else text),)))

        scheduler = self.engine.scheduler
        try:
            job = await scheduler.prepare(active.run.service, inputs, secrets, timeout)
            masker = job.masker
            log.info("run %s: %s", active.run.id, job.service.name)
            final = await perform(active, job, scheduler.data_dir, scheduler.workspace, scheduler.venvs,
                                  scheduler.limits.kill_grace_period, line, progress)
        except GatewayError as exc:
            await line("gateway", str(exc))
            final = dict(status=FAILED, reason=str(exc))
        except asyncio.CancelledError:
            final = dict(status=INTERRUPTED, reason=f"runner {self.runner_id} stopped while the run was in flight")
            raise
        except Exception as exc:  # a bug must end the run, not leave it "running"
            log.exception("run %s", active.run.id)
            final = dict(status=FAILED, reason=f"internal error on runner {self.runner_id}: {type(exc).__name__}: {exc}")
        finally:
            if active.cancel_requested and final.get("status") == INTERRUPTED:
                final = dict(final, status=CANCELLED, reason="cancelled")
            events.put_nowait(ExecEvent("final", status=final.get("status", FAILED), reason=final.get("reason", ""),
                                        exit_code=final.get("exit_code"), commit=active.run.commit))

    def cancel(self, run_id: str) -> bool:
        active = self._active.get(run_id)
        if active is None:
            return False
        active.cancel_requested = True
        if active.process is not None:
            active.process.stop("cancel", self.engine.scheduler.limits.kill_grace_period)
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
        while self._active and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
