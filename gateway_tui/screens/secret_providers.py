"""Secret providers, in the Secrets section: the external secrets managers that hold aliases' values (admins)."""

from __future__ import annotations

from typing import Any, Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Select

from gateway_daemon.core import InvalidArgument
from gateway_daemon.core.resources.secret_providers import AUTH_METHODS, PROVIDER_TYPES, SecretProvider

from ..formatting import when
from ..widgets.form import FormField
from ..widgets.resource_table import Column, TableRow
from .details import DetailsScreen
from .executables import SYSTEM_ACTIONS
from .form import FormScreen, split_words
from .resource_list import ResourceListScreen, list_bindings

# The text fields of the form, in order: (field, label, placeholder, help)
_TEXT_FIELDS = (
    ("url", "URL", "https://vault.example.com:8200", "vault, cyberark: the provider's address"),
    ("secrets_endpoint", "Mount", "secret", "vault: the KV v2 mount (--secrets-endpoint)"),
    ("token_file", "Token file", "/etc/gateway/vault-token", "vault token auth: a file on the gateway host"),
    ("role_id", "Role id", "", "vault approle"),
    ("secret_id_file", "Secret id file", "/etc/gateway/secret-id", "vault approle: a file on the gateway host"),
    ("app_id", "App id", "", "cyberark: the application id"),
    ("certificate_file", "Client cert", "/etc/gateway/ccp.crt", "cyberark: mutual TLS certificate file"),
    ("private_key_file", "Client key", "/etc/gateway/ccp.key", "cyberark: its private key file"),
    ("ca_file", "CA file", "", "the CA of the provider's certificate (empty: the system's)"),
    ("command", "Command", "/usr/local/bin/fetch-secret", "plugin: run as COMMAND get, in the runs' sandbox"),
)


def where(provider: Any) -> str:
    return provider.url or provider.command


def auth(provider: Any) -> str:
    return provider.auth_method or ("mutual TLS" if provider.type == "cyberark" else "—")


class SecretProvidersScreen(ResourceListScreen):
    """Opened from the Secrets list (p); escape goes back to it."""

    SECTION = "secrets"
    KIND, NOUN, PLURAL = "secret-provider", "secret provider", "secret providers"
    ROLE_ACTIONS = SYSTEM_ACTIONS
    COLUMNS = [
        Column("name", "Name", min_width=8, max_width=24),
        Column("type", "Type", min_width=6, max_width=8),
        Column("where", "Where", min_width=12, max_width=44),
        Column("auth", "Auth", min_width=6, max_width=10),
        Column("description", "Description", min_width=0, max_width=60, grow=True),
    ]
    EMPTY = ("No secret providers yet.\n\nA provider is a secrets manager (Vault, CyberArk CCP or a plugin) whose "
             "secrets aliases name; its credentials are files on the gateway host. Admins add them: press "
             "[b]n[/b]. Press [b]escape[/b] to go back to the secrets.")
    BINDINGS = [*list_bindings("secret provider"),
                Binding("escape", "back", "Secrets", tooltip="Back to the secrets")]

    def rows(self, resources: list[Any]) -> Iterable[TableRow]:
        for p in resources:
            yield TableRow(p.name, (p.name, p.type, where(p), auth(p),
                                    p.description.splitlines()[0] if p.description else ""),
                           (None, "accent", None, "muted", "muted"))

    def key_escape(self) -> None:
        field = self.query_one("#filter", Input)
        if field.value or field.has_focus:
            super().key_escape()
        else:
            self.dismiss()

    def action_back(self) -> None:
        self.key_escape()

    def form(self, resource: Any | None) -> "SecretProviderFormScreen":
        return SecretProviderFormScreen(resource)

    def details(self, resource: Any) -> "SecretProviderDetailsScreen":
        return SecretProviderDetailsScreen(resource.name)


class SecretProviderFormScreen(FormScreen):
    SECTION = "secrets"
    NOUN = "secret provider"

    def fields(self) -> ComposeResult:
        p: SecretProvider = self.resource or SecretProvider(name="", type="vault", auth_method="token")
        yield FormField("name", "Name", Input(p.name, id="name", placeholder="vault", compact=True,
                                              disabled=self.editing), "letters, digits, - _ . (1-64)",
                        required=True)
        yield FormField("type", "Type", Select([(t, t) for t in PROVIDER_TYPES], value=p.type, id="type",
                                               allow_blank=False, compact=True, disabled=self.editing),
                        "vault (or OpenBao), cyberark (CCP) or plugin", required=True)
        yield FormField("auth_method", "Auth method", Select([(m, m) for m in AUTH_METHODS], value=p.auth_method
                                                             or Select.BLANK, id="auth_method", compact=True),
                        "vault: token or approle")
        for field, label, placeholder, help_text in _TEXT_FIELDS:
            yield FormField(field, label, Input(getattr(p, field), id=field, placeholder=placeholder, compact=True),
                            help_text)
        yield FormField("env", "Env", Input(" ".join(f"{k}={v}" for k, v in p.env.items()), id="env",
                                            compact=True), "plugin: KEY=VALUE pairs handed to it, by spaces")
        yield FormField("description", "Description", Input(p.description, id="description", compact=True))

    def collect(self) -> dict[str, Any]:
        values: dict[str, Any] = {field: self.query_one(f"#{field}", Input).value.strip()
                                  for field, *_ in _TEXT_FIELDS}
        values["name"] = self.query_one("#name", Input).value.strip()
        values["type"] = self.query_one("#type", Select).value
        method = self.query_one("#auth_method", Select).value
        values["auth_method"] = method if isinstance(method, str) and values["type"] == "vault" else ""
        env: dict[str, str] = {}
        for pair in split_words(self.query_one("#env", Input).value):
            key, sep, value = pair.partition("=")
            if not sep or not key:
                self.fail("env", f"{pair!r} is not KEY=VALUE")
            env[key] = value
        values["env"] = env
        values["description"] = self.query_one("#description", Input).value
        if not values["name"]:
            self.fail("name", "a name is required")
        if not self.errors:
            try:
                SecretProvider(**values).validate()
            except InvalidArgument as exc:
                self.fail_with(exc)
        return values

    async def save(self, values: dict[str, Any]) -> str:
        if self.editing:
            await self.gateway.update("secret-provider", self.resource.name,
                                      {k: v for k, v in values.items() if k not in ("name", "type")})
            return self.resource.name
        return (await self.gateway.create(SecretProvider(**values))).name


class SecretProviderDetailsScreen(DetailsScreen):
    SECTION = "secrets"
    KIND, NOUN = "secret-provider", "secret provider"
    ROLE_ACTIONS = SYSTEM_ACTIONS

    def pairs(self, p: Any) -> Iterable[tuple[str, Any]]:
        app: Any = self.app
        shown = [("type", p.type), ("auth", auth(p))]
        shown += [(label.lower(), getattr(p, field)) for field, label, *_ in _TEXT_FIELDS if getattr(p, field)]
        if p.env:
            shown.append(("env", [f"{k}={v}" for k, v in p.env.items()]))
        return [*shown, ("credentials", "read from these files on the gateway host at each fetch; never stored"),
                ("description", p.description), ("created", when(p.created_at, app.tz)),
                ("updated", when(p.updated_at, app.tz))]

    def form(self) -> SecretProviderFormScreen:
        return SecretProviderFormScreen(self.resource)
