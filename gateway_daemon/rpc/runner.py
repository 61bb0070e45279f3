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
import socket
from typing import Any, Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ..cluster.intake import Busy, Intake
from ..cluster.keycheck import check_secrets_key
from ..cluster.registry import Announcer, runner_token, same_token
from ..config import Config, unprotected_store
from ..core.access.integrity import RecordMacs
from ..core.errors import FailedPrecondition, GatewayError, Unauthenticated, Unavailable
from ..core.resources.runners import RunnerInfo
from ..store import StoreError
from . import convert
from .gen import common_pb2, runner_pb2_grpc
from .interceptor import AccessInterceptor
from .policy import CLUSTER, PUBLIC, Access
from .server import MAX_MESSAGE, _set_health, _version, reap, server_credentials

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


def runner_identity(config: Config) -> tuple[str, str]:
    """(id, address servers reach it at)."""
    runner = config["runner"]
    address = runner.announcement_address or runner.listen_address
    if address in ("0.0.0.0", "::", "[::]"):
        address = socket.getfqdn()
    return f"{address}:{runner.port}", address


async def serve_runner(config: Config, open_engine: Callable[[], Any],
                       ready: Callable[[str], None] | None = None) -> None:
    """Serve until SIGTERM; `open_engine()` (bootstrap) gives the engine, opened inside the loop."""
    engine = open_engine()
    reap(engine)
    await engine.lifecycle.executor.start()  # prunes unused venvs now and every [application] venv_sweep_interval
    store = engine.store
    runner = config["runner"]
    runner_id, address = runner_identity(config)
    credentials = server_credentials(config, "runner")
    info = RunnerInfo(id=runner_id, address=address, port=runner.port, tags=list(runner.tags),
                      capacity=config.get("execution", "max_concurrent_runs"), use_tls=credentials is not None,
                      version=_version())
    macs = RecordMacs(engine.secret_box, store.namespace)
    announcer = Announcer(store, info, runner.lease_ttl, macs)
    executor = Intake(engine.lifecycle.executor, engine.secret_box, runner_id, info.capacity, announcer)
    try:
        if not executor.problem():
            try:
                await check_secrets_key(engine)
            except FailedPrecondition as exc:
                executor.key_problem = str(exc)
        token = runner_token(macs)
    except StoreError as exc:
        await engine.close()
        raise Unavailable(str(exc)) from None
    server = grpc.aio.server(interceptors=[AccessInterceptor(ClusterGate(token, runner_id), who="runner")],
                             options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                      ("grpc.max_send_message_length", MAX_MESSAGE),
                                      ("grpc.so_reuseport", 0),
                                      ("grpc.keepalive_permit_without_calls", 1),
                                      ("grpc.http2.min_ping_interval_without_data_ms", 4000)])
    runner_pb2_grpc.add_ExecutionServiceServicer_to_server(ExecutionServicer(executor), server)
    health_servicer = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    listen = f"{runner.listen_address}:{runner.port}"
    try:
        if credentials is None:
            server.add_insecure_port(listen)
        else:
            server.add_secure_port(listen, credentials)
    except RuntimeError:
        await engine.close()
        raise Unavailable(f"cannot listen on {listen}: is another process using that port?") from None
    unprotected = unprotected_store(config)
    if unprotected:
        log.warning("%s", unprotected)
    problem = executor.problem()
    if problem:
        log.error("this runner will refuse every run: %s", problem)
        announcer.update(problem=problem)
    await server.start()
    try:
        await announcer.start()
    except StoreError as exc:
        await server.stop(0)
        await engine.close()
        raise Unavailable(f"cannot announce this runner: {exc}") from None
    for name in ("", "gateway.v1.ExecutionService"):
        await _set_health(health_servicer, name, health_pb2.HealthCheckResponse.SERVING)
    log.info("runner %s serving gRPC on %s (TLS %s), tags %s, capacity %d, cluster %s", runner_id, listen,
             "on" if credentials else "off", ",".join(info.tags) or "none", info.capacity, config.cluster_id)
    if ready:
        ready(listen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: no new runs; runs in flight get %.0f s to finish", SHUTDOWN_GRACE)
    await executor.drain(SHUTDOWN_GRACE)
    await announcer.stop()
    await server.stop(2)
    await engine.close()
    log.info("stopped")
