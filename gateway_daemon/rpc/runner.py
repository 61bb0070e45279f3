"""`gateway-daemon` in runner mode: the execution API over gRPC, announced in the cluster's registry.

Servers call ExecutionService with the cluster's runner token (derived from
the cluster's secrets key file, never stored) as ``authorization: Bearer``;
the runner's registry entry carries a MAC under the same key; with ``[runner] use_tls`` the
channel is TLS and servers check the runner's certificate against
``[application] ca_certificate_file``.  SIGTERM: the runner is marked
draining (servers send it nothing new), runs in flight get a grace period,
what is left ends interrupted, then the lease is revoked and it leaves the
registry.  Who may call, and how errors leave, is the same interceptor and
error mapper as the server's (rpc/interceptor.py, rpc/errors.py).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any, Callable, Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ..cluster.intake import Busy, Intake
from ..cluster.directory import same_token
from ..config import Config
from ..core.errors import GatewayError, Unauthenticated, Unavailable
from ..store import StoreError
from . import convert
from .gen import common_pb2, runner_pb2_grpc
from .interceptor import AccessInterceptor
from .policy import CLUSTER, PUBLIC, Access
from .listening import MAX_MESSAGE, server_credentials, set_health

log = logging.getLogger("gateway.runner")
SHUTDOWN_GRACE = 30.0


class RunnerBusy(GatewayError):
    """This runner takes no more work now; the server passes it over for a while."""

    code = "RESOURCE_EXHAUSTED"


class ClusterGate:
    """The runner's gate: only the servers of its cluster, by the runner token (None: nobody; a runner
    without the cluster's key)."""

    def __init__(self, token: str | None, runner_id: str):
        self.token = token
        self.runner_id = runner_id

    async def admit(self, access: Access, method: str, key: str | None) -> None:
        if access is PUBLIC:
            return None
        if access is CLUSTER and self.token is not None and same_token(key, self.token):
            return None
        raise Unauthenticated(f"runner {self.runner_id}: the caller is not a server of this cluster")


class ExecutionServicer(runner_pb2_grpc.ExecutionServiceServicer):
    def __init__(self, executor: Intake):
        self.executor = executor

    async def Execute(self, request, context):
        job = convert.job_from_message(request)
        try:
            async for event in self.executor.execute(job):
                yield convert.exec_event_message(event, self.executor.runner_id)
        except Busy as exc:
            raise RunnerBusy(str(exc)) from None

    async def CancelExecution(self, request, context):
        self.executor.cancel(request.run_id)
        return common_pb2.Empty()


class Served(Protocol):
    """What bootstrap.open_runner composes for this face."""

    runner_id: str
    info: Any
    intake: Intake
    token: str | None
    background: Any

    async def drain(self, grace: float) -> None: ...

    async def close(self) -> None: ...


async def serve_runner(config: Config, runner: Served, ready: Callable[[str], None] | None = None) -> None:
    """Serve `runner` (bootstrap.open_runner) over gRPC until SIGTERM: announced once listening, drained and
    closed at the end."""
    listen = f"{config.get('runner', 'listen_address')}:{config.get('runner', 'port')}"
    credentials = server_credentials(config, "runner")
    server = grpc.aio.server(interceptors=[AccessInterceptor(ClusterGate(runner.token, runner.runner_id),
                                                             who="runner")],
                             options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                      ("grpc.max_send_message_length", MAX_MESSAGE),
                                      ("grpc.so_reuseport", 0),
                                      ("grpc.keepalive_permit_without_calls", 1),
                                      ("grpc.http2.min_ping_interval_without_data_ms", 4000)])
    runner_pb2_grpc.add_ExecutionServiceServicer_to_server(ExecutionServicer(runner.intake), server)
    health_servicer = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    try:
        if credentials is None:
            server.add_insecure_port(listen)
        else:
            server.add_secure_port(listen, credentials)
    except RuntimeError:
        await runner.close()
        raise Unavailable(f"cannot listen on {listen}: is another process using that port?") from None
    await server.start()
    try:
        await runner.background.start()  # announced: servers may send work now
    except StoreError as exc:
        await server.stop(0)
        await runner.close()
        raise Unavailable(f"cannot announce this runner: {exc}") from None
    for name in ("", "gateway.v1.ExecutionService"):
        await set_health(health_servicer, name, health_pb2.HealthCheckResponse.SERVING)
    info = runner.info
    log.info("runner %s serving gRPC on %s (TLS %s), tags %s, capacity %d, cluster %s", runner.runner_id, listen,
             "on" if credentials else "off", ",".join(info.tags) or "none", info.capacity, config.cluster_id)
    if ready:
        ready(listen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: no new runs; runs in flight get %.0f s to finish", SHUTDOWN_GRACE)
    await runner.drain(SHUTDOWN_GRACE)
    await runner.background.stop()  # out of the directory before the port closes
    await server.stop(2)
    await runner.close()
    log.info("stopped")
