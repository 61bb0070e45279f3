"""`gateway-daemon` in server mode: the engine behind grpc.aio, with users and API keys.

Every call but Login, ChangePassword and the health service carries
``authorization: Bearer <api key>``: the interceptor (rpc/interceptor.py)
admits each call by the method's line in rpc/policy.py.  Domain errors leave
as gRPC status codes with their one-line message (rpc/errors.py); anything
unexpected is logged and leaves as INTERNAL without details.  SIGTERM stops
taking calls, lets runs in flight finish for a grace period, and records the
rest as interrupted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from typing import Any, Callable, Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ..config import Config
from ..core.access.auth import Auth, current_session
from ..core.errors import InvalidArgument, Unavailable
from ..core.resources.services import SecretRef
from . import convert
from .gen import (executables_pb2, executables_pb2_grpc, registries_pb2, registries_pb2_grpc)
from .gen import (audit_pb2, audit_pb2_grpc, auth_pb2, auth_pb2_grpc, common_pb2, common_pb2_grpc, decorators_pb2, decorators_pb2_grpc,
                  repositories_pb2, repositories_pb2_grpc, runner_pb2, runner_pb2_grpc, runs_pb2, runs_pb2_grpc, secrets_pb2, secrets_pb2_grpc,
                  services_pb2, services_pb2_grpc, users_pb2, users_pb2_grpc)
from .listening import MAX_MESSAGE, server_credentials, set_health, version
from .interceptor import AccessInterceptor, PublicCalls, PublicLimits, UserGate

log = logging.getLogger("gateway.server")
SHUTDOWN_GRACE = 30.0


class _Servicer:
    """Thin: proto -> domain call -> proto.  Who may call is the interceptor's business (rpc/policy.py), and
    a domain error raised here leaves as its status (rpc/errors.py)."""

    def __init__(self, gateway, tls: bool):
        """`gateway`: the server's Engine (core.engine.ServerEngine); `tls`: whether calls come over TLS."""
        self.engine = gateway
        self.tls = tls

    async def _update(self, kind: str, message, update_mask):
        """Change the fields the update mask names (only those: a client sends the changed fields)."""
        paths = list(update_mask.paths)
        if not paths:
            raise InvalidArgument("nothing to change: the update mask names no fields")
        changes = convert.changes_from_message(kind, message, paths)
        return convert.resource_message(await self.engine.update(kind, message.name, changes))


class RepositoryServicer(_Servicer, repositories_pb2_grpc.RepositoryServiceServicer):
    async def CreateRepository(self, request, context):
        return convert.resource_message(await self.engine.create(convert.resource_from_message("repository", request)))

    async def GetRepository(self, request, context):
        return convert.resource_message(await self.engine.get("repository", request.name))

    async def ListRepositories(self, request, context):
        return repositories_pb2.RepositoryList(
            items=[convert.resource_message(r) for r in await self.engine.list("repository")])

    async def UpdateRepository(self, request, context):
        return await self._update("repository", request.repository, request.update_mask)

    async def DeleteRepository(self, request, context):
        await self.engine.delete("repository", request.name)
        return common_pb2.Empty()


class DecoratorServicer(_Servicer, decorators_pb2_grpc.DecoratorServiceServicer):
    async def CreateDecorator(self, request, context):
        return convert.resource_message(await self.engine.create(convert.resource_from_message("decorator", request)))

    async def GetDecorator(self, request, context):
        return convert.resource_message(await self.engine.get("decorator", request.name))

    async def ListDecorators(self, request, context):
        return decorators_pb2.DecoratorList(
            items=[convert.resource_message(r) for r in await self.engine.list("decorator")])

    async def UpdateDecorator(self, request, context):
        return await self._update("decorator", request.decorator, request.update_mask)

    async def DeleteDecorator(self, request, context):
        await self.engine.delete("decorator", request.name)
        return common_pb2.Empty()


class ServiceServicer(_Servicer, services_pb2_grpc.ServiceServiceServicer):
    async def CreateService(self, request, context):
        return convert.resource_message(await self.engine.create(convert.resource_from_message("service", request)))

    async def GetService(self, request, context):
        return convert.resource_message(await self.engine.get("service", request.name))

    async def ListServices(self, request, context):
        with convert.many_objects():
            return services_pb2.ServiceList(items=[convert.resource_message(r)
                                                   for r in await self.engine.list("service")])

    async def ListServiceSummaries(self, request, context):
        with convert.many_objects():
            return convert.service_summaries_message(await self.engine.list("service"))

    async def UpdateService(self, request, context):
        return await self._update("service", request.service, request.update_mask)

    async def DeleteService(self, request, context):
        await self.engine.delete("service", request.name)
        return common_pb2.Empty()

    async def GetServiceState(self, request, context):
        return convert.state_message(await self.engine.service_state(request.name), request.name)


