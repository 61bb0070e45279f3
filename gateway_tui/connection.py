"""Client mode as the TUI sees it: which server, who is logged in, and a Gateway for that login.

The app receives a `ServerConnection`; it never learns that gRPC is behind it.
`KeyringConnection` is the real one: the API key lives in the keyring (see
credentials.py) under the server's address, so each server, and so each
`[client:NAME]` profile, has its own login.  The Gateway the screens hold in
client mode is the server's gateway of the current login, opened with a hook
that tells the app when a call comes back UNAUTHENTICATED (the key expired or
was revoked), so the app can ask for a login again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

from gateway_daemon.core import Unauthenticated
from gateway_daemon.core.api import Gateway

from .credentials import Credential, Credentials

if TYPE_CHECKING:
    from gateway_daemon.config import Config

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

    def open(self, on_unauthenticated: Callable[[Unauthenticated], None] | None = None) -> "Gateway":
        """A Gateway to this server that sends the kept key; `on_unauthenticated` is told when the server
        refuses that key (before the call raises the error as usual)."""
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

    def open(self, on_unauthenticated: Callable[[Unauthenticated], None] | None = None) -> "Gateway":
        from gateway_daemon.bootstrap import remote_gateway

        if self.configured_key:
            return remote_gateway(self.config, self.profile, self.configured_key, on_unauthenticated)
        credential = self.credentials.load(self.address)
        return remote_gateway(self.config, self.profile, credential.api_key if credential else None,
                              on_unauthenticated)

    def forget(self) -> None:
        if self.configured_key:
            self.configured_key = ""  # refused: a login from now on
            return
        self.credentials.delete(self.address)
