"""Registries: where services' dependencies come from (a PyPI index, an Ansible Galaxy server).

`default-pypi` and `default-galaxy` are built in (pip's and ansible-galaxy's own configuration): listed, shown,
never edited or deleted; a stored registry marked default takes over from the built-in one of its type.
"""

from __future__ import annotations

from typing import Any, Iterable

from textual.app import ComposeResult
from textual.widgets import Checkbox, Input, Select

from gateway_daemon.core import GatewayError, InvalidArgument
from gateway_daemon.core.resources.registries import BUILT_IN, REGISTRY_TYPES, Registry, effective_defaults

from ..formatting import full_time
from ..widgets.form import FormField
from ..widgets.resource_table import Column, TableRow
from .details import DetailsScreen
from .form import FormScreen
from .resource_list import ResourceListScreen, list_bindings


def is_built_in(registry: Any) -> bool:
    """The built-in registry itself (not a stored one that took its name)."""
    return registry.name in BUILT_IN and not registry.created_at


def defaults(registries: Iterable[Any]) -> set[str]:
    """The names of the registries installs use when a service names none: one per type."""
    return effective_defaults(registries)


def access(r: Any) -> str:
    """Who the registry logs in as and which secret holds what (never a value); whether TLS is checked."""
    parts = [f"token {r.token_name}" if r.token_name else f"{r.username} · {r.password_name}" if r.password_name
             else r.username]
    if r.insecure:
        parts.append("insecure")
    return " · ".join(p for p in parts if p)


class RegistriesScreen(ResourceListScreen):
    SECTION = "registries"
    KIND, NOUN, PLURAL = "registry", "registry", "registries"
    COLUMNS = [
        Column("name", "Name", min_width=8, max_width=24),
        Column("type", "Type", min_width=4, max_width=14),
        Column("url", "URL", min_width=12, max_width=48),
        Column("default", "Default", min_width=0, max_width=7),
        Column("access", "Access", min_width=0, max_width=32),
        Column("description", "Description", min_width=0, max_width=60, grow=True),
    ]
    EMPTY = ("No registries.\n\nA registry is a PyPI index or an Ansible Galaxy server services install their "
             "dependencies from. Press [b]n[/b] to add one.")
    BINDINGS = list_bindings("registry")

    def rows(self, resources: list[Any]) -> Iterable[TableRow]:
        chosen = defaults(resources)
        for r in resources:
            built_in = is_built_in(r)
            yield TableRow(r.name, (r.name, r.type, r.url, "yes" if r.name in chosen else "", access(r),
                                    r.description.splitlines()[0] if r.description else ""),
                           ("muted" if built_in else None, None, "muted" if built_in else None, None,
                            "warning" if r.insecure else None, "muted"))

    def _refused(self, resource: Any, doing: str) -> bool:
        if is_built_in(resource):
            self.notify(f"Registry {resource.name} is built in and cannot be {doing}; create a registry named "
                        f"{resource.name} to replace it", severity="warning", timeout=6)
            return True
        return False

    def action_edit(self) -> None:
        resource = self._need_selection()
        if resource is not None and not self._refused(resource, "changed"):
            self.opening = True
            self.app.push_screen(self.form(resource), self._saved)

    def may_delete(self, resource: Any) -> bool:
        return not self._refused(resource, "deleted")

    def form(self, resource: Any | None) -> "RegistryFormScreen":
        return RegistryFormScreen(resource)

    def details(self, resource: Any) -> "RegistryDetailsScreen":
        return RegistryDetailsScreen(resource.name)


