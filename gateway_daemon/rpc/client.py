"""RemoteGateway: the Gateway interface over gRPC, for client mode.

The TUI and the `gateway` verbs use it exactly as they use the in-process
Engine; gRPC status codes come back as the same domain errors.  With several
``[client] host`` entries, a server that cannot be reached is skipped for the
next one.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

import grpc
from google.protobuf import field_mask_pb2

from ..config import ConfigError
from ..core.api import ApiKeyInfo, Identity, Login, UserInfo
from ..core.access.audit import AuditEvent
from ..core.api import EngineInfo
from ..core.errors import GatewayError, InvalidArgument, Unauthenticated, Unavailable
from ..core.resources.base import Resource
from ..core.resources.runners import RunnerInfo
from ..core.runs.records import OutputLine, Run, RunEvent
from ..core.resources.secrets import Secret
from ..core.resources.services import SecretRef
from ..core.runs.tofu_state import StateSummary
from ..core.api import ImportReport
from . import convert
from .errors import error_from_rpc
from .gen import (audit_pb2, audit_pb2_grpc, auth_pb2, auth_pb2_grpc, common_pb2, common_pb2_grpc, decorators_pb2, decorators_pb2_grpc,
                  executables_pb2, executables_pb2_grpc, registries_pb2, registries_pb2_grpc,
                  repositories_pb2, repositories_pb2_grpc, runner_pb2_grpc, runs_pb2, runs_pb2_grpc, secrets_pb2,
                  secrets_pb2_grpc, services_pb2, services_pb2_grpc, users_pb2, users_pb2_grpc)

CALL_TIMEOUT = 30.0
# The update request of each kind that has one; its resource field is named as the kind.
UPDATE_REQUESTS = {
    "repository": repositories_pb2.UpdateRepositoryRequest,
    "decorator": decorators_pb2.UpdateDecoratorRequest,
    "service": services_pb2.UpdateServiceRequest,
    "registry": registries_pb2.UpdateRegistryRequest,
    "executable-object": executables_pb2.UpdateExecutableObjectRequest,
    "secret-provider": secrets_pb2.UpdateSecretProviderRequest,
}


@dataclass(frozen=True)
class Endpoint:
    targets: tuple[str, ...]  # host:port, tried in order
    use_tls: bool
    ca_file: str = ""  # the CA the server's certificate is checked against; "" is the system's
    cert_file: str = ""  # this client's own certificate and key (mutual TLS), as IAG 5's [client] names them
    key_file: str = ""
    extra_ca_file: str = ""  # [application] ca_certificate_file beside an old-style ca_file
    ca_setting: str = "[application] ca_certificate_file"  # where ca_file comes from, for messages

    @property
    def address(self) -> str:
        """The name the key is kept under in the keyring: the first server."""
        return self.targets[0]

    @classmethod
    def from_config(cls, config, profile: str | None = None) -> "Endpoint":
        """IAG 5's layout: the CA in [application] ca_certificate_file, the client's own certificate and key in
        [client] certificate_file and private_key_file.  A file in the layout before it, with the CA in
        [client] certificate_file (a CA certificate, or no private_key_file), is read as it was meant, with one
        warning naming the better setting."""
        client = config.client(profile)
        hosts = client.host if isinstance(client.host, (list, tuple)) else [client.host]
        targets = tuple(h if h.count(":") == 1 else f"{h}:{client.port}" for h in hosts)
        ca = str(config.get("application", "ca_certificate_file") or "")
        cert, key = str(client.certificate_file or ""), str(client.private_key_file or "")
        if key and not cert:
            raise ConfigError(f"[client] private_key_file = {key!r} is set without certificate_file: give both "
                              "(this client's certificate and its key) for mutual TLS, or neither")
        if cert and (not key or _is_ca_certificate(cert)):
            why = "is a CA certificate" if _is_ca_certificate(cert) else "is set without private_key_file"
            _warn_once(f"[client] certificate_file = {cert} {why}: it is read as the CA to trust, as before; in "
                       "IAG 5's layout the CA goes in [application] ca_certificate_file and [client] "
                       "certificate_file and private_key_file are this client's own certificate and key")
            return cls(targets, client.use_tls, cert, extra_ca_file=ca, ca_setting="[client] certificate_file")
        return cls(targets, client.use_tls, ca, cert, key)

    def channel(self, target: str) -> grpc.aio.Channel:
        options = [("grpc.max_receive_message_length", 32 * 1024 * 1024), ("grpc.enable_retries", 0)]
        if not self.use_tls:
            return grpc.aio.insecure_channel(target, options=options)
        root = b"".join(_read_pem(path, setting) for path, setting in (
            (self.ca_file, self.ca_setting), (self.extra_ca_file, "[application] ca_certificate_file")) if path)
        chain = _read_pem(self.cert_file, "[client] certificate_file") if self.cert_file else None
        key = _read_pem(self.key_file, "[client] private_key_file") if self.key_file else None
        credentials = grpc.ssl_channel_credentials(root_certificates=root or None, private_key=key,
                                                   certificate_chain=chain)
        return grpc.aio.secure_channel(target, credentials, options=options)


_WARNED: set[str] = set()


def _warn_once(text: str) -> None:
    """A warning about the configuration, said once however many connections this program makes."""
    if text not in _WARNED:
        _WARNED.add(text)
        print(f"gateway: warning: {text}", file=sys.stderr)


def _read_pem(path: str, setting: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(1024 * 1024)
    except FileNotFoundError:
        raise ConfigError(f"{setting} = {path!r}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{setting} = {path!r}: cannot read it: {exc.strerror or exc}") from None


def _asks_for_client_certificate(target: str) -> bool:
    """Whether the TLS server at host:port, reached without a client certificate, ends the connection as soon
    as the handshake is done, before a byte is asked of it: what a server that requires client certificates
    does (a TLS server that does not waits for the HTTP/2 preface).  Nothing is sent; its certificate is not
    what is checked here."""
    import socket
    import ssl

    host, _, port = target.rpartition(":")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname=host.strip("[]")) as tls:
                tls.settimeout(2)
                return tls.recv(1) == b""  # closed at once
    except ssl.SSLError as exc:
        text = f"{exc.reason} {exc}".upper()
        return "CERTIFICATE_REQUIRED" in text or "PEER_DID_NOT_RETURN_A_CERTIFICATE" in text
    except (OSError, ValueError):  # a timeout: the server waits for us, it wants nothing more
        return False


def _is_ca_certificate(path: str) -> bool:
    """Whether the first certificate of a PEM file says it is a CA (basic constraints CA:TRUE)."""
    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificate(_read_pem(path, "[client] certificate_file"))
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (ValueError, x509.ExtensionNotFound):
        return False


@dataclass(frozen=True)
class KindStubs:
    """One kind's resource calls on a channel. Secrets have no create or update here: those carry a value
    (create_secret, update_secret)."""

    get: Any
    list: Any
    delete: Any
    create: Any = None
    update: Any = None


class Stubs:
    """The generated stubs on one channel."""

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
        self.audit = audit_pb2_grpc.AuditServiceStub(channel)
        self.registries = registries_pb2_grpc.RegistryServiceStub(channel)
        self.executables = executables_pb2_grpc.ExecutableObjectServiceStub(channel)
        self.providers = secrets_pb2_grpc.SecretProviderServiceStub(channel)
        p = self.providers
        r, d, s, x = self.repositories, self.decorators, self.services, self.secrets
        g, e = self.registries, self.executables
        self.kinds = {
            "repository": KindStubs(r.GetRepository, r.ListRepositories, r.DeleteRepository, r.CreateRepository,
                                    r.UpdateRepository),
            "decorator": KindStubs(d.GetDecorator, d.ListDecorators, d.DeleteDecorator, d.CreateDecorator,
                                   d.UpdateDecorator),
            "service": KindStubs(s.GetService, s.ListServices, s.DeleteService, s.CreateService, s.UpdateService),
            "secret": KindStubs(x.GetSecret, x.ListSecrets, x.DeleteSecret),
            "registry": KindStubs(g.GetRegistry, g.ListRegistries, g.DeleteRegistry, g.CreateRegistry,
                                  g.UpdateRegistry),
            "executable-object": KindStubs(e.GetExecutableObject, e.ListExecutableObjects, e.DeleteExecutableObject,
                                           e.CreateExecutableObject, e.UpdateExecutableObject),
            "secret-provider": KindStubs(p.GetSecretProvider, p.ListSecretProviders, p.DeleteSecretProvider,
                                         p.CreateSecretProvider, p.UpdateSecretProvider),
        }


# Picks the stub method to call from the stubs of the channel in use: a call that fails over to the next host
# is made again on that host's channel.
Pick = Callable[[Stubs], Any]


class Connection:
    """Channels to the endpoint's hosts, tried in order; the one that answered is kept."""

    def __init__(self, endpoint: Endpoint, api_key: str | None = None,
                 on_unauthenticated: Callable[[Unauthenticated], None] | None = None):
        """`on_unauthenticated`: told when the server refuses the key this connection sends now (it expired or
        was revoked), before the error is raised as usual; a call made with an earlier key is not news."""
        self.endpoint = endpoint
        self.api_key = api_key
        self.on_unauthenticated = on_unauthenticated
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

    async def call(self, pick: Pick, request: Any, timeout: float = CALL_TIMEOUT, keyed: bool = True) -> Any:
        """A unary call with the key (unless not `keyed`) and a deadline; an unreachable host gives way to the
        next one, and a failure comes back as the domain error."""
        sent = self.api_key
        while True:
            try:
                return await pick(self.stubs())(request, metadata=self.metadata() if keyed else (), timeout=timeout)
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.UNAVAILABLE and await self._next_host():
                    continue
                raise self._refused(await self._error(exc), sent if keyed else None) from None

    async def stream(self, pick: Pick, request: Any) -> AsyncIterator[Any]:
        """A server stream; the next host is tried only when nothing came yet."""
        started = False
        sent = self.api_key
        while True:
            try:
                async for item in pick(self.stubs())(request, metadata=self.metadata()):
                    started = True
                    yield item
                return
            except grpc.RpcError as exc:
                if not started and exc.code() == grpc.StatusCode.UNAVAILABLE and await self._next_host():
                    continue
                raise self._refused(await self._error(exc), sent) from None

    def _refused(self, error: GatewayError, sent: str | None) -> GatewayError:
        """The error, after telling `on_unauthenticated` when it is the refusal of the key sent now."""
        if (isinstance(error, Unauthenticated) and self.on_unauthenticated is not None and sent
                and sent == self.api_key):
            self.on_unauthenticated(error)
        return error

    async def _error(self, exc: grpc.RpcError) -> GatewayError:
        """The domain error of a failed call; a TLS connection the server closed is looked at once more, to
        say so when it is because the server wants a client certificate this client does not have."""
        endpoint = self.endpoint
        details = (exc.details() if hasattr(exc, "details") else "") or ""
        if exc.code() == grpc.StatusCode.UNAVAILABLE and endpoint.use_tls and "Socket closed" in details:
            import asyncio

            if await asyncio.to_thread(_asks_for_client_certificate, self.where):
                if endpoint.cert_file:
                    return Unavailable(f"the gateway server at {self.where} does not accept this client's certificate "
                                       f"([client] certificate_file = {endpoint.cert_file}): it must be a client "
                                       "certificate signed by the CA the server trusts (its [application] "
                                       "ca_certificate_file)")
                return Unavailable(f"the gateway server at {self.where} requires a client certificate (mutual TLS) "
                                   "and this client has none: set [client] certificate_file and private_key_file to "
                                   "this client's certificate and key (gateway cert-gen makes them) and "
                                   "[application] ca_certificate_file to the CA")
        return error_from_rpc(exc, self.where)

    async def close(self) -> None:
        if self._stubs is not None:
            await self._stubs.channel.close()
            self._stubs = None


