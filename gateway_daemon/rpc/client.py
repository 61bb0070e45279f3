"""RemoteGateway: the Gateway interface over gRPC, for client mode.

The TUI and the `gateway` verbs use it exactly as they use the in-process
Engine; gRPC status codes come back as the same domain errors.  With several
``[client] host`` entries, a server that cannot be reached is skipped for the
next one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, AsyncIterator

import grpc
from google.protobuf import field_mask_pb2

from ..core.engine import EngineInfo
from ..core.errors import GatewayError
from ..core.runs import OutputLine, Run, RunEvent
from ..core.transfer import ImportReport
from . import convert
from .errors import error_from_rpc
from .gen import (auth_pb2, auth_pb2_grpc, common_pb2, common_pb2_grpc, decorators_pb2, decorators_pb2_grpc,
                  repositories_pb2, repositories_pb2_grpc, runner_pb2_grpc, runs_pb2, runs_pb2_grpc, secrets_pb2, secrets_pb2_grpc,
                  services_pb2, services_pb2_grpc, users_pb2, users_pb2_grpc)

CALL_TIMEOUT = 30.0
KINDS = {  # kind -> (stub attribute, Singular, Plural, update request class, field in it)
    "repository": ("repositories", "Repository", "Repositories", repositories_pb2.UpdateRepositoryRequest, "repository"),
    "decorator": ("decorators", "Decorator", "Decorators", decorators_pb2.UpdateDecoratorRequest, "decorator"),
    "service": ("services", "Service", "Services", services_pb2.UpdateServiceRequest, "service"),
}


@dataclass(frozen=True)
class Endpoint:
    targets: tuple[str, ...]  # host:port, tried in order
    use_tls: bool
    ca_file: str = ""

    @property
    def address(self) -> str:
        """The name the key is kept under in the keyring: the first server."""
        return self.targets[0]

    @classmethod
    def from_config(cls, config, profile: str | None = None) -> "Endpoint":
        client = config.client(profile)
        hosts = client.host if isinstance(client.host, (list, tuple)) else [client.host]
        targets = tuple(h if h.count(":") == 1 else f"{h}:{client.port}" for h in hosts)
        ca = client.certificate_file or config.get("application", "ca_certificate_file") or ""
        return cls(targets, client.use_tls, str(ca) if ca else "")

    def channel(self, target: str) -> grpc.aio.Channel:
        options = [("grpc.max_receive_message_length", 32 * 1024 * 1024), ("grpc.enable_retries", 0)]
        if not self.use_tls:
            return grpc.aio.insecure_channel(target, options=options)
        root = None
        if self.ca_file:
            with open(self.ca_file, "rb") as handle:
                root = handle.read()
        return grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=root), options=options)


class Stubs:
    def __init__(self, channel: grpc.aio.Channel):
        self.channel = channel
        self.repositories = repositories_pb2_grpc.RepositoryServiceStub(channel)
        self.decorators = decorators_pb2_grpc.DecoratorServiceStub(channel)
        self.services = services_pb2_grpc.ServiceServiceStub(channel)
        self.secrets = secrets_pb2_grpc.SecretServiceStub(channel)
        self.runs = runs_pb2_grpc.RunServiceStub(channel)
        self.info = common_pb2_grpc.InfoServiceStub(channel)
        self.auth = auth_pb2_grpc.AuthServiceStub(channel)
        self.users = users_pb2_grpc.UserServiceStub(channel)
        self.runners = runner_pb2_grpc.RunnerServiceStub(channel)


class Connection:
    """Channels to the endpoint's hosts, tried in order; the one that answered is kept."""

    def __init__(self, endpoint: Endpoint, api_key: str | None = None):
        self.endpoint = endpoint
        self.api_key = api_key
        self._index = 0
        self._stubs: Stubs | None = None

    @property
    def where(self) -> str:
        return self.endpoint.targets[self._index]

    def stubs(self) -> Stubs:
        if self._stubs is None:
            self._stubs = Stubs(self.endpoint.channel(self.endpoint.targets[self._index]))
        return self._stubs

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.api_key}"),) if self.api_key else ()

    async def _next_host(self) -> bool:
        if self._index + 1 >= len(self.endpoint.targets):
            return False
        await self.close()
        self._index += 1
        return True

    async def unary(self, call: str, request, timeout: float = CALL_TIMEOUT):
        group, method = call.split(".")
        while True:
            try:
                return await getattr(getattr(self.stubs(), group), method)(
                    request, metadata=self.metadata(), timeout=timeout)
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.UNAVAILABLE and await self._next_host():
                    continue
                raise error_from_rpc(exc, self.where) from None

    async def stream(self, call: str, request) -> AsyncIterator[Any]:
        group, method = call.split(".")
        started = False
        while True:
            try:
                async for item in getattr(getattr(self.stubs(), group), method)(request, metadata=self.metadata()):
                    started = True
                    yield item
                return
            except grpc.RpcError as exc:
                if not started and exc.code() == grpc.StatusCode.UNAVAILABLE and await self._next_host():
                    continue
                raise error_from_rpc(exc, self.where) from None

    async def close(self) -> None:
        if self._stubs is not None:
            await self._stubs.channel.close()
            self._stubs = None