class RegistryFormScreen(FormScreen):
    SECTION = "registries"
    NOUN = "registry"
    SECRET_FIELDS = ("password_name", "token_name")

    def fields(self) -> ComposeResult:
        r: Registry = self.resource or Registry(name="")
        yield FormField("name", "Name", Input(r.name, id="name", placeholder="internal-pypi", compact=True,
                                              disabled=self.editing), "letters, digits, - _ . (1-64)",
                        required=True)
        yield FormField("type", "Type", Select([(t, t) for t in REGISTRY_TYPES], id="type", value=r.type,
                                               allow_blank=False, compact=True, disabled=self.editing),
                        "pypi: Python packages (requirements.txt); ansible-galaxy: collections and roles",
                        required=True)
        yield FormField("url", "URL", Input(r.url, id="url", compact=True,
                                            placeholder="https://pypi.example.com/simple"),
                        "https://… (no credentials in it: they come from secrets)", required=True)
        yield FormField("username", "Username", Input(r.username, id="username", compact=True),
                        "the user installs log in as (with a password)")
        yield FormField("password_name", "Password", Select([], id="password_name", compact=True, prompt="none"),
                        "a secret holding the user's password")
        yield FormField("token_name", "Token", Select([], id="token_name", compact=True, prompt="none"),
                        "a secret holding an API token (instead of a password)")
        yield FormField("insecure", "Insecure", Checkbox("do not verify the server's certificate (allows http)",
                                                         r.insecure, id="insecure", compact=True))
        yield FormField("default", "Default", Checkbox("installs use it unless a service names another",
                                                       r.default, id="default", compact=True))
        yield FormField("description", "Description", Input(r.description, id="description", compact=True))

    async def load(self) -> None:
        try:
            secrets = sorted(s.name for s in await self.gateway.list("secret"))
        except GatewayError as exc:
            self.report(exc, "Cannot list secrets")
            return
        if not self.showing:  # the form was left while the list was read
            return
        for field in self.SECRET_FIELDS:
            select = self.query_one(f"#{field}", Select)
            select.set_options([(s, s) for s in secrets])
            if self.resource is not None and getattr(self.resource, field) in secrets:
                select.value = getattr(self.resource, field)

    def collect(self) -> dict[str, Any]:
        def text(widget_id: str) -> str:
            return self.query_one(f"#{widget_id}", Input).value.strip()

        def choice(widget_id: str) -> str:
            value = self.query_one(f"#{widget_id}", Select).value
            return value if isinstance(value, str) else ""

        values = dict(name=text("name"), type=choice("type") or "pypi", url=text("url"), username=text("username"),
                      password_name=choice("password_name"), token_name=choice("token_name"),
                      insecure=self.query_one("#insecure", Checkbox).value,
                      default=self.query_one("#default", Checkbox).value,
                      description=self.query_one("#description", Input).value)
        if not values["name"]:
            self.fail("name", "a name is required")
        if not values["url"]:
            self.fail("url", "a URL is required")
        if not self.errors:
            try:
                Registry(**values).validate()
            except InvalidArgument as exc:
                self.fail_with(exc)
        return values

    async def save(self, values: dict[str, Any]) -> str:
        if self.editing:
            await self.gateway.update("registry", self.resource.name,
                                      {k: v for k, v in values.items() if k not in ("name", "type")})
            return self.resource.name
        return (await self.gateway.create(Registry(**values))).name


class RegistryDetailsScreen(DetailsScreen):
    SECTION = "registries"
    KIND, NOUN = "registry", "registry"

    def pairs(self, r: Any) -> Iterable[tuple[str, Any]]:
        app: Any = self.app
        built_in = is_built_in(r)
        return [("type", r.type), ("url", r.url), ("username", r.username), ("password", r.password_name),
                ("token", r.token_name), ("insecure", "yes: the certificate is not verified" if r.insecure else "no"),
                ("default", f"while no stored {r.type} registry is the default" if built_in
                 else "yes" if r.default else "no"),
                ("description", r.description),
                ("created", "built in" if built_in else full_time(r.created_at, app.tz)),
                ("updated", "built in" if built_in else full_time(r.updated_at, app.tz))]

    def action_edit(self) -> None:
        if self.resource is not None and is_built_in(self.resource):
            self.notify(f"Registry {self.name_} is built in and cannot be changed", severity="warning", timeout=5)
            return
        super().action_edit()

    def form(self) -> RegistryFormScreen:
        return RegistryFormScreen(self.resource)