def _kind(kind: str) -> str:
    if kind not in UPDATE_REQUESTS and kind != "secret":
        raise InvalidArgument(f"unknown kind {kind!r}; kinds: {', '.join([*UPDATE_REQUESTS, 'secret'])}")
    return kind


class RemoteGateway:
    """core.api.Gateway over gRPC: the calls of core.api, made on the server; replies as domain objects."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self._call = connection.call
        self._stream = connection.stream

    async def info(self) -> EngineInfo:
        return convert.info_from_message(await self._call(lambda s: s.info.GetInfo, common_pb2.Empty()),
                                         self.connection.where)

    # ------------------------------------------------------------ resources
    async def create(self, resource: Resource) -> Resource:
        if resource.KIND == "secret":
            raise GatewayError("secrets are created with create_secret")
        kind = _kind(resource.KIND)
        reply = await self._call(lambda s: s.kinds[kind].create, convert.resource_message(resource))
        return convert.resource_from_message(kind, reply)

    async def get(self, kind: str, name: str) -> Resource:
        kind = _kind(kind)
        reply = await self._call(lambda s: s.kinds[kind].get, common_pb2.NameRequest(name=name))
        return convert.resource_from_message(kind, reply)

    async def list(self, kind: str, full: bool = False) -> list[Resource]:
        """Services come as summaries (what a table shows), unless `full`."""
        kind = _kind(kind)
        if kind == "service" and not full:
            return convert.services_from_summaries(
                await self._call(lambda s: s.services.ListServiceSummaries, common_pb2.Empty()))
        reply = await self._call(lambda s: s.kinds[kind].list, common_pb2.Empty())
        with convert.many_objects():
            return [convert.resource_from_message(kind, item) for item in reply.items]

    async def update(self, kind: str, name: str, changes: dict[str, Any]) -> Resource:
        """Sends the name, the changed fields and a mask naming them; the server changes only those."""
        if kind == "secret":
            return await self.update_secret(name, description=changes.get("description"), tags=changes.get("tags"))
        kind = _kind(kind)
        message, paths = convert.changes_message(kind, name, changes)
        request = UPDATE_REQUESTS[kind](**{kind.replace("-", "_"): message}, update_mask=field_mask_pb2.FieldMask(paths=paths))
        return convert.resource_from_message(kind, await self._call(lambda s: s.kinds[kind].update, request))

    async def delete(self, kind: str, name: str) -> None:
        kind = _kind(kind)
        await self._call(lambda s: s.kinds[kind].delete, common_pb2.NameRequest(name=name))

    async def watch(self, kind: str) -> AsyncIterator[tuple[str, str]]:
        async for change in self._stream(lambda s: s.info.Watch, common_pb2.WatchRequest(kind=kind)):
            yield change.action, change.name

    # ------------------------------------------------------------ secrets
    async def create_secret(self, name: str, value: str, description: str = "",
                            tags: list[str] | tuple[str, ...] = (), provider: str = "", path: str = "",
                            key: str = "") -> Secret:
        reply = await self._call(lambda s: s.secrets.CreateSecret, secrets_pb2.CreateSecretRequest(
            name=name, value=value, description=description, tags=list(tags), provider=provider, path=path, key=key))
        return convert.resource_from_message("secret", reply)

    async def update_secret(self, name: str, value: str | None = None, description: str | None = None,
                            tags: list[str] | tuple[str, ...] | None = None, provider: str | None = None,
                            path: str | None = None, key: str | None = None) -> Secret:
        request = secrets_pb2.UpdateSecretRequest(name=name, tags=list(tags or ()), set_tags=tags is not None)
        for field, given in (("provider", provider), ("path", path), ("key", key)):
            if given is not None:
                setattr(request, field, given)
        if value is not None:
            request.value = value
        if description is not None:
            request.description = description
        return convert.resource_from_message("secret", await self._call(lambda s: s.secrets.UpdateSecret, request))

    async def reveal_secret(self, name: str) -> str:
        reply = await self._call(lambda s: s.secrets.RevealSecret, common_pb2.NameRequest(name=name))
        return reply.value

    # ------------------------------------------------------------ database
    async def export_db(self) -> dict[str, Any]:
        reply = await self._call(lambda s: s.info.ExportDb, common_pb2.ExportRequest(), timeout=300)
        return json.loads(reply.document_json)

    async def import_db(self, document: Any, dry_run: bool = False, strict: bool = False) -> ImportReport:
        reply = await self._call(lambda s: s.info.ImportDb, common_pb2.ImportRequest(
            document_json=json.dumps(document), dry_run=dry_run, strict=strict), timeout=300)
        return RemoteImportReport(list(reply.lines), list(reply.warnings), reply.dry_run)  # type: ignore[return-value]

    async def read_repository_file(self, url: str, reference: str = "", path: str = "",
                                   private_key_name: str = "", defaults: tuple[str, ...] = ()) -> tuple[str, str]:
        reply = await self._call(lambda s: s.info.ReadRepositoryFile, common_pb2.RepositoryFileRequest(
            url=url, reference=reference, path=path, private_key_name=private_key_name, defaults=list(defaults)),
            timeout=300)
        return reply.path, reply.text

    # ------------------------------------------------------------ runs
    async def run_service(self, name: str, inputs: dict[str, Any] | None = None,
                          secrets: list[SecretRef] | None = None, timeout: int | None = None,
                          started_by: str | None = None,
                          options: dict[str, Any] | None = None, *, action: str = "", state: str | None = None,
                          state_out: bool = False) -> AsyncIterator[RunEvent]:
        request = convert.run_request(name, inputs, secrets, timeout, options, action, state, state_out)
        stream = convert.EventStream()
        async for message in self._stream(lambda s: s.runs.RunService, request):
            yield stream.event(message)

    async def service_state(self, name: str) -> StateSummary | None:
        reply = await self._call(lambda s: s.services.GetServiceState, common_pb2.NameRequest(name=name))
        return convert.state_from_message(reply)

    async def cancel_run(self, run_id: str) -> Run:
        return convert.run_from_message(await self._call(lambda s: s.runs.CancelRun, runs_pb2.RunIdRequest(id=run_id)))

    async def get_run(self, run_id: str) -> Run:
        return convert.run_from_message(await self._call(lambda s: s.runs.GetRun, runs_pb2.RunIdRequest(id=run_id)))

    async def list_runs(self, service: str | None = None, status: str | None = None, limit: int = 100,
                        runner: str | None = None) -> list[Run]:
        reply = await self._call(lambda s: s.runs.ListRuns, runs_pb2.ListRunsRequest(
            service=service or "", status=status or "", limit=limit, runner=runner or ""))
        return [convert.run_from_message(item) for item in reply.items]

    async def run_output(self, run_id: str) -> list[OutputLine]:
        reply = await self._call(lambda s: s.runs.GetRunOutput, runs_pb2.RunIdRequest(id=run_id))
        return convert.lines_from_message(reply)

    async def delete_run(self, run_id: str) -> None:
        await self._call(lambda s: s.runs.DeleteRun, runs_pb2.RunIdRequest(id=run_id))

    async def prune_runs(self, before: str, service: str = "") -> int:
        reply = await self._call(lambda s: s.runs.PruneRuns, runs_pb2.PruneRunsRequest(before=before, service=service))
        return reply.deleted

    async def follow_run(self, run_id: str) -> AsyncIterator[RunEvent]:
        stream = convert.EventStream()
        async for message in self._stream(lambda s: s.runs.FollowRun, runs_pb2.RunIdRequest(id=run_id)):
            yield stream.event(message)

    async def list_runners(self) -> list[RunnerInfo]:
        reply = await self._call(lambda s: s.runners.ListRunners, common_pb2.Empty())
        return [convert.runner_from_message(item) for item in reply.items]

    # ------------------------------------------------------------ who is calling, logins
    async def whoami(self) -> Identity:
        return convert.identity_from_message(await self._call(lambda s: s.auth.WhoAmI, common_pb2.Empty()))

    async def login(self, username: str, password: str, new_password: str = "") -> Login:
        """Logs in (sending no key); the key of the login is what this gateway sends from now on."""
        reply = await self._call(lambda s: s.auth.Login, auth_pb2.LoginRequest(
            username=username, password=password, new_password=new_password), keyed=False)
        login = convert.login_from_message(reply)
        self.connection.api_key = login.api_key
        return login

    async def change_password(self, username: str, password: str, new_password: str) -> None:
        await self._call(lambda s: s.auth.ChangePassword, auth_pb2.ChangePasswordRequest(
            username=username, password=password, new_password=new_password), keyed=False)

    async def logout(self) -> None:
        """Revokes the key this gateway sends, and sends none from now on."""
        await self._call(lambda s: s.auth.Logout, common_pb2.Empty())
        self.connection.api_key = None

    # ------------------------------------------------------------ users (admins only)
    async def list_users(self) -> list[UserInfo]:
        reply = await self._call(lambda s: s.users.ListUsers, common_pb2.Empty())
        return [convert.user_from_message(item) for item in reply.items]

    async def get_user(self, name: str) -> UserInfo:
        reply = await self._call(lambda s: s.users.GetUser, common_pb2.NameRequest(name=name))
        return convert.user_from_message(reply)

    async def create_user(self, name: str, password: str, admin: bool = False, temporary: bool = False,
                          role: str = "", scope: tuple[str, ...] = ()) -> UserInfo:
        reply = await self._call(lambda s: s.users.CreateUser, users_pb2.CreateUserRequest(
            name=name, password=password, admin=admin, temporary=temporary, role=role, scope=list(scope)))
        return convert.user_from_message(reply)

    async def update_user(self, name: str, admin: bool | None = None, password: str | None = None,
                          role: str | None = None, scope: tuple[str, ...] | None = None,
                          unlock: bool = False) -> UserInfo:
        reply = await self._call(lambda s: s.users.UpdateUser,
                                 convert.user_update_request(name, admin, password, role, scope, unlock))
        return convert.user_from_message(reply)

    async def delete_user(self, name: str) -> None:
        await self._call(lambda s: s.users.DeleteUser, common_pb2.NameRequest(name=name))

    # ---- the audit trail and API keys (issue 14)
    async def list_audit(self, user: str = "", action: str = "", since: str = "",
                         limit: int = 0) -> list[AuditEvent]:
        reply = await self._call(lambda s: s.audit.ListAudit, audit_pb2.ListAuditRequest(
            user=user, action=action, since=since, limit=limit))
        return [convert.audit_from_message(item) for item in reply.items]

    async def list_apikeys(self) -> list[ApiKeyInfo]:
        reply = await self._call(lambda s: s.auth.ListApiKeys, common_pb2.Empty())
        return [convert.apikey_from_message(item) for item in reply.items]

    async def delete_apikey(self, key_id: str) -> None:
        await self._call(lambda s: s.auth.DeleteApiKey, auth_pb2.ApiKeyRequest(id=key_id))
    # ---- end audit trail and API keys

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


async def login(endpoint: Endpoint, username: str, password: str, new_password: str = "") -> Login:
    """Log in to the endpoint's server once, with no gateway kept: the Login (its key) for the caller to keep."""
    gateway = RemoteGateway(Connection(endpoint))
    try:
        return await gateway.login(username, password, new_password)
    finally:
        await gateway.close()
