"""Client mode as the TUI sees it: which server, who is logged in, and a Gateway for that login.

The app receives a `ServerConnection`; it never learns that gRPC is behind it.
`KeyringConnection` is the real one: the API key lives in the keyring (see
credentials.py) under the server's address, so each server, and so each
`[client:NAME]` profile, has its own login.  `SessionGateway` is the Gateway
the screens hold in client mode: it forwards to the server's gateway of the
current login, and tells the app when any call comes back UNAUTHENTICATED
(the key expired or was revoked), so the app can ask for a login again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Protocol, TypeVar

from gateway_daemon.core import Unauthenticated
from gateway_daemon.core.api import Gateway, Identity, Login, UserInfo

from .credentials import Credential, Credentials

if TYPE_CHECKING:
    from gateway_daemon.config import Config
    from gateway_daemon.core.engine import EngineInfo
    from gateway_daemon.core.resources import Resource
    from gateway_daemon.core.runners import RunnerInfo
    from gateway_daemon.core.runs import OutputLine, Run, RunEvent
    from gateway_daemon.core.secrets import Secret
    from gateway_daemon.core.services import SecretRef
    from gateway_daemon.core.transfer import ImportReport

T = TypeVar("T")
CONFIGURED_KEY_USER = "API key from [client] api_key"  # who the header shows: the key names no user here

@dataclass(frozen=True)
class ServerLogin:
    username: str
    expires_at: float
    admin: bool | None = None  # None: not known (a key kept from an earlier session)


class ServerConnection(Protocol):
    """One server (a profile of the config) and its login."""

    profile: str | None  # None: the [client] section itself
    address: str  # host:port, the name the key is kept under
    use_tls: bool

    def profiles(self) -> list[str]:
        """The [client:NAME] profiles of the config."""
        ...

    def for_profile(self, profile: str | None) -> "ServerConnection": ...

    def stored(self) -> ServerLogin | None:
        """The login kept for this server, when its key has not expired."""
        ...

    async def login(self, username: str, password: str, new_password: str = "") -> ServerLogin:
        """Log in (setting `new_password` when given) and keep the key; a GatewayError when refused."""
        ...

    def open(self) -> "Gateway":
        """A Gateway to this server that sends the kept key."""
        ...

    def forget(self) -> None:
        """Drop the kept key (the server refused it)."""
        ...


class KeyringConnection:
    """A server from the config, its key in the OS keyring (or the 0600 file where there is none)."""

    def __init__(self, config: "Config", profile: str | None = None, announce: Callable[[str], None] | None = None):
        from gateway_daemon.bootstrap import client_endpoint

        self.config = config
        self.profile = profile or None
        endpoint = client_endpoint(config, self.profile)
        self.address = endpoint.address
        self.use_tls = endpoint.use_tls
        self._announce = announce
        self.credentials = Credentials(announce)
        # [client] api_key (or the profile's): used instead of a login, until the server refuses it.
        self.configured_key = config.client(self.profile).api_key

    def profiles(self) -> list[str]:
        return sorted(self.config.profiles)

    def for_profile(self, profile: str | None) -> "KeyringConnection":
        return KeyringConnection(self.config, profile, self._announce)

    def stored(self) -> ServerLogin | None:
        if self.configured_key:
            return ServerLogin(CONFIGURED_KEY_USER, float("inf"))
        credential = self.credentials.load(self.address)
        if credential is None or credential.expired:
            return None
        return ServerLogin(credential.username, credential.expires_at)

    async def login(self, username: str, password: str, new_password: str = "") -> ServerLogin:
        from gateway_daemon.bootstrap import remote_gateway

        gateway = remote_gateway(self.config, self.profile)
        try:
            login = await gateway.login(username, password, new_password)
        finally:
            await gateway.close()
        self.credentials.save(self.address, Credential(login.api_key, login.username, login.expires_at))
        self.configured_key = ""  # a login made here is what this session uses
        return ServerLogin(login.username, login.expires_at, login.admin)

    def open(self) -> "Gateway":
        from gateway_daemon.bootstrap import remote_gateway

        if self.configured_key:
            return remote_gateway(self.config, self.profile, self.configured_key)
        credential = self.credentials.load(self.address)
        return remote_gateway(self.config, self.profile, credential.api_key if credential else None)

    def forget(self) -> None:
        if self.configured_key:
            self.configured_key = ""  # refused: a login from now on
            return
        self.credentials.delete(self.address)


class SessionGateway(Gateway):
    """The Gateway of the current login, swapped on each new one; UNAUTHENTICATED goes to `on_unauthenticated`.

    The error is raised as usual afterwards, so the screen that made the call
    stops what it was doing; the app shows the Login screen over it.
    """

    def __init__(self, on_unauthenticated: Callable[[Unauthenticated], None]):
        self.target: Gateway | None = None
        self.retired: list[Gateway] = []  # earlier logins' gateways: a run may still stream through one
        self._on_unauthenticated = on_unauthenticated

    def swap(self, gateway: Gateway | None) -> None:
        """The gateway of a new login (None: nobody is logged in; every call says so)."""
        if self.target is not None:
            self.retired.append(self.target)
        self.target = gateway

    def _target(self) -> Gateway:
        if self.target is None:
            raise Unauthenticated("not logged in")
        return self.target

    def _refused(self, target: Gateway, error: Unauthenticated) -> None:
        if self.target is target:  # not a call from before the latest login
            self._on_unauthenticated(error)

    async def _call(self, call: Callable[[Gateway], Awaitable[T]]) -> T:
        target = self._target()
        try:
            return await call(target)
        except Unauthenticated as exc:
            self._refused(target, exc)
            raise

    def _stream(self, call: Callable[[Gateway], AsyncIterator[T]]) -> AsyncIterator[T]:
        target = self._target()  # no login: said at the call, as for the others

        async def stream() -> AsyncIterator[T]:
            try:
                async for item in call(target):
                    yield item
            except Unauthenticated as exc:
                self._refused(target, exc)
                raise

        return stream()

    async def info(self) -> "EngineInfo":
        return await self._call(lambda g: g.info())

    async def create(self, resource: "Resource") -> "Resource":
        return await self._call(lambda g: g.create(resource))

    async def get(self, kind: str, name: str) -> "Resource":
        return await self._call(lambda g: g.get(kind, name))

    async def list(self, kind: str, full: bool = False) -> list["Resource"]:
        return await self._call(lambda g: g.list(kind, full=True) if full else g.list(kind))

    async def update(self, kind: str, name: str, changes: dict[str, Any]) -> "Resource":
        return await self._call(lambda g: g.update(kind, name, changes))

    async def delete(self, kind: str, name: str) -> None:
        await self._call(lambda g: g.delete(kind, name))

    def watch(self, kind: str) -> AsyncIterator[tuple[str, str]]:
        return self._stream(lambda g: g.watch(kind))

    async def create_secret(self, name: str, value: str, description: str = "",
                            tags: list[str] | tuple[str, ...] = ()) -> "Secret":
        return await self._call(lambda g: g.create_secret(name, value, description, tags))

    async def update_secret(self, name: str, value: str | None = None, description: str | None = None,
                            tags: list[str] | tuple[str, ...] | None = None) -> "Secret":
        return await self._call(lambda g: g.update_secret(name, value, description, tags))

    async def reveal_secret(self, name: str) -> str:
        return await self._call(lambda g: g.reveal_secret(name))

    async def export_db(self) -> dict[str, Any]:
        return await self._call(lambda g: g.export_db())

    async def import_db(self, document: Any, dry_run: bool = False, strict: bool = False) -> "ImportReport":
        return await self._call(lambda g: g.import_db(document, dry_run, strict))

    def run_service(self, name: str, inputs: dict[str, Any] | None = None, secrets: list["SecretRef"] | None = None,
                    timeout: int | None = None, options: dict[str, Any] | None = None, *, action: str = "",
                    state: str | None = None, state_out: bool = False) -> AsyncIterator["RunEvent"]:
        return self._stream(lambda g: g.run_service(name, inputs, secrets, timeout, options=options, action=action,
                                                    state=state, state_out=state_out))

    async def service_state(self, name: str) -> Any:
        return await self._call(lambda g: g.service_state(name))

    async def cancel_run(self, run_id: str) -> "Run":
        return await self._call(lambda g: g.cancel_run(run_id))

    async def get_run(self, run_id: str) -> "Run":
        return await self._call(lambda g: g.get_run(run_id))

    async def list_runs(self, service: str | None = None, status: str | None = None, limit: int = 100,
                        runner: str | None = None) -> list["Run"]:
        return await self._call(lambda g: g.list_runs(service, status, limit, runner))

    async def run_output(self, run_id: str) -> list["OutputLine"]:
        return await self._call(lambda g: g.run_output(run_id))

    async def delete_run(self, run_id: str) -> None:
        await self._call(lambda g: g.delete_run(run_id))

    async def prune_runs(self, before: str, service: str = "") -> int:
        return await self._call(lambda g: g.prune_runs(before, service))

    def follow_run(self, run_id: str) -> AsyncIterator["RunEvent"]:
        return self._stream(lambda g: g.follow_run(run_id))

    async def list_runners(self) -> list["RunnerInfo"]:
        return await self._call(lambda g: g.list_runners())

    async def whoami(self) -> Identity:
        return await self._call(lambda g: g.whoami())

    async def login(self, username: str, password: str, new_password: str = "") -> Login:
        return await self._call(lambda g: g.login(username, password, new_password))

    async def change_password(self, username: str, password: str, new_password: str) -> None:
        await self._call(lambda g: g.change_password(username, password, new_password))

    async def logout(self) -> None:
        await self._call(lambda g: g.logout())

    async def list_users(self) -> list[UserInfo]:
        return await self._call(lambda g: g.list_users())

    async def get_user(self, name: str) -> UserInfo:
        return await self._call(lambda g: g.get_user(name))

    async def create_user(self, name: str, password: str, admin: bool = False, temporary: bool = False,
                          role: str = "", scope: tuple[str, ...] = ()) -> UserInfo:
        return await self._call(lambda g: g.create_user(name, password, admin, temporary, role, scope))

    async def update_user(self, name: str, admin: bool | None = None, password: str | None = None,
                          role: str | None = None, scope: tuple[str, ...] | None = None,
                          unlock: bool = False) -> UserInfo:
        return await self._call(lambda g: g.update_user(name, admin, password, role, scope, unlock))

    async def delete_user(self, name: str) -> None:
        await self._call(lambda g: g.delete_user(name))

    async def list_audit(self, user: str = "", action: str = "", since: str = "", limit: int = 0) -> list[Any]:
        return await self._call(lambda g: g.list_audit(user, action, since, limit))

    async def list_apikeys(self) -> list[Any]:
        return await self._call(lambda g: g.list_apikeys())

    async def delete_apikey(self, key_id: str) -> None:
        await self._call(lambda g: g.delete_apikey(key_id))

    async def close(self) -> None:
        """Closes every login's gateway, the current one and those a run may still have streamed through."""
        for gateway in [*self.retired, *([self.target] if self.target is not None else [])]:
            try:
                await gateway.close()
            except Exception:  # noqa: BLE001 - leaving: a channel that will not close is no news
                pass
        self.retired.clear()
        self.target = None
