"""A server's gRPC client to runners: hands a prepared job over and streams its events back.

Implements cluster.dispatch.RunnerLink.  One channel per runner address; each
call carries the cluster's runner token.  It never downgrades: with
``[application] ca_certificate_file`` every channel is TLS and the runner's
certificate must be signed by that CA, whatever the runner announces about
itself; without one, a runner that announces TLS is checked against the
system's CAs.  Nothing is sent in clear (no job, no token) unless ``[server]
allow_plaintext_runners = true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import AsyncIterator, Awaitable, Callable

import grpc

from ..cluster.dispatch import RunnerGone, RunnerRefused
from ..cluster.intake import ExecEvent
from ..core.errors import FailedPrecondition
from ..core.runs.jobs import Job
from ..core.resources.runners import RunnerInfo
from . import convert
from .errors import error_from_rpc
from .gen import runner_pb2, runner_pb2_grpc

CONNECT_SECONDS = 3.0
_LOST = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED,
         grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)


class RunnerClient:
    def __init__(self, token: Callable[[], Awaitable[str]], ttl: float, ca_file: str = "",
                 allow_plaintext: bool = False):
        """`token()`: the cluster's runner token (asked once, when first needed)."""
        self._token_source = token
        self._token: str | None = None
        self.ttl = ttl
        self.allow_plaintext = allow_plaintext
        self._root = None  # the CA that signed the runners' certificates; None: the system's
        if ca_file:
            try:
                with open(ca_file, "rb") as handle:
                    self._root = handle.read()
            except OSError as exc:
                raise FailedPrecondition(f"cannot read [application] ca_certificate_file {ca_file}: "
                                         f"{exc.strerror or exc}") from None
        self._channels: dict[tuple[str, bool], grpc.aio.Channel] = {}
        # The request of each job being offered, by id(job): built (its inputs encoded) once, whatever number of
        # runners are tried, and forgotten with the job.
        self._requests: dict[int, runner_pb2.ExecuteRequest] = {}

    def in_clear(self, runner: RunnerInfo) -> bool:
        """True when this runner would be spoken to without TLS (no CA configured, and it announces none)."""
        return self._root is None and not runner.use_tls

    def refusal(self, runner: RunnerInfo) -> str:
        """Why nothing may be sent to this runner, or ""."""
        if self.in_clear(runner) and not self.allow_plaintext:
            return (f"runner {runner.id} serves without TLS, and nothing is sent to a runner in clear (the job's "
                    "secret values and the cluster's token would cross the network readable): give the runner a "
                    "certificate (gateway cert-gen runner; [runner] use_tls, certificate_file, private_key_file) "
                    "and this server [application] ca_certificate_file, or set [server] allow_plaintext_runners "
                    "= true")
        return ""

    def _channel(self, runner: RunnerInfo) -> grpc.aio.Channel:
        tls = not self.in_clear(runner)
        if not tls and not self.allow_plaintext:  # the dispatcher asks refusal() first; this holds regardless
            raise FailedPrecondition(self.refusal(runner))
        key = (runner.target, tls)
        channel = self._channels.get(key)
        if channel is None:
            options = [("grpc.keepalive_time_ms", 5000), ("grpc.keepalive_timeout_ms", int(self.ttl * 1000)),
                       ("grpc.keepalive_permit_without_calls", 0), ("grpc.max_receive_message_length", 32 << 20)]
            if tls:
                channel = grpc.aio.secure_channel(runner.target, grpc.ssl_channel_credentials(self._root), options)
            else:
                channel = grpc.aio.insecure_channel(runner.target, options)
            self._channels[key] = channel
        return channel

    async def _metadata(self) -> tuple[tuple[str, str], ...]:
        if self._token is None:
            self._token = await self._token_source()
        return (("authorization", f"Bearer {self._token}"),)

    async def reachable(self, runner: RunnerInfo) -> bool:
        try:
            await asyncio.wait_for(self._channel(runner).channel_ready(), CONNECT_SECONDS)
        except (TimeoutError, asyncio.TimeoutError):
            return False
        return True

    def request(self, job: Job) -> runner_pb2.ExecuteRequest:
        """What is sent to a runner for `job`: the same message for every runner it is offered to."""
        key = id(job)
        request = self._requests.get(key)
        if request is None:
            request = self._requests[key] = convert.job_message(job)
            weakref.finalize(job, self._requests.pop, key, None)
        return request

    async def execute(self, runner: RunnerInfo, job: Job) -> AsyncIterator[ExecEvent]:
        stub = runner_pb2_grpc.ExecutionServiceStub(self._channel(runner))
        call = stub.Execute(self.request(job), metadata=await self._metadata())
        accepted = False
        try:
            async for message in call:
                event = convert.exec_event_from_message(message)
                accepted = accepted or event.kind == "accepted"
                yield event
        except grpc.RpcError as exc:
            code = exc.code()
            details = exc.details() or code.name
            if not accepted and code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise RunnerRefused(details) from None
            if code in _LOST:
                raise RunnerGone(details) from None
            raise error_from_rpc(exc, runner.id) from None
        finally:
            call.cancel()  # a no-op once the call has ended; else the runner stops the process

    async def cancel(self, runner: RunnerInfo, run_id: str) -> None:
        stub = runner_pb2_grpc.ExecutionServiceStub(self._channel(runner))
        with contextlib.suppress(grpc.RpcError):
            await stub.CancelExecution(runner_pb2.CancelExecutionRequest(run_id=run_id),
                                       metadata=await self._metadata(), timeout=10)

    async def close(self) -> None:
        for channel in self._channels.values():
            with contextlib.suppress(Exception):
                await channel.close()
        self._channels.clear()
