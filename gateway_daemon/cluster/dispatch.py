"""A server's side of distributed execution: choose a runner, hand it the run, follow it into the record.

The server keeps the run's record; the runner executes.  A run waits (its
``reason`` says why: queue position, no live runner with the tags, all busy)
until a live runner with all of the service's runner tags has room, least
loaded first, and fails when its time limit passes first.  Once a runner has
the request, the run is never sent anywhere else: if that runner goes away
(its connection breaks, or its registry entry stays gone for a lease TTL) the
run ends failed with the reason "runner lost".

Only runners whose registry entry carries a valid MAC are chosen (see
registry.py); a run is never sent to a runner the link refuses to reach
safely (in clear, see rpc/runner_client.py): it fails saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from itertools import groupby
from operator import itemgetter
from typing import AsyncIterator, Protocol

from ..core.errors import GatewayError
from ..core.runs.jobs import Job, JobEvents, JobResult
from ..core.resources.runners import RunnerInfo
from ..core.runs.records import CANCELLED, FAILED
from .intake import ExecEvent
from .directory import RunnerDirectory

log = logging.getLogger("gateway.dispatch")
UNREACHABLE_SECONDS = 5.0  # a runner that could not be reached is passed over for this long
BUSY_SECONDS = 1.0  # a runner that said it is full is passed over until its entry changes, or this long
WAIT_STEP = 0.5
_STREAM, _TEXT = itemgetter(0), itemgetter(1)  # an OutputLine's stream and text


class RunnerRefused(Exception):
    """The runner did not take the job (full, or stopping): nothing was started there."""


class RunnerGone(Exception):
    """The connection to the runner broke mid-run."""


class RunnerLink(Protocol):
    """How a server talks to runners (rpc.runner_client.RunnerClient over gRPC)."""

    def refusal(self, runner: RunnerInfo) -> str:
        """Why nothing may be sent to this runner (it would go in clear), or ""."""
        ...

    async def reachable(self, runner: RunnerInfo) -> bool:
        """True when a connection to the runner is up within a short time."""
        ...

    def execute(self, runner: RunnerInfo, job: Job) -> AsyncIterator[ExecEvent]:
        """The job's events from the runner, accepted first, final last.  Raises RunnerRefused before
        acceptance, RunnerGone when the connection breaks, or the GatewayError the runner refused with."""
        ...

    async def cancel(self, runner: RunnerInfo, run_id: str) -> None: ...

    async def close(self) -> None: ...


class Dispatcher:
    """core.jobs.Executor for servers with distributed_execution: each job goes to a runner."""

    def __init__(self, registry: RunnerDirectory, link: RunnerLink, ttl: float):
        self.registry = registry
        self.link = link
        self.ttl = ttl
        self._waiting: dict[str, list[str]] = {}  # run id -> its runner tags, in queue order
        self._passed_over: dict[str, float] = {}  # runner id -> until when
        self._sending: dict[str, int] = {}  # runner id -> runs handed over that its entry may not count yet
        self._handed: set[str] = set()  # runs handed to a runner: out of the queue

    async def start(self) -> None:
        self.registry.start()

    # ------------------------------------------------------------ choosing
    def _eligible(self, wanted: list[str]) -> tuple[list[RunnerInfo], list[RunnerInfo]]:
        """(runners with the tags, those of them with room now), the best first."""
        now = time.monotonic()
        matching = [r for r in self.registry.runners.values() if r.has_tags(wanted) and not r.draining]
        free = [r for r in matching if r.capacity - r.load - self._sending.get(r.id, 0) > 0
                and self._passed_over.get(r.id, 0) <= now]
        free.sort(key=lambda r: (bool(r.problem), (r.load + self._sending.get(r.id, 0)) / max(1, r.capacity), r.id))
        return matching, free

    def _choose(self, run_id: str, wanted: list[str]) -> tuple[RunnerInfo | None, str]:
        order = [r for r in self._waiting if r not in self._handed]
        position = order.index(run_id) + 1
        matching, free = self._eligible(wanted)
        tags = f" with the tags {', '.join(wanted)}" if wanted else ""
        if not matching:
            return None, f"waiting: no live runner{tags} (position {position} in the queue)"
        earlier = [self._waiting[r] for r in order[:position - 1]]
        for runner in free:
            if not any(runner.has_tags(other) for other in earlier):  # runs queued before this one go first
                return runner, ""
        busy = (f"the one runner{tags} is busy" if len(matching) == 1
                else f"all {len(matching)} runners{tags} are busy")
        return None, f"waiting: {busy} (position {position} in the queue)"

    # ------------------------------------------------------------ the run
    async def execute(self, job: Job, events: JobEvents, cancel: asyncio.Event) -> JobResult:
        """Wait for a runner, hand the job over, follow it to its end."""
        run_id = job.run_id
        wanted = list(job.service.runner_tags)
        deadline = time.monotonic() + job.timeout
        self._waiting[run_id] = wanted
        try:
            while True:
                if cancel.is_set():
                    return JobResult(CANCELLED, "cancelled while queued")
                runner, why = self._choose(run_id, wanted)
                if runner is None:
                    refusing = self._refusing(wanted)
                    if refusing:
                        return JobResult(FAILED, refusing)
                    if time.monotonic() >= deadline:
                        return JobResult(FAILED, f"no runner took the run within its {job.timeout} s time "
                                                 f"limit ({why.removeprefix('waiting: ')})")
                    await events.waiting(why)
                    await self.registry.wait_for_change(min(WAIT_STEP, max(0.05, deadline - time.monotonic())))
                    continue
                self._handed.add(run_id)
                result = await self._hand_over(runner, job, events, cancel)
                if result is not None:
                    return result
                self._handed.discard(run_id)
                # not taken (unreachable or full): nothing was started there; choose again
        finally:
            self._waiting.pop(run_id, None)
            self._handed.discard(run_id)

    def _refusing(self, wanted: list[str]) -> str:
        """With no trusted runner for these tags, why a run fails now rather than waits: an untrusted entry
        with the tags says it refuses work (a runner without the cluster's key).  Nothing is sent to it."""
        if any(r.has_tags(wanted) for r in self.registry.runners.values()):
            return ""
        for runner in sorted(self.registry.untrusted.values(), key=lambda r: r.id):
            if runner.has_tags(wanted) and runner.problem and not runner.draining:
                return f"runner {runner.id} refuses work: {' '.join(runner.problem.split())[:400]}"
        return ""

    async def _hand_over(self, runner: RunnerInfo, job: Job, events: JobEvents,
                         cancel: asyncio.Event) -> JobResult | None:
        """Run it on `runner`: the result, or None when the runner did not take it."""
        refusal = self.link.refusal(runner)
        if refusal:
            log.warning("run %s not sent: %s", job.run_id, refusal)
            return JobResult(FAILED, refusal)
        if not await self.link.reachable(runner):
            log.warning("runner %s at %s cannot be reached; passing it over", runner.id, runner.target)
            self._passed_over[runner.id] = time.monotonic() + UNREACHABLE_SECONDS
            return None
        self._sending[runner.id] = self._sending.get(runner.id, 0) + 1
        accepted = asyncio.Event()
        follow = asyncio.ensure_future(self._follow(runner, job, events, cancel, accepted))
        lost = asyncio.ensure_future(self._lost(runner))
        try:
            await asyncio.wait({follow, lost}, return_when=asyncio.FIRST_COMPLETED)
            if follow.done():
                return follow.result()
            follow.cancel()  # the stream closes: the runner stops the process, if it still can
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await follow
            return JobResult(FAILED, lost.result())
        finally:
            # This server stopping (cancelled: the record says interrupted) lands here too: the call is
            # cancelled with `follow`, and the runner stops the process.
            follow.cancel()
            lost.cancel()
            if not accepted.is_set():
                self._sending[runner.id] -= 1

    async def _follow(self, runner: RunnerInfo, job: Job, events: JobEvents, cancel: asyncio.Event,
                      accepted: asyncio.Event) -> JobResult | None:
        async def cancel_there() -> None:
            await cancel.wait()
            with contextlib.suppress(Exception):
                await self.link.cancel(runner, job.run_id)

        canceller: asyncio.Task | None = None
        try:
            async with contextlib.aclosing(self.link.execute(runner, job)) as stream:
                async for event in stream:
                    if event.kind == "accepted":
                        accepted.set()
                        self._sending[runner.id] -= 1
                        await events.started(runner.id)
                        canceller = asyncio.ensure_future(cancel_there())
                    elif event.kind == "output":  # the runner's batch stays one: a call for each stream's run of lines
                        for stream, lines in groupby(event.lines, key=_STREAM):
                            await events.output_lines(stream, list(map(_TEXT, lines)))
                    elif event.kind == "progress":
                        for line in event.lines:
                            events.progress(line.text)
                    elif event.kind == "final":
                        if event.commit:
                            events.checked_out(event.commit)
                        return JobResult(event.status, event.reason, event.exit_code, event.state)
            return JobResult(FAILED, f"runner lost: {runner.id} ended the run without a result")
        except RunnerRefused as exc:
            log.info("runner %s did not take run %s: %s", runner.id, job.run_id, exc)
            self._passed_over[runner.id] = time.monotonic() + BUSY_SECONDS
            return None
        except RunnerGone as exc:
            log.warning("run %s: runner %s lost: %s", job.run_id, runner.id, exc)
            return JobResult(FAILED, f"runner lost: {runner.id} went away mid-run")
        except GatewayError as exc:
            return JobResult(FAILED, str(exc))  # refused: no secrets key, not authorized, ...
        finally:
            if canceller is not None:
                canceller.cancel()

    async def _lost(self, runner: RunnerInfo) -> str:
        """Returns once the runner's entry has stayed out of the registry for a lease TTL: why the run is lost."""
        gone_since = None
        while True:
            await self.registry.wait_for_change(WAIT_STEP)
            if runner.id in self.registry.runners:
                gone_since = None
            elif gone_since is None:
                gone_since = time.monotonic()
            elif time.monotonic() - gone_since >= self.ttl:
                return f"runner lost: {runner.id} left the registry mid-run"

    def reap(self) -> int:
        return 0  # a server that dispatches starts no process of its own

    async def close(self) -> None:
        await self.registry.close()
        await self.link.close()
