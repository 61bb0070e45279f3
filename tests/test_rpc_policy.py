"""The gRPC layer's gate and error mapper, over real loopback gRPC: the method -> access table covers every method,
unauthenticated and non-admin callers are refused, garbage request bytes get INVALID_ARGUMENT with one log line,
and an InvalidArgument's fields cross the wire as google.rpc.BadRequest details and come back as the same fields.

Most tests talk to a real `gateway-daemon` (the `daemon` fixture); the mapper's own cases use a grpc.aio server
started here with the real interceptor, in front of servicers that raise what the case needs."""

from __future__ import annotations

import contextlib
import logging
import random
import time

import grpc
import pytest
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from gateway_daemon.core.access.auth import Auth
from gateway_daemon.core.errors import InvalidArgument, NotFound
from gateway_daemon.core.resources.services import Service
from gateway_daemon.rpc import convert, errors
from gateway_daemon.rpc.gen import (audit_pb2, auth_pb2, auth_pb2_grpc, common_pb2, decorators_pb2, executables_pb2, registries_pb2,
                                    repositories_pb2, repositories_pb2_grpc, runner_pb2, runs_pb2, runs_pb2_grpc,
                                    secrets_pb2, services_pb2, services_pb2_grpc, users_pb2, users_pb2_grpc)
from gateway_daemon.rpc.interceptor import AccessInterceptor, UserGate
from gateway_daemon.rpc.policy import POLICY, PUBLIC, READ, USERS, WRITE
from gateway_daemon.core.access.users import ServerUsers
from gateway_daemon.rpc.server import SERVICES, AuthServicer
from gateway_daemon.store import StoreUnavailable
from gateway_daemon.store.memory import MemoryStore

from gateway_server import ADMIN_PASSWORD
from gitutil import new_repo

PROTO_MODULES = (audit_pb2, auth_pb2, common_pb2, decorators_pb2, repositories_pb2, runner_pb2, runs_pb2, secrets_pb2,
                 services_pb2, users_pb2, registries_pb2, executables_pb2)