class RegistryServicer(_Servicer, registries_pb2_grpc.RegistryServiceServicer):
    async def CreateRegistry(self, request, context):
        return convert.resource_message(await self.engine.create(convert.resource_from_message("registry", request)))

    async def GetRegistry(self, request, context):
        return convert.resource_message(await self.engine.get("registry", request.name))

    async def ListRegistries(self, request, context):
        return registries_pb2.RegistryList(items=[convert.resource_message(r) for r in await self.engine.list("registry")])

    async def UpdateRegistry(self, request, context):
        return await self._update("registry", request.registry, request.update_mask)

    async def DeleteRegistry(self, request, context):
        await self.engine.delete("registry", request.name)
        return common_pb2.Empty()


class ExecutableObjectServicer(_Servicer, executables_pb2_grpc.ExecutableObjectServiceServicer):
    async def CreateExecutableObject(self, request, context):
        return convert.resource_message(
            await self.engine.create(convert.resource_from_message("executable-object", request)))

    async def GetExecutableObject(self, request, context):
        return convert.resource_message(await self.engine.get("executable-object", request.name))

    async def ListExecutableObjects(self, request, context):
        return executables_pb2.ExecutableObjectList(
            items=[convert.resource_message(r) for r in await self.engine.list("executable-object")])

    async def UpdateExecutableObject(self, request, context):
        return await self._update("executable-object", request.executable_object, request.update_mask)

    async def DeleteExecutableObject(self, request, context):
        await self.engine.delete("executable-object", request.name)
        return common_pb2.Empty()


class SecretProviderServicer(_Servicer, secrets_pb2_grpc.SecretProviderServiceServicer):
    async def CreateSecretProvider(self, request, context):
        return convert.resource_message(
            await self.engine.create(convert.resource_from_message("secret-provider", request)))

    async def GetSecretProvider(self, request, context):
        return convert.resource_message(await self.engine.get("secret-provider", request.name))

    async def ListSecretProviders(self, request, context):
        return secrets_pb2.SecretProviderList(
            items=[convert.resource_message(r) for r in await self.engine.list("secret-provider")])

    async def UpdateSecretProvider(self, request, context):
        return await self._update("secret-provider", request.secret_provider, request.update_mask)

    async def DeleteSecretProvider(self, request, context):
        await self.engine.delete("secret-provider", request.name)
        return common_pb2.Empty()


class SecretServicer(_Servicer, secrets_pb2_grpc.SecretServiceServicer):
    async def CreateSecret(self, request, context):
        secret = await self.engine.create_secret(request.name, request.value, request.description, list(request.tags),
                                                 request.provider, request.path, request.key)
        return convert.resource_message(secret)

    async def GetSecret(self, request, context):
        return convert.resource_message(await self.engine.get("secret", request.name))

    async def ListSecrets(self, request, context):
        return secrets_pb2.SecretList(items=[convert.resource_message(s) for s in await self.engine.list("secret")])

    async def UpdateSecret(self, request, context):
        value = request.value if request.HasField("value") else None
        description = request.description if request.HasField("description") else None
        tags = list(request.tags) if request.set_tags else None
        alias = {field: getattr(request, field) for field in ("provider", "path", "key") if request.HasField(field)}
        return convert.resource_message(await self.engine.update_secret(request.name, value, description, tags,
                                                                        **alias))

    async def DeleteSecret(self, request, context):
        await self.engine.delete("secret", request.name)
        return common_pb2.Empty()

    async def RevealSecret(self, request, context):
        value = await self.engine.reveal_secret(request.name)
        log.info("secret %s revealed to %s", request.name, current_session().user.name)
        return secrets_pb2.RevealSecretReply(value=value)


