"""Repositories: where the automations live."""

from __future__ import annotations

from typing import Any, Iterable

from textual.app import ComposeResult
from textual.widgets import Input, Select

from gateway_daemon.core import GatewayError, InvalidArgument, Repository

from ..formatting import full_time
from ..widgets.form import FormField
from ..widgets.resource_table import Column, TableRow
from .details import DetailsScreen
from .form import FormScreen, split_words
from .resource_list import ResourceListScreen, list_bindings


class RepositoriesScreen(ResourceListScreen):
    SECTION = "repositories"
    KIND, NOUN, PLURAL = "repository", "repository", "repositories"
    COLUMNS = [
        Column("name", "Name", min_width=8, max_width=28),
        Column("url", "URL", min_width=12, max_width=60),
        Column("reference", "Reference", min_width=6, max_width=20),
        Column("key", "SSH key", min_width=0, max_width=16),
        Column("description", "Description", min_width=0, max_width=60, grow=True),
    ]
    EMPTY = ("No repositories yet.\n\nA repository is a git URL (https, ssh, file:// or a local path) holding your "
             "automations. Press [b]n[/b] to add one.")
    BINDINGS = list_bindings("repository")

    def rows(self, resources: list[Any]) -> Iterable[TableRow]:
        for r in resources:
            yield TableRow(r.name, (r.name, r.url, r.reference or "HEAD", r.private_key_name,
                                    r.description.splitlines()[0] if r.description else ""),
                           (None, None, None if r.reference else "muted", None, "muted"))

    def form(self, resource: Any | None) -> "RepositoryFormScreen":
        return RepositoryFormScreen(resource)

    def details(self, resource: Any) -> "RepositoryDetailsScreen":
        return RepositoryDetailsScreen(resource.name)


class RepositoryFormScreen(FormScreen):
    SECTION = "repositories"
    NOUN = "repository"

    def fields(self) -> ComposeResult:
        r: Repository = self.resource or Repository(name="")
        yield FormField("name", "Name", Input(r.name, id="name", placeholder="automations", compact=True,
                                              disabled=self.editing), "letters, digits, - _ . (1-64)",
                        required=True)
        yield FormField("url", "URL", Input(r.url, id="url", compact=True,
                                            placeholder="https://git.example.com/team/automations.git"),
                        "https://…, ssh://…, user@host:path, file:///path or /path", required=True)
        yield FormField("reference", "Reference", Input(r.reference, id="reference", compact=True,
                                                        placeholder="the remote's HEAD"),
                        "branch, tag or commit")
        yield FormField("private_key_name", "SSH key", Select([], id="private_key_name", compact=True,
                                                              prompt="none"),
                        "a secret holding an ssh private key (ssh URLs only)")
        yield FormField("username", "Username", Input(r.username, id="username", compact=True),
                        "https: the user git logs in as")
        yield FormField("password_name", "Password", Select([], id="password_name", compact=True, prompt="none"),
                        "https: a secret holding the user's password")
        yield FormField("token_name", "Token", Select([], id="token_name", compact=True, prompt="none"),
                        "https: a secret holding an access token (instead of a password)")
        yield FormField("tags", "Tags", Input(" ".join(r.tags), id="tags", compact=True), "separated by spaces")
        yield FormField("description", "Description", Input(r.description, id="description", compact=True))

    async def load(self) -> None:
        try:
            secrets = sorted(s.name for s in await self.gateway.list("secret"))
        except GatewayError as exc:
            self.report(exc, "Cannot list secrets")
            return
        if not self.showing:  # the form was left while the list was read
            return
        for field in ("private_key_name", "password_name", "token_name"):
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

        values = dict(name=text("name"), url=text("url"), reference=text("reference"),
                      private_key_name=choice("private_key_name"), username=text("username"),
                      password_name=choice("password_name"), token_name=choice("token_name"),
                      tags=split_words(text("tags")), description=self.query_one("#description", Input).value)
        if not values["name"]:
            self.fail("name", "a name is required")
        if not values["url"]:
            self.fail("url", "a URL is required")
        if not self.errors:
            try:
                Repository(**values).validate()
            except InvalidArgument as exc:
                self.fail_with(exc)
        return values

    async def save(self, values: dict[str, Any]) -> str:
        if self.editing:
            # Only what changed: a credential left as it was is not given again, so a repository moved to
            # another host drops it (core.repositories) and says so here.
            before = self.resource
            changes = {k: v for k, v in values.items() if k != "name" and v != getattr(before, k)}
            if changes:
                after = await self.gateway.update("repository", before.name, changes)
                dropped = [getattr(before, f) for f in ("private_key_name", "password_name", "token_name")
                           if getattr(before, f) and not getattr(after, f) and f not in changes]
                if dropped:
                    self.notify(f"Repository {before.name} moved to another host: its credentials "
                                f"({', '.join(dropped)}) are no longer used; choose them again if they belong there",
                                severity="warning", timeout=10)
            return self.resource.name
        created = await self.gateway.create(Repository(**values))
        warning = getattr(created, "warning", "")  # a remote git could not reach: created, and said so
        if warning:
            self.notify(warning, severity="warning", timeout=10)
        return created.name


class RepositoryDetailsScreen(DetailsScreen):
    SECTION = "repositories"
    KIND, NOUN = "repository", "repository"

    def pairs(self, r: Any) -> Iterable[tuple[str, Any]]:
        app: Any = self.app
        return [("url", r.url), ("reference", r.reference or "the remote's HEAD"), ("ssh key", r.private_key_name),
                ("username", r.username), ("password", r.password_name), ("token", r.token_name),
                ("tags", r.tags), ("description", r.description), ("created", full_time(r.created_at, app.tz)),
                ("updated", full_time(r.updated_at, app.tz))]

    def form(self) -> RepositoryFormScreen:
        return RepositoryFormScreen(self.resource)