FOREIGN = (health_pb2.DESCRIPTOR.services_by_name["Health"],
           reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"])


def _methods(services) -> dict[str, object]:
    return {f"/{service.full_name}/{method.name}": method for service in services for method in service.methods}


PROTO_METHODS = _methods(s for m in PROTO_MODULES for s in m.DESCRIPTOR.services_by_name.values())
SERVED = _methods([*(next(s for m in PROTO_MODULES for s in m.DESCRIPTOR.services_by_name.values()
                          if s.full_name == f"gateway.v1.{name}") for _, _, name in SERVICES), *FOREIGN])


# ---------------------------------------------------------------- the table
def test_the_table_names_every_method_of_every_service_and_nothing_else():
    assert set(PROTO_METHODS) | set(_methods(FOREIGN)) == set(POLICY)
    assert "/gateway.v1.ExecutionService/Execute" in PROTO_METHODS  # the runner's API is in protos/ too
    assert POLICY["/gateway.v1.AuthService/Login"] is PUBLIC
    assert POLICY["/gateway.v1.UserService/CreateUser"] is USERS
    assert POLICY["/gateway.v1.RepositoryService/CreateRepository"] is WRITE
    assert POLICY["/gateway.v1.RepositoryService/GetRepository"] is READ


def test_servicers_are_written_out_with_the_names_the_protos_give():
    for servicer, _, name in SERVICES:
        service = next(s for m in PROTO_MODULES for s in m.DESCRIPTOR.services_by_name.values()
                       if s.full_name == f"gateway.v1.{name}")
        for method in service.methods:
            assert method.name in vars(servicer), f"{servicer.__name__} does not write out {method.name}"


# ---------------------------------------------------------------- against a real gateway-daemon
@pytest.fixture(scope="module")
def channel(daemon, certs):
    credentials = grpc.ssl_channel_credentials(root_certificates=certs["ca"].read_bytes())
    with grpc.secure_channel(f"127.0.0.1:{daemon.port}", credentials) as channel:
        yield channel


@pytest.fixture(scope="module")
def keys(daemon, channel) -> dict[str, str]:
    """API keys of the admin and of a user who is no admin."""
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    admin = auth.Login(auth_pb2.LoginRequest(username="admin", password=daemon.admin_password,
                                             new_password=ADMIN_PASSWORD)).api_key
    users_pb2_grpc.UserServiceStub(channel).CreateUser(
        users_pb2.CreateUserRequest(name="dana", password="dana-password-1"), metadata=_bearer(admin))
    dana = auth.Login(auth_pb2.LoginRequest(username="dana", password="dana-password-1")).api_key
    return {"admin": admin, "user": dana}


def _bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


def _raw(channel: grpc.Channel, method: str, payload: bytes, metadata=()) -> None:
    """Call `method` with these bytes as its request, whatever its shape (no serializer: the bytes go as they are)."""
    shape = SERVED[method]
    if shape.client_streaming:
        list(channel.stream_stream(method)(iter([payload]), metadata=metadata, timeout=10))
    elif shape.server_streaming:
        list(channel.unary_stream(method)(payload, metadata=metadata, timeout=10))
    else:
        channel.unary_unary(method)(payload, metadata=metadata, timeout=10)


def _refusal(channel, method: str, payload: bytes, metadata=()) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        _raw(channel, method, payload, metadata)
    return error.value


def test_calls_without_a_valid_key_are_refused(channel, keys):
    closed = [m for m in SERVED if POLICY[m] is not PUBLIC]
    assert len(closed) > 30
    for method in closed:
        error = _refusal(channel, method, b"")
        assert (error.code(), error.details()) == (grpc.StatusCode.UNAUTHENTICATED,
                                                   "not logged in: run gateway login"), method
        error = _refusal(channel, method, b"", _bearer("not-a-key"))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, method
        assert error.details() == "the API key is not valid (revoked or unknown): run gateway login"


def test_a_user_who_is_no_admin_is_refused_user_management(channel, keys):
    admin_methods = [m for m in SERVED if POLICY[m] is USERS]
    assert {m.rsplit("/", 1)[1] for m in admin_methods} == {"CreateUser", "ListUsers", "GetUser", "UpdateUser",
                                                             "DeleteUser"}
    for method in admin_methods:
        error = _refusal(channel, method, b"", _bearer(keys["user"]))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, method
        assert error.details() == "dana is not an admin: user management needs an admin"
    me = auth_pb2_grpc.AuthServiceStub(channel).WhoAmI(common_pb2.Empty(), metadata=_bearer(keys["user"]))
    assert (me.username, me.admin) == ("dana", False)
    listed = users_pb2_grpc.UserServiceStub(channel).ListUsers(common_pb2.Empty(), metadata=_bearer(keys["admin"]))
    assert {u.name for u in listed.items} == {"admin", "dana"}


def test_a_method_nobody_serves_is_refused(channel, keys):
    for metadata in ((), _bearer(keys["admin"])):
        with pytest.raises(grpc.RpcError) as error:
            channel.unary_unary("/gateway.v1.RepositoryService/DropEverything")(b"", metadata=metadata, timeout=10)
        assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_garbage_request_bytes_get_invalid_argument_and_one_log_line_for_every_method(daemon, channel, keys):
    rng = random.Random(10)
    # 0x0f is field 1 with wire type 7, which does not exist: whatever follows, no message type parses it.
    payloads = [b"\xff" * 16, b"\x0f" + rng.randbytes(64)]
    offset = len(daemon.log.read_text())
    calls = 0
    for method in SERVED:
        for payload in payloads:
            error = _refusal(channel, method, payload, _bearer(keys["admin"]))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, error.code(), error.details())
            assert error.details().startswith(f"malformed request to {method}: "), error.details()
            calls += 1
    # The admin's key still works (Logout's garbage did not reach Logout), and the log has one line per call.
    auth_pb2_grpc.AuthServiceStub(channel).WhoAmI(common_pb2.Empty(), metadata=_bearer(keys["admin"]))
    time.sleep(0.2)
    written = daemon.log.read_text()[offset:]
    assert "Traceback" not in written
    malformed = [line for line in written.splitlines() if "malformed request" in line]
    assert len(malformed) == calls == 2 * len(SERVED)
    assert len(written.splitlines()) == calls


