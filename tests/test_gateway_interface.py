"""The Gateway interface in its two forms: the in-process Engine (local mode), and RemoteGateway against a real
`gateway-daemon` over TLS on loopback with the TUI's re-login hook on its connection. Every call returns domain
types; local mode refuses users and logins with one line; an update carries only what changes."""

from __future__ import annotations

import asyncio
import getpass
import json
from pathlib import Path

import pytest

from gateway_daemon.bootstrap import open_engine
from gateway_daemon.config import load_config
from gateway_daemon.core import (AlreadyExists, Engine, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied,
                                 Repository, SecretRef, Service, Unauthenticated)
from gateway_daemon.core.api import Gateway, Identity, Login, UserInfo
from gateway_daemon.core.resources.decorators import Decorator
from gateway_daemon.rpc import convert
from gateway_daemon.rpc.client import Connection, Endpoint, RemoteGateway

from gateway_server import ADMIN_PASSWORD

NO_USERS = "user management needs a server: in local mode there are no users (set mode = client and log in)"
NO_LOGIN = "login is for client mode (this configuration is mode = local); local mode needs no login"


def local_engine(data_dir: Path):
    config = load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(data_dir),
                                        "GATEWAY_STORE_BACKEND": "memory"})
    return open_engine(config, announce=lambda _text: None)


def interface_methods() -> list[str]:
    return sorted(name for name in vars(Gateway) if not name.startswith("_"))


@pytest.mark.parametrize("implementation", [Engine, RemoteGateway], ids=lambda c: c.__name__)
def test_each_implementation_writes_out_every_method_of_the_interface(implementation):
    assert len(interface_methods()) >= 29
    missing = [name for name in interface_methods() if name not in vars(implementation)]
    assert missing == []


# ---------------------------------------------------------------- local mode
def test_local_mode_has_no_users_and_no_login_and_says_so(tmp_path):
    async def scenario() -> None:
        engine = local_engine(tmp_path)
        try:
            me = await engine.whoami()
            assert me == Identity(username=getpass.getuser(), admin=True, expires_at=0)
            for call in (engine.list_users(), engine.get_user("bob"), engine.create_user("bob", "password-1"),
                         engine.update_user("bob", admin=True), engine.delete_user("bob")):
                with pytest.raises(FailedPrecondition) as refused:
                    await call
                assert str(refused.value) == NO_USERS
            for call in (engine.login("admin", "x"), engine.change_password("admin", "x", "y"), engine.logout()):
                with pytest.raises(FailedPrecondition) as refused:
                    await call
                assert str(refused.value) == NO_LOGIN
        finally:
            await engine.close()

    asyncio.run(scenario())


# ---------------------------------------------------------------- conversions
def test_an_update_message_carries_the_name_and_the_changed_fields_only():
    message, paths = convert.changes_message("service", "hello", {
        "description": "says hello", "timeout": None, "secrets": [SecretRef(name="tok", type="env", target="TOKEN")],
        "env": {"A": "1"}})
    assert paths == ["description", "timeout", "secrets", "env"]
    assert sorted(field.name for field, _ in message.ListFields()) == ["description", "env", "name", "secrets"]
    assert not message.HasField("timeout") and message.name == "hello"
    assert [(s.name, s.type, s.target) for s in message.secrets] == [("tok", "env", "TOKEN")]

    message, paths = convert.changes_message("decorator", "form", {"schema": {"type": "object"}})
    assert paths == ["schema_json"] and json.loads(message.schema_json) == {"type": "object"}
    assert sorted(field.name for field, _ in message.ListFields()) == ["name", "schema_json"]


def test_an_unknown_kind_is_refused_before_any_call():
    async def scenario() -> None:
        gateway = RemoteGateway(Connection(Endpoint(("127.0.0.1:1",), use_tls=False)))
        for call in (gateway.get("user", "x"), gateway.list("users"), gateway.delete("run", "x"),
                     gateway.update("runner", "x", {"tags": []})):
            with pytest.raises(InvalidArgument, match="unknown kind"):
                await call
        await gateway.close()

    asyncio.run(scenario())


# ---------------------------------------------------------------- against a real server
@pytest.fixture(scope="module")
def endpoint(daemon, certs) -> Endpoint:
    return Endpoint((f"127.0.0.1:{daemon.port}",), True, str(certs["ca"]))


@pytest.fixture(scope="module")
def admin_key(daemon, endpoint) -> str:
    """The admin's first login, changing the temporary password; the gateway keeps the key it got."""
    async def first_login() -> str:
        gateway = RemoteGateway(Connection(endpoint))
        try:
            with pytest.raises(FailedPrecondition, match="temporary"):
                await gateway.login("admin", daemon.admin_password)
            with pytest.raises(Unauthenticated):
                await gateway.whoami()  # no key yet
            login = await gateway.login("admin", daemon.admin_password, ADMIN_PASSWORD)
            assert isinstance(login, Login) and (login.username, login.admin) == ("admin", True)
            me = await gateway.whoami()  # with the key of the login
            assert me == Identity("admin", True, login.expires_at)
            return login.api_key
        finally:
            await gateway.close()

    return asyncio.run(first_login())


