"""`gateway-daemon` in server mode: the engine behind grpc.aio, with users and API keys.

Every call but Login, ChangePassword and the health service carries
``authorization: Bearer <api key>``.  Domain errors leave as gRPC status codes
with their one-line message; anything unexpected is logged and leaves as
INTERNAL without details.  SIGTERM stops taking calls, lets runs in flight
finish for a grace period, and records the rest as interrupted.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import signal
from importlib import metadata
from typing import Any, Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ..cluster.keycheck import check_secrets_key
from ..cluster.owners import Keepers
from ..config import Config
from ..core.auth import Auth, Session
from ..core.errors import FailedPrecondition, GatewayError, InvalidArgument, Unavailable
from ..core.services import SecretRef
from ..store import StoreError
from . import convert
from .gen import (auth_pb2, auth_pb2_grpc, common_pb2, common_pb2_grpc, decorators_pb2, decorators_pb2_grpc,
                  repositories_pb2, repositories_pb2_grpc, runner_pb2, runner_pb2_grpc, runs_pb2, runs_pb2_grpc, secrets_pb2, secrets_pb2_grpc,
                  services_pb2, services_pb2_grpc, users_pb2, users_pb2_grpc)

log = logging.getLogger("gateway.server")
SHUTDOWN_GRACE = 30.0
MAX_MESSAGE = 32 * 1024 * 1024


def _bearer(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and value.startswith("Bearer "):
            return value[len("Bearer "):].strip()
    return None


async def _abort(context, exc: Exception):
    if isinstance(exc, StoreError):
        exc = Unavailable(str(exc))
    if isinstance(exc, GatewayError):
        await context.abort(convert.STATUS_BY_CODE.get(exc.code, grpc.StatusCode.UNKNOWN), str(exc))
    log.exception("internal error")
    await context.abort(grpc.StatusCode.INTERNAL, "internal error in the gateway server; see its log")


def handler(auth: bool = True, admin: bool = False):
    """Authenticate, call, and turn domain errors into status codes (unary calls)."""
    def wrap(fn: Callable):
        @functools.wraps(fn)
        async def call(self, request, context):
            try:
                session = await self.core.session(context, admin) if auth else None
                return await fn(self, request, context, session)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a status
                await _abort(context, exc)
        return call
    return wrap


def stream_handler(fn: Callable):
    @functools.wraps(fn)
    async def call(self, request, context):
        try:
            session = await self.core.session(context, False)
            async for item in fn(self, request, context, session):
                yield item
        except Exception as exc:  # noqa: BLE001
            await _abort(context, exc)
    return call


class Core:
    """What every servicer shares: the engine, the users, the configuration."""

    def __init__(self, engine, auth: Auth, tls: bool):
        self.engine = engine
        self.auth = auth
        self.tls = tls

    async def session(self, context, admin: bool) -> Session:
        session = await self.auth.authenticate(_bearer(context))
        if admin:
            self.auth.require_admin(session)
        return session


class _Servicer:
    def __init__(self, core: Core):
        self.core = core

    @property
    def engine(self):
        return self.core.engine


def _resource_servicer(kind: str, base, pb2, singular: str, plural: str):
    """The five calls of one resource kind, named as its service says."""
    message_class = convert.MESSAGES[kind]
    list_class = getattr(pb2, f"{message_class.__name__}List")

    @handler()
    async def create(self, request, context, session):
        return convert.resource_message(await self.engine.create(convert.resource_from_message(kind, request)))

    @handler()
    async def get(self, request, context, session):
        return convert.resource_message(await self.engine.get(kind, request.name))

    @handler()
    async def list_(self, request, context, session):
        return list_class(items=[convert.resource_message(r) for r in await self.engine.list(kind)])

    @handler()
    async def update(self, request, context, session):
        message = getattr(request, singular.lower())
        paths = list(request.update_mask.paths)
        if not paths:
            raise InvalidArgument("nothing to change: the update mask names no fields")
        changes = convert.changes_from_message(kind, message, paths)
        return convert.resource_message(await self.engine.update(kind, message.name, changes))

    @handler()
    async def delete(self, request, context, session):
        await self.engine.delete(kind, request.name)
        return common_pb2.Empty()

    methods = {f"Create{singular}": create, f"Get{singular}": get, f"List{plural}": list_,
               f"Update{singular}": update, f"Delete{singular}": delete}
    return type(f"{singular}Servicer", (_Servicer, base), methods)


RepositoryServicer = _resource_servicer("repository", repositories_pb2_grpc.RepositoryServiceServicer,
                                        repositories_pb2, "Repository", "Repositories")
DecoratorServicer = _resource_servicer("decorator", decorators_pb2_grpc.DecoratorServiceServicer,
                                       decorators_pb2, "Decorator", "Decorators")
ServiceServicer = _resource_servicer("service", services_pb2_grpc.ServiceServiceServicer,
                                     services_pb2, "Service", "Services")


class SecretServicer(_Servicer, secrets_pb2_grpc.SecretServiceServicer):
    @handler()
    async def CreateSecret(self, request, context, session):
        secret = await self.engine.create_secret(request.name, request.value, request.description)
        return convert.resource_message(secret)

    @handler()
    async def GetSecret(self, request, context, session):
        return convert.resource_message(await self.engine.get("secret", request.name))

    @handler()
    async def ListSecrets(self, request, context, session):
        return secrets_pb2.SecretList(items=[convert.resource_message(s) for s in await self.engine.list("secret")])

    @handler()
    async def UpdateSecret(self, request, context, session):
        value = request.value if request.HasField("value") else None
        description = request.description if request.HasField("description") else None
        return convert.resource_message(await self.engine.update_secret(request.name, value, description))

    @handler()
    async def DeleteSecret(self, request, context, session):
        await self.engine.delete("secret", request.name)
        return common_pb2.Empty()

    @handler()
    async def RevealSecret(self, request, context, session):
        value = await self.engine.reveal_secret(request.name)
        log.info("secret %s revealed to %s", request.name, session.user.name)
        return secrets_pb2.RevealSecretReply(value=value)


class RunServicer(_Servicer, runs_pb2_grpc.RunServiceServicer):
    @stream_handler
    async def RunService(self, request, context, session):
        inputs = convert.json_field(request.inputs_json, "run inputs", {})
        if not isinstance(inputs, dict):
            raise InvalidArgument("run inputs must be a JSON object")
        secrets = [SecretRef(name=s.name, type=s.type or "env", target=s.target) for s in request.secrets]
        timeout = request.timeout if request.HasField("timeout") else None
        async for event in self.engine.run_service(request.name, inputs, secrets, timeout,
                                                   started_by=session.user.name):
            yield convert.event_message(event)

    @handler()
    async def CancelRun(self, request, context, session):
        return convert.run_message(await self.engine.cancel_run(request.id))

    @handler()
    async def GetRun(self, request, context, session):
        return convert.run_message(await self.engine.get_run(request.id))

    @handler()
    async def ListRuns(self, request, context, session):
        runs = await self.engine.list_runs(request.service or None, request.status or None, request.limit or 100,
                                           request.runner or None)
        return runs_pb2.RunList(items=[convert.run_message(r) for r in runs])

    @handler()
    async def GetRunOutput(self, request, context, session):
        lines = await self.engine.run_output(request.id)
        return runs_pb2.RunOutput(lines=[runs_pb2.OutputLine(stream=l.stream, text=l.text) for l in lines])

    @stream_handler
    async def FollowRun(self, request, context, session):
        async for event in self.engine.follow_run(request.id):
            yield convert.event_message(event)


class InfoServicer(_Servicer, common_pb2_grpc.InfoServiceServicer):
    @handler()
    async def GetInfo(self, request, context, session):
        info = await self.engine.info()
        return common_pb2.Info(mode=info.mode, data_dir=info.data_dir, store=info.store, cluster_id=info.cluster_id,
                               version=_version(), user=session.user.name, tls=self.core.tls)

    @stream_handler
    async def Watch(self, request, context, session):
        async for action, name in self.engine.watch(request.kind):
            yield common_pb2.Change(action=action, name=name)

    @handler()
    async def ExportDb(self, request, context, session):
        return common_pb2.ExportReply(document_json=json.dumps(await self.engine.export_db()))

    @handler()
    async def ImportDb(self, request, context, session):
        try:
            document = json.loads(request.document_json)
        except ValueError as exc:
            raise InvalidArgument(f"the document is not valid JSON: {exc}") from None
        report = await self.engine.import_db(document, dry_run=request.dry_run, strict=request.strict)
        return common_pb2.ImportReply(lines=report.lines(with_warnings=False), warnings=list(report.warnings), dry_run=report.dry_run)


class RunnerServicer(_Servicer, runner_pb2_grpc.RunnerServiceServicer):
    @handler()
    async def ListRunners(self, request, context, session):
        return runner_pb2.RunnerList(items=[convert.runner_message(r) for r in await self.engine.list_runners()])


class AuthServicer(_Servicer, auth_pb2_grpc.AuthServiceServicer):
    @handler(auth=False)
    async def Login(self, request, context, session):
        key, expires_at, user = await self.core.auth.login(request.username, request.password, request.new_password)
        log.info("user %s logged in", user.name)
        return auth_pb2.LoginReply(api_key=key, expires_at=expires_at, username=user.name, admin=user.admin)

    @handler()
    async def Logout(self, request, context, session):
        await self.core.auth.logout(session)
        return common_pb2.Empty()

    @handler()
    async def WhoAmI(self, request, context, session):
        return auth_pb2.WhoAmIReply(username=session.user.name, admin=session.user.admin,
                                    expires_at=session.expires_at)

    @handler(auth=False)
    async def ChangePassword(self, request, context, session):
        await self.core.auth.change_password(request.username, request.password, request.new_password)
        log.info("user %s changed their password; their API keys are revoked", request.username)
        return common_pb2.Empty()


class UserServicer(_Servicer, users_pb2_grpc.UserServiceServicer):
    @handler(admin=True)
    async def CreateUser(self, request, context, session):
        return convert.user_message(await self.core.auth.create_user(request.name, request.password, request.admin))

    @handler(admin=True)
    async def ListUsers(self, request, context, session):
        return users_pb2.UserList(items=[convert.user_message(u) for u in await self.core.auth.list_users()])

    @handler(admin=True)
    async def GetUser(self, request, context, session):
        return convert.user_message(await self.core.auth.get_user(request.name))

    @handler(admin=True)
    async def UpdateUser(self, request, context, session):
        admin = request.admin if request.HasField("admin") else None
        password = request.password if request.HasField("password") else None
        user = await self.core.auth.update_user(session.user, request.name, admin, password)
        return convert.user_message(user)

    @handler(admin=True)
    async def DeleteUser(self, request, context, session):
        await self.core.auth.delete_user(session.user, request.name)
        return common_pb2.Empty()


SERVICES: list[tuple[Any, Callable, str]] = [
    (RepositoryServicer, repositories_pb2_grpc.add_RepositoryServiceServicer_to_server, "RepositoryService"),
    (DecoratorServicer, decorators_pb2_grpc.add_DecoratorServiceServicer_to_server, "DecoratorService"),
    (ServiceServicer, services_pb2_grpc.add_ServiceServiceServicer_to_server, "ServiceService"),
    (SecretServicer, secrets_pb2_grpc.add_SecretServiceServicer_to_server, "SecretService"),
    (RunServicer, runs_pb2_grpc.add_RunServiceServicer_to_server, "RunService"),
    (InfoServicer, common_pb2_grpc.add_InfoServiceServicer_to_server, "InfoService"),
    (RunnerServicer, runner_pb2_grpc.add_RunnerServiceServicer_to_server, "RunnerService"),
    (AuthServicer, auth_pb2_grpc.add_AuthServiceServicer_to_server, "AuthService"),
    (UserServicer, users_pb2_grpc.add_UserServiceServicer_to_server, "UserService"),
]


def _version() -> str:
    try:
        return metadata.version("automation-gateway")
    except metadata.PackageNotFoundError:
        return "0"


def server_credentials(config: Config, section: str = "server") -> grpc.ServerCredentials | None:
    values = config[section]
    if not values.use_tls:
        return None
    with open(values.private_key_file, "rb") as key, open(values.certificate_file, "rb") as cert:
        return grpc.ssl_server_credentials([(key.read(), cert.read())])


async def serve(config: Config, ready: Callable[[str], None] | None = None) -> None:
    from ..bootstrap import open_engine

    engine = open_engine(config, announce=log.warning)
    auth = Auth(engine.store, config.get("server", "api_key_expiration"))
    try:
        temporary = await auth.ensure_admin()
        await check_secrets_key(engine)
        keepers = Keepers(engine.scheduler, config.get("runner", "lease_ttl"))
        await keepers.start()
    except StoreError as exc:
        await engine.close()
        raise Unavailable(str(exc)) from None
    except FailedPrecondition:
        await engine.close()
        raise
    reap(engine)
    if temporary:
        # Printed once, here, and stored nowhere in clear.
        log.warning("created user admin with the temporary password %s; it must be changed at the first login "
                    "(gateway login --username admin --change-password)", temporary)
    await engine.scheduler.executor.start()  # a dispatcher's live view of the runners
    dispatcher = config.get("server", "distributed_execution")
    credentials = server_credentials(config)
    core = Core(engine, auth, credentials is not None)
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                      ("grpc.max_send_message_length", MAX_MESSAGE),
                                      ("grpc.so_reuseport", 0)])
    names = []
    for servicer, add, name in SERVICES:
        add(servicer(core), server)
        names.append(f"gateway.v1.{name}")
    health_servicer = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    address = f"{config.get('server', 'listen_address')}:{config.get('server', 'port')}"
    try:
        if credentials is None:
            server.add_insecure_port(address)
        else:
            server.add_secure_port(address, credentials)
    except RuntimeError:
        await keepers.close()
        await engine.close()
        raise Unavailable(f"cannot listen on {address}: is another server using that port?") from None
    await server.start()
    for name in ["", *names]:
        await _set_health(health_servicer, name, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving gRPC on %s (TLS %s), store %s, cluster %s, runs %s", address, "on" if credentials else "off",
             config.get("store", "backend"), config.cluster_id, "sent to runners" if dispatcher else "run here")
    if ready:
        ready(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: no new calls; runs in flight get %.0f s to finish", SHUTDOWN_GRACE)
    for name in ["", *names]:
        await _set_health(health_servicer, name, health_pb2.HealthCheckResponse.NOT_SERVING)
    await engine.scheduler.drain(SHUTDOWN_GRACE)
    await engine.scheduler.shutdown()  # what is still running ends as interrupted
    await keepers.close()
    await engine.close()
    await server.stop(5)
    log.info("stopped")


def reap(engine) -> None:
    """End what a predecessor on this machine that died left running (its scripts, its run folders)."""
    cleared = engine.scheduler.executor.reap()
    if cleared:
        log.warning("ended the processes and removed the folders of %d runs left by a gateway process "
                    "that died", cleared)


async def _set_health(servicer, name: str, status) -> None:
    result = servicer.set(name, status)
    if asyncio.iscoroutine(result):
        await result