class RemoteGateway:
    """core.api.Gateway over gRPC."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self._info: common_pb2.Info | None = None

    async def info(self) -> EngineInfo:
        reply = await self.connection.unary("info.GetInfo", common_pb2.Empty())
        self._info = reply
        return EngineInfo(mode="client", data_dir=f"{self.connection.where} ({reply.mode})", store=reply.store,
                          cluster_id=reply.cluster_id)

    async def whoami(self) -> auth_pb2.WhoAmIReply:
        return await self.connection.unary("auth.WhoAmI", common_pb2.Empty())

    # ------------------------------------------------------------ resources
    async def create(self, resource):
        if resource.KIND == "secret":
            raise GatewayError("secrets are created with create_secret")
        group, singular, _, _, _ = KINDS[resource.KIND]
        reply = await self.connection.unary(f"{group}.Create{singular}", convert.resource_message(resource))
        return convert.resource_from_message(resource.KIND, reply)

    async def get(self, kind: str, name: str):
        group, singular = ("secrets", "Secret") if kind == "secret" else KINDS[kind][:2]
        reply = await self.connection.unary(f"{group}.Get{singular}", common_pb2.NameRequest(name=name))
        return convert.resource_from_message(kind, reply)

    async def list(self, kind: str) -> list:
        group, plural = ("secrets", "Secrets") if kind == "secret" else (KINDS[kind][0], KINDS[kind][2])
        reply = await self.connection.unary(f"{group}.List{plural}", common_pb2.Empty())
        return [convert.resource_from_message(kind, item) for item in reply.items]

    async def update(self, kind: str, name: str, changes: dict[str, Any]):
        if kind == "secret":
            return await self.update_secret(name, description=changes.get("description"))
        group, singular, _, request_class, field = KINDS[kind]
        current = await self.get(kind, name)
        for key, value in changes.items():
            setattr(current, key, value)
        message = convert.resource_message(current)
        paths = ["schema_json" if key == "schema" else key for key in changes]
        request = request_class(**{field: message}, update_mask=field_mask_pb2.FieldMask(paths=paths))
        reply = await self.connection.unary(f"{group}.Update{singular}", request)
        return convert.resource_from_message(kind, reply)

    async def delete(self, kind: str, name: str) -> None:
        group, singular = ("secrets", "Secret") if kind == "secret" else KINDS[kind][:2]
        await self.connection.unary(f"{group}.Delete{singular}", common_pb2.NameRequest(name=name))

    async def watch(self, kind: str) -> AsyncIterator[tuple[str, str]]:
        async for change in self.connection.stream("info.Watch", common_pb2.WatchRequest(kind=kind)):
            yield change.action, change.name

    # ------------------------------------------------------------ secrets
    async def create_secret(self, name: str, value: str, description: str = ""):
        reply = await self.connection.unary("secrets.CreateSecret", secrets_pb2.CreateSecretRequest(
            name=name, value=value, description=description))
        return convert.resource_from_message("secret", reply)

    async def update_secret(self, name: str, value: str | None = None, description: str | None = None):
        request = secrets_pb2.UpdateSecretRequest(name=name)
        if value is not None:
            request.value = value
        if description is not None:
            request.description = description
        return convert.resource_from_message("secret", await self.connection.unary("secrets.UpdateSecret", request))

    async def reveal_secret(self, name: str) -> str:
        reply = await self.connection.unary("secrets.RevealSecret", common_pb2.NameRequest(name=name))
        return reply.value

    # ------------------------------------------------------------ database
    async def export_db(self) -> dict[str, Any]:
        reply = await self.connection.unary("info.ExportDb", common_pb2.ExportRequest(), timeout=300)
        return json.loads(reply.document_json)

    async def import_db(self, document: Any, dry_run: bool = False, strict: bool = False) -> ImportReport:
        reply = await self.connection.unary("info.ImportDb", common_pb2.ImportRequest(
            document_json=json.dumps(document), dry_run=dry_run, strict=strict), timeout=300)
        return RemoteImportReport(list(reply.lines), list(reply.warnings), reply.dry_run)

    # ------------------------------------------------------------ runs
    async def run_service(self, name: str, inputs: dict[str, Any] | None = None, secrets=None,
                          timeout: int | None = None, started_by: str | None = None) -> AsyncIterator[RunEvent]:
        request = runs_pb2.RunServiceRequest(
            name=name, inputs_json=json.dumps(inputs or {}),
            secrets=[services_pb2.SecretRef(name=s.name, type=s.type, target=s.target) for s in secrets or []])
        if timeout is not None:
            request.timeout = timeout
        async for message in self.connection.stream("runs.RunService", request):
            yield convert.event_from_message(message)

    async def cancel_run(self, run_id: str) -> Run:
        return convert.run_from_message(await self.connection.unary("runs.CancelRun", runs_pb2.RunIdRequest(id=run_id)))

    async def get_run(self, run_id: str) -> Run:
        return convert.run_from_message(await self.connection.unary("runs.GetRun", runs_pb2.RunIdRequest(id=run_id)))

    async def list_runs(self, service: str | None = None, status: str | None = None, limit: int = 100,
                        runner: str | None = None) -> list[Run]:
        reply = await self.connection.unary("runs.ListRuns", runs_pb2.ListRunsRequest(
            service=service or "", status=status or "", limit=limit, runner=runner or ""))
        return [convert.run_from_message(item) for item in reply.items]

    async def run_output(self, run_id: str) -> list[OutputLine]:
        reply = await self.connection.unary("runs.GetRunOutput", runs_pb2.RunIdRequest(id=run_id))
        return [OutputLine(line.stream, line.text) for line in reply.lines]

    async def follow_run(self, run_id: str) -> AsyncIterator[RunEvent]:
        async for message in self.connection.stream("runs.FollowRun", runs_pb2.RunIdRequest(id=run_id)):
            yield convert.event_from_message(message)

    async def list_runners(self) -> list:
        reply = await self.connection.unary("runners.ListRunners", common_pb2.Empty())
        return [convert.runner_from_message(item) for item in reply.items]

    # ------------------------------------------------------------ users (admins only)
    async def create_user(self, name: str, password: str, admin: bool = False):
        return await self.connection.unary("users.CreateUser", users_pb2.CreateUserRequest(
            name=name, password=password, admin=admin))

    async def list_users(self):
        return list((await self.connection.unary("users.ListUsers", common_pb2.Empty())).items)

    async def update_user(self, name: str, admin: bool | None = None, password: str | None = None):
        request = users_pb2.UpdateUserRequest(name=name)
        if admin is not None:
            request.admin = admin
        if password is not None:
            request.password = password
        return await self.connection.unary("users.UpdateUser", request)

    async def delete_user(self, name: str) -> None:
        await self.connection.unary("users.DeleteUser", common_pb2.NameRequest(name=name))

    async def close(self) -> None:
        await self.connection.close()


@dataclass
class RemoteImportReport:
    """The server's import report, as lines (the same shape the CLI prints locally)."""

    _lines: list[str]
    warnings: list[str]
    dry_run: bool

    def lines(self, with_warnings: bool = True) -> list[str]:
        return [*self._lines, *(self.warnings if with_warnings else [])]


async def login(endpoint: Endpoint, username: str, password: str, new_password: str = "") -> auth_pb2.LoginReply:
    connection = Connection(endpoint)
    try:
        return await connection.unary("auth.Login", auth_pb2.LoginRequest(
            username=username, password=password, new_password=new_password))
    finally:
        await connection.close()