class RunServicer(_Servicer, runs_pb2_grpc.RunServiceServicer):
    async def RunService(self, request, context):
        inputs = convert.json_field(request.inputs_json, "run inputs", {})
        if not isinstance(inputs, dict):
            raise InvalidArgument("run inputs must be a JSON object")
        secrets = [SecretRef(name=s.name, type=s.type or "env", target=s.target) for s in request.secrets]
        timeout = request.timeout if request.HasField("timeout") else None
        stream = convert.EventStream()  # a run's inputs go once
        async for event in self.engine.run_service(request.name, inputs, secrets, timeout,
                                                   started_by=current_session().user.name,
                                                   options=dict(request.options), action=request.action,
                                                   state=request.state if request.HasField("state") else None,
                                                   state_out=request.state_out):
            yield stream.message(event)

    async def CancelRun(self, request, context):
        return convert.run_message(await self.engine.cancel_run(request.id))

    async def GetRun(self, request, context):
        return convert.run_message(await self.engine.get_run(request.id))

    async def ListRuns(self, request, context):
        runs = await self.engine.list_runs(request.service or None, request.status or None, request.limit or 100,
                                           request.runner or None)
        return runs_pb2.RunList(items=[convert.run_message(r) for r in runs])

    async def GetRunOutput(self, request, context):
        lines = await self.engine.run_output(request.id)
        return runs_pb2.RunOutput(lines=[runs_pb2.OutputLine(stream=l.stream, text=l.text) for l in lines])

    async def FollowRun(self, request, context):
        stream = convert.EventStream()  # a run's inputs go once
        async for event in self.engine.follow_run(request.id):
            yield stream.message(event)

    async def DeleteRun(self, request, context):
        await self.engine.delete_run(request.id)
        log.info("run %s deleted by %s", request.id, current_session().user.name)
        return common_pb2.Empty()

    async def PruneRuns(self, request, context):
        deleted = await self.engine.prune_runs(request.before, request.service)
        log.info("%d runs created before %s deleted by %s", deleted, request.before, current_session().user.name)
        return runs_pb2.PruneRunsReply(deleted=deleted)


class InfoServicer(_Servicer, common_pb2_grpc.InfoServiceServicer):
    async def GetInfo(self, request, context):
        info = await self.engine.info()
        return common_pb2.Info(mode=info.mode, data_dir=info.data_dir, store=info.store, cluster_id=info.cluster_id,
                               version=version(), user=current_session().user.name, tls=self.tls,
                               distributed=info.distributed)

    async def Watch(self, request, context):
        async for action, name in self.engine.watch(request.kind):
            yield common_pb2.Change(action=action, name=name)

    async def ExportDb(self, request, context):
        return common_pb2.ExportReply(document_json=json.dumps(await self.engine.export_db()))

    async def ImportDb(self, request, context):
        try:
            document = json.loads(request.document_json)
        except ValueError as exc:
            raise InvalidArgument(f"the document is not valid JSON: {exc}") from None
        report = await self.engine.import_db(document, dry_run=request.dry_run, strict=request.strict)
        return common_pb2.ImportReply(lines=report.lines(with_warnings=False), warnings=list(report.warnings),
                                      dry_run=report.dry_run)

    async def ReadRepositoryFile(self, request, context):
        path, text = await self.engine.read_repository_file(request.url, request.reference, request.path,
                                                            request.private_key_name, tuple(request.defaults))
        return common_pb2.RepositoryFileReply(path=path, text=text)


class AuditServicer(_Servicer, audit_pb2_grpc.AuditServiceServicer):
    async def ListAudit(self, request, context):
        events = await self.engine.list_audit(request.user, request.action, request.since, request.limit)
        return audit_pb2.AuditList(items=[convert.audit_message(e) for e in events])


class RunnerServicer(_Servicer, runner_pb2_grpc.RunnerServiceServicer):
    async def ListRunners(self, request, context):
        return runner_pb2.RunnerList(items=[convert.runner_message(r) for r in await self.engine.list_runners()])


class AuthServicer(_Servicer, auth_pb2_grpc.AuthServiceServicer):
    async def Login(self, request, context):
        login = await self.engine.login(request.username, request.password, request.new_password)
        return auth_pb2.LoginReply(api_key=login.api_key, expires_at=login.expires_at, username=login.username,
                                   admin=login.admin, role=login.role, scope=login.scope)

    async def Logout(self, request, context):
        await self.engine.logout()
        return common_pb2.Empty()

    async def WhoAmI(self, request, context):
        me = await self.engine.whoami()
        return auth_pb2.WhoAmIReply(username=me.username, admin=me.admin, expires_at=me.expires_at, role=me.role,
                                    scope=me.scope)

    async def ChangePassword(self, request, context):
        await self.engine.change_password(request.username, request.password, request.new_password)
        return common_pb2.Empty()

    async def ListApiKeys(self, request, context):
        return auth_pb2.ApiKeyList(items=[convert.apikey_message(key) for key in await self.engine.list_apikeys()])

    async def DeleteApiKey(self, request, context):
        await self.engine.delete_apikey(request.id)
        return common_pb2.Empty()