def test_users_come_back_as_user_info(endpoint, admin_key):
    async def scenario() -> None:
        gateway = RemoteGateway(Connection(endpoint, admin_key))
        try:
            carol = await gateway.create_user("carol", "carol-password-1")
            assert isinstance(carol, UserInfo) and (carol.name, carol.admin) == ("carol", False)
            with pytest.raises(AlreadyExists):
                await gateway.create_user("carol", "carol-password-1")
            users = await gateway.list_users()
            assert all(isinstance(u, UserInfo) for u in users) and {"admin", "carol"} <= {u.name for u in users}
            assert (await gateway.update_user("carol", admin=True)).admin is True
            assert (await gateway.get_user("carol")).admin is True
            assert (await gateway.update_user("carol", password="carol-password-2")).admin is True  # admin kept

            carol_gateway = RemoteGateway(Connection(endpoint))
            try:
                await carol_gateway.change_password("carol", "carol-password-2", "carol-password-3")
                await carol_gateway.login("carol", "carol-password-3")
                assert (await carol_gateway.whoami()).username == "carol"
                with pytest.raises(FailedPrecondition, match="your own admin rights"):
                    await carol_gateway.update_user("carol", admin=False)
                assert (await gateway.update_user("carol", admin=False)).admin is False
                with pytest.raises(PermissionDenied):
                    await carol_gateway.list_users()
                await carol_gateway.logout()
                with pytest.raises(Unauthenticated):
                    await carol_gateway.whoami()  # logged out: no key sent any more
            finally:
                await carol_gateway.close()

            await gateway.delete_user("carol")
            with pytest.raises(NotFound):
                await gateway.get_user("carol")
        finally:
            await gateway.close()

    asyncio.run(scenario())


def test_an_update_changes_the_named_fields_and_keeps_the_others(endpoint, admin_key):
    async def scenario() -> None:
        gateway = RemoteGateway(Connection(endpoint, admin_key))
        try:
            await gateway.create(Repository(name="apps", url="https://git.example.com/apps.git", tags=["a"]))
            await gateway.create(Decorator(name="form", schema={"type": "object"}, description="first"))
            await gateway.create(Service(name="hello", type="python-script", repository="apps",
                                         filename="main.py", description="first", timeout=60, tags=["t"]))
            service = await gateway.update("service", "hello", {"description": "second", "timeout": None})
            assert (service.description, service.timeout, service.tags, service.filename) == (
                "second", None, ["t"], "main.py")
            service = await gateway.update("service", "hello", {"decorator": "form", "env": {"A": "1"}})
            assert (service.decorator, service.env, service.description) == ("form", {"A": "1"}, "second")
            decorator = await gateway.update("decorator", "form", {"schema": {"type": "object", "required": []}})
            assert decorator.schema == {"type": "object", "required": []} and decorator.description == "first"
            repository = await gateway.update("repository", "apps", {"reference": "main"})
            assert (repository.reference, repository.url, repository.tags) == (
                "main", "https://git.example.com/apps.git", ["a"])
            assert await gateway.get("service", "hello") == service
            with pytest.raises(NotFound, match="service 'nobody' not found"):
                await gateway.update("service", "nobody", {"description": "x"})
        finally:
            await gateway.close()

    asyncio.run(scenario())


# ---------------------------------------------------------------- the TUI's re-login hook
def test_a_refused_key_is_told_to_the_hook_once_per_current_key(endpoint, admin_key):
    """The terminal UI holds the server's gateway of the current login, opened with a hook: a call (or a stream)
    whose key the server refuses tells the hook before raising as usual; a call made with a key since replaced
    is not news; calls without a key (a login) never are."""
    refused: list[Unauthenticated] = []

    async def scenario() -> None:
        good = RemoteGateway(Connection(endpoint, admin_key, refused.append))
        bad = RemoteGateway(Connection(endpoint, "not-a-key", refused.append))
        try:
            assert isinstance(await good.whoami(), Identity)
            with pytest.raises(NotFound):
                await good.get("service", "nobody")
            assert refused == []
            with pytest.raises(Unauthenticated):
                await bad.list("service")
            with pytest.raises(Unauthenticated):
                async for _ in bad.watch("service"):
                    pass
            assert len(refused) == 2
            stale = asyncio.ensure_future(bad.list("service"))
            await asyncio.sleep(0)  # sent, with "not-a-key"
            bad.connection.api_key = "a-later-key"  # a new login while that call is under way
            with pytest.raises(Unauthenticated):
                await stale
            assert len(refused) == 2  # refused a key since replaced: no news
            with pytest.raises(Unauthenticated):
                await bad.list("service")
            assert len(refused) == 3  # the current key refused
            with pytest.raises(Unauthenticated):
                await bad.login("admin", "wrong password")
            assert len(refused) == 3  # a login sends no key
        finally:
            await good.close()
            await bad.close()

    asyncio.run(scenario())
