"""Secrets: names and descriptions in the open; a value only when revealed on purpose, and briefly.  An alias's
value lives at its secret provider (p opens the providers)."""

from __future__ import annotations

from typing import Any, Iterable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.containers import VerticalGroup
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from gateway_daemon.core import GatewayError, InvalidArgument, Secret

from ..formatting import ago, full_time, sort_value
from ..widgets.form import FormField
from ..widgets.resource_table import Column, ResourceTable, TableRow
from .details import DetailsScreen
from .form import FormScreen, split_words
from .resource_list import ResourceListScreen, list_bindings

REVEAL_SECONDS = 10
HIDDEN = "••••••••"


class SecretsScreen(ResourceListScreen):
    SECTION = "secrets"
    KIND, NOUN, PLURAL = "secret", "secret", "secrets"
    COLUMNS = [
        Column("name", "Name", min_width=8, max_width=28),
        Column("value", "Value", min_width=8, max_width=8),
        Column("provider", "Provider", min_width=8, max_width=20),
        Column("updated", "Updated", min_width=6, max_width=10, whole=True),
        Column("description", "Description", min_width=0, max_width=60, grow=True),
    ]
    EMPTY = ("No secrets yet.\n\nA secret is encrypted at rest and put into a run's environment only. "
             "Press [b]n[/b] to add one.")
    BINDINGS = [
        Binding("v", "reveal", "Reveal", tooltip=f"Show the selected secret's value for {REVEAL_SECONDS} s"),
        Binding("p", "providers", "Providers", show=False,
                tooltip="The secret providers (Vault, CyberArk, plugins) whose secrets aliases name"),
        *list_bindings("secret"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.revealed: str | None = None  # the name whose value is on screen

    def rows(self, resources: list[Any]) -> Iterable[TableRow]:
        now = self.app.clock()  # type: ignore[attr-defined]
        for s in resources:
            provider = getattr(s, "provider", "")
            yield TableRow(s.name, (s.name, HIDDEN, f"alias: {provider}" if provider else "(sealed here)",
                                    ago(s.updated_at, now), s.description.splitlines()[0] if s.description else ""),
                           (None, "muted", "accent" if provider else "muted", "muted", "muted"),
                           (None, None, None, sort_value(s.updated_at), None))

    def action_providers(self) -> None:
        from .secret_providers import SecretProvidersScreen

        self.hide()
        self.app.push_screen(SecretProvidersScreen())

    async def action_reveal(self) -> None:
        secret = self._need_selection()
        if secret is None:
            return
        try:
            value = await self.gateway.reveal_secret(secret.name)
        except GatewayError as exc:
            self.report(exc, f"Cannot reveal secret {secret.name}")
            return
        self.hide()
        self.revealed = secret.name

        def hidden(_result: None) -> None:
            self.revealed = None

        # Over the list, in the middle of the screen, where the eyes are (not in a panel at the bottom).
        self.app.push_screen(RevealedSecretScreen(secret.name, value, REVEAL_SECONDS), hidden)

    def hide(self) -> None:
        if isinstance(self.app.screen, RevealedSecretScreen):
            self.app.screen.dismiss(None)
        self.revealed = None

    def key_escape(self) -> None:
        if self.revealed is not None:
            self.hide()
        else:
            super().key_escape()

    @on(ResourceTable.Highlighted)
    def _moved(self, event: ResourceTable.Highlighted) -> None:
        if self.revealed is not None and event.key != self.revealed:
            self.hide()

    def on_screen_suspend(self) -> None:
        if not isinstance(self.app.screen, RevealedSecretScreen):  # the value's own box is what covers the list
            self.hide()

    def form(self, resource: Any | None) -> "SecretFormScreen":
        return SecretFormScreen(resource)

    def details(self, resource: Any) -> "SecretDetailsScreen":
        return SecretDetailsScreen(resource.name)


class RevealedSecretScreen(ModalScreen[None]):
    """One secret's value in a box over the list, for `seconds`; esc (or v again) hides it at once."""

    BINDINGS = [Binding("escape,v,enter", "close", "Hide", tooltip="Hide the value now")]
    DEFAULT_CSS = """
    RevealedSecretScreen { align: center middle; }
    #revealed {
        width: auto; min-width: 40; max-width: 100%; height: auto; padding: 1 2;
        border: round $warning; border-title-color: $text-warning; background: $surface;
    }
    #revealed-value { color: $text-warning; text-style: bold; width: auto; max-width: 100%; }
    #revealed-hint { color: $text-muted; margin: 1 0 0 0; width: auto; }
    """

    def __init__(self, name: str, value: str, seconds: float):
        super().__init__()
        self.secret_name, self.value, self.left = name, value, int(seconds)
        self.seconds = seconds

    def compose(self) -> ComposeResult:
        with VerticalGroup(id="revealed") as box:
            box.border_title = f"Secret {self.secret_name}"
            yield Static(Content(self.value), id="revealed-value")
            yield Static("", id="revealed-hint")

    def on_mount(self) -> None:
        self._hint()
        self.set_timer(self.seconds, self.action_close)
        self.set_interval(1, self._tick)

    def _tick(self) -> None:
        self.left = max(0, self.left - 1)
        self._hint()

    def _hint(self) -> None:
        self.query_one("#revealed-hint", Static).update(Content(f"hides in {self.left} s · esc hides now"))

    def action_close(self) -> None:
        if self.is_attached and self.app.screen is self:
            self.value = ""
            self.dismiss(None)


class SecretFormScreen(FormScreen):
    SECTION = "secrets"
    NOUN = "secret"

    def fields(self) -> ComposeResult:
        s: Secret = self.resource or Secret(name="")
        yield FormField("name", "Name", Input(s.name, id="name", placeholder="api-token", compact=True,
                                              disabled=self.editing), "letters, digits, - _ . (1-64)",
                        required=True)
        yield FormField("value", "Value", Input("", id="value", password=True, compact=True,
                                                placeholder="unchanged" if self.editing else ""),
                        "kept encrypted; empty keeps the current value" if self.editing
                        else "kept encrypted; shown only when revealed (none for an alias)")
        yield FormField("provider", "Provider", Input(s.provider, id="provider", compact=True, placeholder="vault"),
                        "an alias: the secret provider holding the value, fetched when a run is prepared")
        yield FormField("path", "Secret path", Input(s.path, id="path", compact=True, placeholder="myapp/db"),
                        "an alias: the secret's path there (vault: in its mount; cyberark: Safe/Object)")
        yield FormField("key", "Key", Input(s.key, id="key", compact=True, placeholder="password"),
                        "an alias: the field to take (empty: the only one; cyberark: Content)")
        yield FormField("description", "Description", Input(s.description, id="description", compact=True))
        yield FormField("tags", "Tags", Input(" ".join(s.tags), id="tags", compact=True),
                        "separated by spaces; a user scoped to tags sees the secret when one matches")

    def collect(self) -> dict[str, Any]:
        name = self.query_one("#name", Input).value.strip()
        value = self.query_one("#value", Input).value
        description = self.query_one("#description", Input).value
        tags = split_words(self.query_one("#tags", Input).value)
        provider, path, key = (self.query_one(f"#{field}", Input).value.strip() for field in ("provider", "path", "key"))
        if not name:
            self.fail("name", "a name is required")
        if provider and value:
            self.fail("value", "an alias has no value here: empty it, or the provider")
        if (path or key) and not provider:
            self.fail("provider", "an alias needs its provider")
        if provider and not path:
            self.fail("path", "an alias needs the secret's path at its provider")
        if not value and not provider and not (self.editing and not self.resource.provider):
            self.fail("value", "a value (or a provider and path: an alias) is required")
        if not self.errors:
            try:
                Secret(name=name, description=description, tags=tags, provider=provider, path=path,
                       key=key).validate()
            except InvalidArgument as exc:
                self.fail_with(exc)
        return dict(name=name, value=value, description=description, tags=tags, provider=provider, path=path,
                    key=key)

    async def save(self, values: dict[str, Any]) -> str:
        alias = ({"provider": values["provider"], "path": values["path"], "key": values["key"]}
                 if values["provider"] else {})
        if self.editing:
            await self.gateway.update_secret(self.resource.name, values["value"] or None, values["description"],
                                             values["tags"], **alias)
            return self.resource.name
        return (await self.gateway.create_secret(values["name"], values["value"], values["description"],
                                                 values["tags"], **alias)).name


class SecretDetailsScreen(DetailsScreen):
    SECTION = "secrets"
    KIND, NOUN = "secret", "secret"

    def pairs(self, s: Any) -> Iterable[tuple[str, Any]]:
        app: Any = self.app
        if getattr(s, "provider", ""):
            return [("value", f"fetched from provider {s.provider} when a run is prepared (reveal it from the list "
                              "with v)"), ("provider", s.provider), ("secret path", s.path),
                    ("key", s.key or "(its only field)"), ("description", s.description), ("tags", s.tags),
                    ("created", full_time(s.created_at, app.tz)), ("updated", full_time(s.updated_at, app.tz))]
        return [("value", f"{HIDDEN}  (reveal it from the list with v)"), ("description", s.description),
                ("tags", s.tags), ("created", full_time(s.created_at, app.tz)),
                ("updated", full_time(s.updated_at, app.tz))]

    def form(self) -> SecretFormScreen:
        return SecretFormScreen(self.resource)
