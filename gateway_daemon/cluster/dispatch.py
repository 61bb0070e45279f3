"""A server's side of distributed execution: choose a runner, hand it the run, follow it into the record.

The server keeps the run's record; the runner executes.  A run waits (its
``reason`` says why: queue position, no live runner with the tags, all busy)
until a live runner with all of the service's runner tags has room, least
loaded first, and fails when its time limit passes first.  Once a runner has
the request, the run is never sent anywhere else: if that runner goes away
(its connection breaks, or its registry entry stays gone for a lease TTL) the
run ends failed with the reason "runner lost".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any, Awaitable, Callable

import grpc

from ..core.errors import FailedPrecondition
from ..core.runners import RunnerInfo
from ..core.runs import CANCELLED, FAILED, RUNNING, OutputLine, RunEvent
from ..core.scheduler import Job
from ..rpc.gen import runner_pb2, runner_pb2_grpc, services_pb2
from ..store import Store
from .registry import Registry, runner_token

log = logging.getLogger("gateway.dispatch")
CONNECT_SECONDS = 3.0
UNREACHABLE_SECONDS = 5.0  # a runner that could not be reached is passed over for this long
BUSY_SECONDS = 1.0  # a runner that said it is full is passed over until its entry changes, or this long
WAIT_STEP = 0.5

SetRecord = Callable[..., Awaitable[None]]


class _Lost(Exception):
    pass


class Dispatcher:
    def __init__(self, store: Store, registry: Registry, ttl: float, ca_file: str = ""):
        self.store = store
        self.registry = registry
        self.ttl = ttl
        self._root = None  # the CA that signed the runners' certificates; None: the system's
        if ca_file:
            try:
                with open(ca_file, "rb") as handle:
                    self._root = handle.read()
            except OSError as exc:
                raise FailedPrecondition(f"cannot read [application] ca_certificate_file {ca_file}: "
                                         f"{exc.strerror or exc}") from None
        self._token: str | None = None
        self._channels: dict[tuple[str, bool], grpc.aio.Channel] = {}
        self._waiting: dict[str, list[str]] = {}  # run id -> its runner tags, in queue order
        self._passed_over: dict[str, float] = {}  # runner id -> until when
        self._sending: dict[str, int] = {}  # runner id -> runs handed over that its entry may not count yet
        self._handed: set[str] = set()  # runs handed to a runner: out of the queue

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
    async def execute(self, active: Any, job: Job, sink: Any, set_record: SetRecord) -> dict[str, Any]:
        """Wait for a runner, hand the run over, follow it; the fields of the final record."""
        run_id = active.run.id
        wanted = list(job.service.runner_tags)
        deadline = time.monotonic() + job.timeout
        self._waiting[run_id] = wanted
        try:
            while True:
                if active.cancel_requested:
                    return dict(status=CANCELLED, reason="cancelled while queued")
                runner, why = self._choose(run_id, wanted)
                if runner is None:
                    if time.monotonic() >= deadline:
                        return dict(status=FAILED, reason=f"no runner took the run within its {job.timeout} s time "
                                                          f"limit ({why.removeprefix('waiting: ')})")
                    if active.run.reason != why:
                        await set_record(active, reason=why)
                    await self.registry.wait_for_change(min(WAIT_STEP, max(0.05, deadline - time.monotonic())))
                    continue
                self._handed.add(run_id)
                outcome = await self._hand_over(runner, active, job, sink, set_record)
                if outcome is not None:
                    return outcome
                self._handed.discard(run_id)
                # not taken (unreachable or full): nothing was started there; choose again
        finally:
            self._waiting.pop(run_id, None)
            self._handed.discard(run_id)

    def _channel(self, runner: RunnerInfo) -> grpc.aio.Channel:
        key = (runner.target, runner.use_tls)
        channel = self._channels.get(key)
        if channel is None:
            options = [("grpc.keepalive_time_ms", 5000), ("grpc.keepalive_timeout_ms", int(self.ttl * 1000)),
                       ("grpc.keepalive_permit_without_calls", 0), ("grpc.max_receive_message_length", 32 << 20)]
            if runner.use_tls:
                channel = grpc.aio.secure_channel(runner.target, grpc.ssl_channel_credentials(self._root), options)
            else:
                channel = grpc.aio.insecure_channel(runner.target, options)
            self._channels[key] = channel
        return channel

    async def _hand_over(self, runner: RunnerInfo, active: Any, job: Job, sink: Any,
                         set_record: SetRecord) -> dict[str, Any] | None:
        """Run it on `runner`: the final fields, or None when the runner did not take it."""
        channel = self._channel(runner)
        try:
            await asyncio.wait_for(channel.channel_ready(), CONNECT_SECONDS)
        except (TimeoutError, asyncio.TimeoutError):
            log.warning("runner %s at %s cannot be reached; passing it over", runner.id, runner.target)
            self._passed_over[runner.id] = time.monotonic() + UNREACHABLE_SECONDS
            return None
        if self._token is None:
            self._token = await runner_token(self.store)
        request = runner_pb2.ExecuteRequest(
            run_id=active.run.id, service=job.service.name, inputs_json=json.dumps(job.inputs), timeout=job.timeout,
            secrets=[services_pb2.SecretRef(name=s.name, type=s.type, target=s.target) for s in job.run_secrets])
        stub = runner_pb2_grpc.ExecutionServiceStub(channel)
        self._sending[runner.id] = self._sending.get(runner.id, 0) + 1
        call = stub.Execute(request, metadata=(("authorization", f"Bearer {self._token}"),))
        accepted = False
        lost_reason = ""

        async def watchdog() -> None:
            nonlocal lost_reason
            gone_since = None
            while True:
                await self.registry.wait_for_change(WAIT_STEP)
                if runner.id in self.registry.runners:
                    gone_since = None
                elif gone_since is None:
                    gone_since = time.monotonic()
                elif time.monotonic() - gone_since >= self.ttl:
                    lost_reason = f"runner lost: {runner.id} left the registry mid-run"
                    call.cancel()
                    return

        guard = asyncio.get_running_loop().create_task(watchdog())
        try:
            async for event in call:
                if event.kind == "accepted":
                    accepted = True
                    self._sending[runner.id] -= 1
                    active.remote_cancel = lambda: asyncio.get_running_loop().create_task(self._cancel(stub, active))
                    await set_record(active, status=RUNNING, reason="", started_at=time.time(), runner=runner.id)
                    if active.cancel_requested:
                        active.remote_cancel()
                elif event.kind == "output":
                    for line in event.lines:
                        await sink.line(line.stream, line.text)
                elif event.kind == "progress":
                    active.publish(RunEvent("output", lines=tuple(OutputLine(l.stream, job.masker(l.text))
                                                                  for l in event.lines)))
                elif event.kind == "final":
                    if event.commit:
                        active.run.commit = event.commit
                    return dict(status=event.status, reason=event.reason,
                                exit_code=event.exit_code if event.HasField("exit_code") else None)
            return dict(status=FAILED, reason=lost_reason or f"runner lost: {runner.id} ended the run without a result")
        except grpc.RpcError as exc:
            code = exc.code()
            details = exc.details() or code.name
            if not accepted and code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                log.info("runner %s did not take run %s: %s", runner.id, active.run.id, details)
                self._passed_over[runner.id] = time.monotonic() + BUSY_SECONDS
                return None
            if lost_reason:
                return dict(status=FAILED, reason=lost_reason)
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED,
                        grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
                log.warning("run %s: runner %s lost: %s", active.run.id, runner.id, details)
                return dict(status=FAILED, reason=f"runner lost: {runner.id} went away mid-run")
            return dict(status=FAILED, reason=details)  # refused: no secrets key, not authorized, ...
        except BaseException:
            # This server stops (cancelled: the record says interrupted), or cannot record what it gets
            # (the store is gone): either way the runner stops the process.
            call.cancel()
            raise
        finally:
            guard.cancel()
            active.remote_cancel = None
            if not accepted:
                self._sending[runner.id] -= 1

    async def _cancel(self, stub: runner_pb2_grpc.ExecutionServiceStub, active: Any) -> None:
        with contextlib.suppress(grpc.RpcError, asyncio.CancelledError):
            await stub.CancelExecution(runner_pb2.CancelExecutionRequest(run_id=active.run.id),
                                       metadata=(("authorization", f"Bearer {self._token}"),), timeout=10)

    async def close(self) -> None:
        for channel in self._channels.values():
            with contextlib.suppress(Exception):
                await channel.close()
        self._channels.clear()