class UserServicer(_Servicer, users_pb2_grpc.UserServiceServicer):
    async def CreateUser(self, request, context):
        return convert.user_message(await self.engine.create_user(
            request.name, request.password, request.admin, request.temporary, request.role, tuple(request.scope)))

    async def ListUsers(self, request, context):
        return users_pb2.UserList(items=[convert.user_message(u) for u in await self.engine.list_users()])

    async def GetUser(self, request, context):
        return convert.user_message(await self.engine.get_user(request.name))

    async def UpdateUser(self, request, context):
        admin = request.admin if request.HasField("admin") else None
        password = request.password if request.HasField("password") else None
        role = request.role if request.HasField("role") else None
        scope = tuple(request.scope) if request.set_scope else None
        return convert.user_message(await self.engine.update_user(request.name, admin, password, role, scope,
                                                                  request.unlock))

    async def DeleteUser(self, request, context):
        await self.engine.delete_user(request.name)
        return common_pb2.Empty()


SERVICES: list[tuple[Any, Callable, str]] = [
    (RepositoryServicer, repositories_pb2_grpc.add_RepositoryServiceServicer_to_server, "RepositoryService"),
    (DecoratorServicer, decorators_pb2_grpc.add_DecoratorServiceServicer_to_server, "DecoratorService"),
    (ServiceServicer, services_pb2_grpc.add_ServiceServiceServicer_to_server, "ServiceService"),
    (SecretServicer, secrets_pb2_grpc.add_SecretServiceServicer_to_server, "SecretService"),
    (SecretProviderServicer, secrets_pb2_grpc.add_SecretProviderServiceServicer_to_server, "SecretProviderService"),
    (RegistryServicer, registries_pb2_grpc.add_RegistryServiceServicer_to_server, "RegistryService"),
    (ExecutableObjectServicer, executables_pb2_grpc.add_ExecutableObjectServiceServicer_to_server,
     "ExecutableObjectService"),
    (RunServicer, runs_pb2_grpc.add_RunServiceServicer_to_server, "RunService"),
    (InfoServicer, common_pb2_grpc.add_InfoServiceServicer_to_server, "InfoService"),
    (RunnerServicer, runner_pb2_grpc.add_RunnerServiceServicer_to_server, "RunnerService"),
    (AuthServicer, auth_pb2_grpc.add_AuthServiceServicer_to_server, "AuthService"),
    (UserServicer, users_pb2_grpc.add_UserServiceServicer_to_server, "UserService"),
    (AuditServicer, audit_pb2_grpc.add_AuditServiceServicer_to_server, "AuditService"),
]




class Served(Protocol):
    """What bootstrap.open_server composes for this face: the engine with its users, and how to end it."""

    engine: Any
    auth: Auth

    async def drain(self, grace: float) -> None: ...

    async def close(self) -> None: ...


async def serve(config: Config, served: Served, ready: Callable[[str], None] | None = None) -> None:
    """Serve `served` (bootstrap.open_server) over gRPC until SIGTERM, then drain and close it."""
    engine, auth = served.engine, served.auth
    dispatcher = config.get("server", "distributed_execution")
    credentials = server_credentials(config)
    public = PublicCalls(PublicLimits(config.get("server", "public_calls_at_once"),
                                      config.get("server", "public_calls_per_address")))
    server = grpc.aio.server(interceptors=[AccessInterceptor(UserGate(auth), audit=engine.audit, public=public)],
                             options=[("grpc.max_receive_message_length",
                                       config.get("server", "grpc_max_recv_msg_size")),
                                      ("grpc.max_send_message_length", MAX_MESSAGE),
                                      # a stream's window stays small until its request is read: a call
                                      # refused unread costs tens of KiB, not the MiBs a grown window holds
                                      ("grpc.http2.bdp_probe", 0),
                                      ("grpc.so_reuseport", 0)])
    names = []
    for servicer, add, name in SERVICES:
        add(servicer(engine, credentials is not None), server)
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
        await served.close()
        raise Unavailable(f"cannot listen on {address}: is another server using that port?") from None
    await server.start()
    for name in ["", *names]:
        await set_health(health_servicer, name, health_pb2.HealthCheckResponse.SERVING)
    tls = ("on, clients need a certificate" if config.get("server", "client_cert_auth") else "on") if credentials \
        else "off"
    log.info("serving gRPC on %s (TLS %s), store %s, cluster %s, runs %s", address, tls,
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
        await set_health(health_servicer, name, health_pb2.HealthCheckResponse.NOT_SERVING)
    await served.drain(SHUTDOWN_GRACE)
    await served.close()  # what is still running ends as interrupted
    await server.stop(5)
    log.info("stopped")



