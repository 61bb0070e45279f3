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

import inspect
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, Any, Callable, Protocol

from gateway_daemon.core import Unauthenticated

from .credentials import Credential, Credentials

if TYPE_CHECKING:
    from gateway_daemon.config import Config
    from gateway_daemon.core import Gateway


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
        from gateway_daemon.rpc.client import Endpoint

        self.config = config
        self.profile = profile or None
        self.endpoint = Endpoint.from_config(config, self.profile)
        self.address = self.endpoint.address
        self.use_tls = self.endpoint.use_tls
        self._announce = announce
        self.credentials = Credentials(announce)

    def profiles(self) -> list[str]:
        return sorted(self.config.profiles)

    def for_profile(self, profile: str | None) -> "KeyringConnection":
        return KeyringConnection(self.config, profile, self._announce)

    def stored(self) -> ServerLogin | None:
        credential = self.credentials.load(self.address)
        if credential is None or credential.expired:
            return None
        return ServerLogin(credential.username, credential.expires_at)

    async def login(self, username: str, password: str, new_password: str = "") -> ServerLogin:
        from gateway_daemon.rpc.client import login

        reply = await login(self.endpoint, username, password, new_password)
        self.credentials.save(self.address, Credential(reply.api_key, reply.username, reply.expires_at))
        return ServerLogin(reply.username, reply.expires_at, reply.admin)

    def open(self) -> "Gateway":
        from gateway_daemon.rpc.client import Connection, RemoteGateway

        credential = self.credentials.load(self.address)
        return RemoteGateway(Connection(self.endpoint, credential.api_key if credential else None))

    def forget(self) -> None:
        self.credentials.delete(self.address)


class SessionGateway:
    """The Gateway of the current login, swapped on each new one; UNAUTHENTICATED goes to `on_unauthenticated`.

    The error is raised as usual afterwards, so the screen that made the call
    stops what it was doing; the app shows the Login screen over it.
    """

    def __init__(self, on_unauthenticated: Callable[[Unauthenticated], None]):
        self.target: Any = None
        self.retired: list[Any] = []  # earlier logins' gateways: a run may still stream through one
        self._on_unauthenticated = on_unauthenticated

    def swap(self, gateway: Any) -> None:
        if self.target is not None:
            self.retired.append(self.target)
        self.target = gateway

    def _target(self) -> Any:
        if self.target is None:
            raise Unauthenticated("not logged in")
        return self.target

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        target = self._target()
        attribute = getattr(target, name)
        if inspect.isasyncgenfunction(attribute):
            @wraps(attribute)
            async def stream(*args: Any, **kwargs: Any) -> Any:
                try:
                    async for item in attribute(*args, **kwargs):
                        yield item
                except Unauthenticated as exc:
                    if self.target is target:  # not a call from before the latest login
                        self._on_unauthenticated(exc)
                    raise

            return stream
        if inspect.iscoroutinefunction(attribute):
            @wraps(attribute)
            async def call(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await attribute(*args, **kwargs)
                except Unauthenticated as exc:
                    if self.target is target:  # not a call from before the latest login
                        self._on_unauthenticated(exc)
                    raise

            return call
        return attribute

    async def close(self) -> None:
        for gateway in [*self.retired, *([self.target] if self.target is not None else [])]:
            try:
                await gateway.close()
            except Exception:  # noqa: BLE001 - leaving: a channel that will not close is no news
                pass
        self.retired.clear()
        self.target = None