def test_an_update_mask_naming_only_the_changed_fields_changes_only_those(channel, keys, tmp_path):
    metadata = _bearer(keys["admin"])
    origin = tmp_path / "origin"
    new_repo(origin, {"main.py": "print('hi')\n"})
    repositories = repositories_pb2_grpc.RepositoryServiceStub(channel)
    repositories.CreateRepository(repositories_pb2.Repository(name="masked", url=str(origin), reference="main",
                                                              description="before"), metadata=metadata)
    services = services_pb2_grpc.ServiceServiceStub(channel)
    try:
        services.CreateService(convert.resource_message(Service(
            name="masked-hello", type="python-script", repository="masked", filename="main.py", description="before",
            tags=["a"])), metadata=metadata)
        changed = repositories.UpdateRepository(repositories_pb2.UpdateRepositoryRequest(
            repository=repositories_pb2.Repository(name="masked", description="after"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"])), metadata=metadata)
        assert (changed.description, changed.url, changed.reference) == ("after", str(origin), "main")
        changed = services.UpdateService(services_pb2.UpdateServiceRequest(
            service=services_pb2.Service(name="masked-hello", tags=["b", "c"]),
            update_mask=field_mask_pb2.FieldMask(paths=["tags"])), metadata=metadata)
        assert (list(changed.tags), changed.description, changed.repository, changed.filename) == (
            ["b", "c"], "before", "masked", "main.py")
        with pytest.raises(grpc.RpcError) as error:
            services.UpdateService(services_pb2.UpdateServiceRequest(
                service=services_pb2.Service(name="masked-hello"),
                update_mask=field_mask_pb2.FieldMask(paths=["colour"])), metadata=metadata)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.value.details().startswith("service has no editable field colour; editable: ")
    finally:
        with contextlib.suppress(grpc.RpcError):
            services.DeleteService(common_pb2.NameRequest(name="masked-hello"), metadata=metadata)
        repositories.DeleteRepository(common_pb2.NameRequest(name="masked"), metadata=metadata)


# ---------------------------------------------------------------- the error mapper, through the real interceptor
FIELDS = {"url": "the url is empty", "inputs.count": "must be at least 1: got 0"}


class Raising(auth_pb2_grpc.AuthServiceServicer):
    """Login raises what the username names."""

    async def Login(self, request, context):
        if request.username == "fields":
            raise InvalidArgument("the request has 2 invalid fields", FIELDS)
        if request.username == "plain":
            raise InvalidArgument("the password is too short")
        if request.username == "missing":
            raise NotFound("user 'missing' not found")
        if request.username == "store":
            raise StoreUnavailable("etcd at 127.0.0.1:1 is unreachable")
        raise RuntimeError("a bug with a secret in its message")


class StreamRaising(runs_pb2_grpc.RunServiceServicer):
    async def RunService(self, request, context):
        yield runs_pb2.RunEvent(kind="output", lines=[runs_pb2.OutputLine(stream="stdout", text="first")])
        raise InvalidArgument("input count is not valid", {"inputs.count": "must be at least 1: got 0"})


@pytest.fixture
async def served():
    """A grpc.aio server on loopback with the real interceptor; yields (channel, auth)."""
    auth = Auth(MemoryStore("test"))
    table = {**POLICY, "/gateway.v1.RunService/RunService": PUBLIC}
    del table["/gateway.v1.AuthService/WhoAmI"]  # a method the table forgot
    server = grpc.aio.server(interceptors=[AccessInterceptor(UserGate(auth), table)])
    auth_pb2_grpc.add_AuthServiceServicer_to_server(Raising(), server)
    runs_pb2_grpc.add_RunServiceServicer_to_server(StreamRaising(), server)
    real = grpc.aio.server(interceptors=[AccessInterceptor(UserGate(auth), table)])
    auth_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(ServerUsers(auth, None), False), real)
    ports = [server.add_insecure_port("127.0.0.1:0"), real.add_insecure_port("127.0.0.1:0")]
    await server.start()
    await real.start()
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for port in ports]
    try:
        yield channels[0], channels[1], auth
    finally:
        for channel in channels:
            await channel.close()
        await server.stop(None)
        await real.stop(None)


async def _login_error(channel, username: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await auth_pb2_grpc.AuthServiceStub(channel).Login(auth_pb2.LoginRequest(username=username))
    return error.value


async def test_field_messages_cross_the_wire_and_come_back_as_the_same_invalid_argument(served):
    channel = served[0]
    error = await _login_error(channel, "fields")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    back = errors.error_from_rpc(error, "127.0.0.1")
    assert type(back) is InvalidArgument
    assert (str(back), back.fields) == ("the request has 2 invalid fields", FIELDS)
    plain = errors.error_from_rpc(await _login_error(channel, "plain"), "127.0.0.1")
    assert (type(plain), str(plain), plain.fields) == (InvalidArgument, "the password is too short", {})
    call = runs_pb2_grpc.RunServiceStub(channel).RunService(runs_pb2.RunServiceRequest(name="x"))
    seen = []
    with pytest.raises(grpc.aio.AioRpcError) as streamed:
        async for event in call:
            seen.append(event.lines[0].text)
    assert seen == ["first"]
    back = errors.error_from_rpc(streamed.value, "127.0.0.1")
    assert (type(back), back.fields) == (InvalidArgument, {"inputs.count": "must be at least 1: got 0"})


async def test_domain_errors_keep_their_status_and_anything_else_is_internal_and_logged_once(served, caplog):
    channel = served[0]
    error = await _login_error(channel, "missing")
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, "user 'missing' not found")
    assert type(errors.error_from_rpc(error, "here")) is NotFound
    error = await _login_error(channel, "store")
    assert (error.code(), error.details()) == (grpc.StatusCode.UNAVAILABLE, "etcd at 127.0.0.1:1 is unreachable")
    with caplog.at_level(logging.ERROR, logger="gateway.rpc"):
        error = await _login_error(channel, "bug")
    assert (error.code(), error.details()) == (grpc.StatusCode.INTERNAL,
                                               "internal error in the gateway server; see its log")
    assert "secret" not in error.details() and not errors._fields(error)
    records = [r for r in caplog.records if r.name == "gateway.rpc"]
    assert len(records) == 1 and records[0].exc_info and "/gateway.v1.AuthService/Login" in records[0].getMessage()


async def test_a_method_missing_from_the_table_is_refused_and_said_once(served, caplog):
    _, channel, auth = served
    await auth.create_user("erin", "erin-password-1")
    stub = auth_pb2_grpc.AuthServiceStub(channel)
    key = (await stub.Login(auth_pb2.LoginRequest(username="erin", password="erin-password-1"))).api_key
    with caplog.at_level(logging.ERROR, logger="gateway.rpc"):
        for _ in range(2):
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await stub.WhoAmI(common_pb2.Empty(), metadata=_bearer(key))
            assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert error.value.details() == "/gateway.v1.AuthService/WhoAmI is open to no one"
    assert len([r for r in caplog.records if "no line in the access policy table" in r.getMessage()]) == 1
    await stub.Logout(common_pb2.Empty(), metadata=_bearer(key))  # a listed method of the same service still works
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Logout(common_pb2.Empty(), metadata=_bearer(key))
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
