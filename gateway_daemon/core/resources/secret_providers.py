"""Secret providers: external secrets managers (HashiCorp Vault or OpenBao, CyberArk CCP, a plugin) that hold
the values of secret aliases.

A provider is a resource (`secret-providers/<name>`): where the manager is and which files on the gateway host
hold the credentials to reach it; never a credential itself.  An alias is a secret (core.secrets) that names a
provider, a path there and optionally a key; its value is fetched when a run is prepared (on the server) through
the ProviderClient port that bootstrap hands the engine (execution.secret_providers implements it).  Text that
accepts a secret value may hold `$gateway_secret_(alias)` references, replaced by the value at that moment.

Each fetch is logged and audited with the alias, the provider and the outcome; never the value.  A failure is
one line naming the alias, the provider and the cause (ProviderError's text, which names no credential).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import re
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol
from urllib.parse import urlsplit

from ..errors import FailedPrecondition
from .base import ENV_NAME_RE, Resource, check_name, check_text, field_error, now
from .secrets import MAX_PATH

if TYPE_CHECKING:
    from ..access.audit import AuditTrail
    from .secrets import Secret

log = logging.getLogger("gateway.secrets")

PROVIDER_TYPES = ("vault", "cyberark", "plugin")
AUTH_METHODS = ("token", "approle")
REFERENCE_RE = re.compile(r"\$gateway_secret_\(([^()\s]{1,64})\)")
# What each type needs and takes: (required fields, accepted fields); the rest must be empty.
_FIELDS = {
    ("vault", "token"): ({"url", "secrets_endpoint", "token_file"}, {"ca_file"}),
    ("vault", "approle"): ({"url", "secrets_endpoint", "role_id", "secret_id_file"}, {"ca_file"}),
    ("cyberark", ""): ({"url", "app_id", "certificate_file", "private_key_file"}, {"ca_file"}),
    ("plugin", ""): ({"command"}, {"env"}),
}
_FLAGS = {"url": "--url", "secrets_endpoint": "--secrets-endpoint", "token_file": "--token", "role_id": "--role-id",
          "secret_id_file": "--secret-id-file", "app_id": "--app-id", "certificate_file": "--certificate-file",
          "private_key_file": "--private-key-file", "ca_file": "--ca-file", "command": "--command", "env": "--env",
          "auth_method": "--auth-method"}
FILE_FIELDS = ("token_file", "secret_id_file", "certificate_file", "private_key_file", "ca_file", "command")


@dataclasses.dataclass
class SecretProvider(Resource):
    KIND = "secret-provider"
    PLURAL = "secret-providers"

    type: str = "vault"
    url: str = ""
    auth_method: str = ""  # vault: token or approle
    secrets_endpoint: str = ""  # vault: the KV v2 mount
    token_file: str = ""  # vault token auth: the file on the gateway host holding the token (read at each fetch)
    role_id: str = ""  # vault approle
    secret_id_file: str = ""  # vault approle: the file holding the secret id
    app_id: str = ""  # cyberark: the application id
    certificate_file: str = ""  # cyberark: the client certificate (mutual TLS)
    private_key_file: str = ""  # cyberark: its private key
    ca_file: str = ""  # the CA that signed the provider's certificate (empty: the system's)
    command: str = ""  # plugin: the program, run as `COMMAND get`
    env: dict[str, str] = dataclasses.field(default_factory=dict)  # plugin: handed to it in its request
    description: str = ""
    created_at: str = dataclasses.field(default_factory=now)
    updated_at: str = dataclasses.field(default_factory=now)

    def validate(self) -> None:
        super().validate()
        if self.type not in PROVIDER_TYPES:
            raise field_error("type", f"secret-provider type {self.type!r} is not valid; use one of "
                                      f"{', '.join(PROVIDER_TYPES)}")
        method = self.auth_method
        if self.type == "vault":
            if method not in AUTH_METHODS:
                raise field_error("auth_method", f"secret-provider {self.name}: a vault provider needs --auth-method "
                                                 f"{' or '.join(AUTH_METHODS)}")
        elif method:
            raise field_error("auth_method", f"secret-provider {self.name}: --auth-method is for vault providers")
        required, accepted = _FIELDS[(self.type, method if self.type == "vault" else "")]
        for field in ("url", "secrets_endpoint", "token_file", "role_id", "secret_id_file", "app_id",
                      "certificate_file", "private_key_file", "ca_file", "command"):
            value = getattr(self, field)
            if not isinstance(value, str) or any(ch in value for ch in "\x00\n\r"):
                raise field_error(field, f"secret-provider {self.name}: {_FLAGS[field]} must be one line of text")
            if len(value) > MAX_PATH:
                raise field_error(field, f"secret-provider {self.name}: {_FLAGS[field]} is longer than {MAX_PATH}")
            if field in required and not value:
                raise field_error(field, f"secret-provider {self.name}: a {self._what()} provider needs "
                                         f"{_FLAGS[field]}")
            if value and field not in required | accepted:
                raise field_error(field, f"secret-provider {self.name}: {_FLAGS[field]} is not for a "
                                         f"{self._what()} provider")
            if value and field in FILE_FIELDS and not value.startswith("/"):
                raise field_error(field, f"secret-provider {self.name}: {_FLAGS[field]} {value!r} must be an "
                                         "absolute path on the gateway host")
        if not isinstance(self.env, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                     for k, v in self.env.items()):
            raise field_error("env", f"secret-provider {self.name}: --env must be KEY=VALUE pairs")
        if self.env and "env" not in accepted:
            raise field_error("env", f"secret-provider {self.name}: --env is for plugin providers")
        for key in self.env:
            if not ENV_NAME_RE.fullmatch(key):
                raise field_error("env", f"secret-provider {self.name}: --env {key!r} is not a variable name")
        if self.url:
            check_provider_url(self.name, self.url, self.type)
        if self.secrets_endpoint and not re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*", self.secrets_endpoint):
            raise field_error("secrets_endpoint", f"secret-provider {self.name}: --secrets-endpoint "
                                                  f"{self.secrets_endpoint!r} is not a mount path such as secret")
        check_text("secret-provider", "description", self.description)

    def _what(self) -> str:
        return f"vault {self.auth_method}" if self.type == "vault" else self.type

    def references(self) -> list[tuple[str, str]]:
        return []

    @property
    def mount(self) -> str:
        """The KV v2 mount (IAG 5 writes it with /data at the end, which the API adds itself)."""
        mount = self.secrets_endpoint.strip("/")
        return mount[:-len("/data")] if mount.endswith("/data") else mount


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_provider_url(name: str, url: str, kind: str) -> None:
    """https (TLS 1.2 or later, verified); plain http only to this machine's loopback (a development server):
    anywhere else it would send the credentials unencrypted."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username or parts.password:
        raise field_error("url", f"secret-provider {name}: --url {url!r} is not an https:// URL without credentials")
    if parts.scheme == "http" and not (kind == "vault" and _loopback(parts.hostname)):
        raise field_error("url", f"secret-provider {name}: --url {url!r} would send credentials unencrypted; use "
                                 "https:// (plain http only to a vault on this machine's loopback)")


# ------------------------------------------------------------ references in text
def referenced_aliases(text: Any) -> list[str]:
    """The secrets `$gateway_secret_(name)` references in `text` name, in order, once each."""
    if not isinstance(text, str) or "$gateway_secret_(" not in text:
        return []
    return list(dict.fromkeys(REFERENCE_RE.findall(text)))


def texts_of(value: Any) -> list[str]:
    """Every piece of text in a value (strings in lists and dicts too)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in texts_of(v)]
    if isinstance(value, list):
        return [t for v in value for t in texts_of(v)]
    return []


async def substitute(value: Any, reveal: Callable[[str], Awaitable[str]], opened: dict[str, str]) -> Any:
    """`value` with each reference replaced by the secret's value (`reveal(name)`, once per name: `opened`
    keeps what was opened)."""
    if isinstance(value, str):
        names = referenced_aliases(value)
        if not names:
            return value
        for name in names:
            if name not in opened:
                check_name("secret", name, "reference")
                opened[name] = await reveal(name)
        return REFERENCE_RE.sub(lambda m: opened[m.group(1)], value)
    if isinstance(value, dict):
        return {k: await substitute(v, reveal, opened) for k, v in value.items()}
    if isinstance(value, list):
        return [await substitute(v, reveal, opened) for v in value]
    return value


# ------------------------------------------------------------ the port, and fetching through it
class ProviderError(Exception):
    """Why a provider did not give a value: one line that names no credential and no value."""


class ProviderClient(Protocol):
    """Fetches values from secret providers (execution.secret_providers.ProviderClients)."""

    async def fetch(self, provider: SecretProvider, path: str, key: str) -> str:
        """The value at `path` (its field `key`; empty: the only field there).  Raises ProviderError."""
        ...

    def guard(self, providers: list[SecretProvider]) -> None:
        """Keep the credential files these providers name from the runs of this machine."""
        ...

    async def close(self) -> None:
        ...


class ProviderSecrets:
    """The values of aliases: fetched through the client, kept `cache_seconds` (0: always fetched), each
    retrieval logged and audited with alias, provider and outcome."""

    def __init__(self, client: ProviderClient | None, cache_seconds: float = 0,
                 audit: "AuditTrail | None" = None):
        self.client = client
        self.cache_seconds = cache_seconds
        self.audit = audit
        self._cache: dict[tuple[str, str, str, str, str], tuple[float, str]] = {}

    async def fetch(self, alias: "Secret", provider: SecretProvider) -> str:
        where = f"secret {alias.name} (provider {provider.name}, {provider.type})"
        if self.client is None:
            raise FailedPrecondition(f"{where}: this process cannot reach secret providers")
        ident = (provider.name, provider.updated_at, alias.path, alias.key, alias.updated_at)
        if self.cache_seconds > 0:
            kept = self._cache.get(ident)
            if kept is not None and kept[0] > time.monotonic():
                await self._note(alias, provider, "ok", "from the cache")
                return kept[1]
        try:
            value = await self.client.fetch(provider, alias.path, alias.key)
        except ProviderError as exc:
            await self._note(alias, provider, "failed", str(exc))
            raise FailedPrecondition(f"{where}: {exc}") from None
        if not isinstance(value, str) or value == "":
            await self._note(alias, provider, "failed", "the value is empty")
            raise FailedPrecondition(f"{where}: the value is empty")
        if self.cache_seconds > 0:
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[ident] = (time.monotonic() + self.cache_seconds, value)
        await self._note(alias, provider, "ok", "fetched")
        return value

    def guard(self, providers: list[Any]) -> None:
        """Before a run is handed over: the credential files of every provider are kept from it."""
        if self.client is not None and providers:
            self.client.guard(providers)

    async def _note(self, alias: "Secret", provider: SecretProvider, outcome: str, detail: str) -> None:
        text = f"secret {alias.name} from provider {provider.name} ({provider.type}): {outcome}, {detail}"
        log.info("%s", text)  # a failure also reaches the caller as an error: one line there
        if self.audit is not None:
            await self.audit.record("secret-fetch", f"secret/{alias.name}", outcome,
                                    f"provider {provider.name}: {detail}")

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
