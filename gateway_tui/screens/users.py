"""Users: managed only against a server. Local mode shows why not; client mode lists and manages them.

The server decides who may do what (admins only; not yourself, not the last
admin); its refusals show as notifications.  Each user has a role (admin,
editor, operator, viewer) and maybe a scope (service tags, core/policy.py).
"""

from __future__ import annotations

from typing import Any, Iterable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Select

from gateway_daemon.core import GatewayError
from gateway_daemon.core.api import UserInfo
from gateway_daemon.core.access.auth import MIN_PASSWORD
from gateway_daemon.core.access.roles import ROLES, Action, parse_scope, scope_text

from ..formatting import ago, sort_value
from ..widgets.form import FormField
from ..widgets.resource_table import Column, TableRow
from .base import SectionScreen
from .form import FormScreen
from .resource_list import ResourceListScreen
from .confirm import ConfirmScreen


class UsersScreen(SectionScreen):
    """Local mode: there in the navigation, with one line saying why there is nothing here."""

    SECTION = "users"

    def compose_body(self) -> ComposeResult:
        yield from self.compose_unavailable("Users")


class UserListScreen(ResourceListScreen):
    """Client mode: the server's users; create, set a password, grant or take admin, delete."""

    SECTION = "users"
    KIND, NOUN, PLURAL = "user", "user", "users"
    COLUMNS = [
        Column("name", "Name", min_width=8, max_width=32),
        Column("role", "Role", min_width=6, max_width=8),
        Column("scope", "Scope", min_width=5, max_width=24),
        Column("created", "Created", min_width=7, max_width=10, whole=True),
        Column("last_login", "Last login", min_width=7, max_width=10, whole=True),
        Column("locked", "Locked until", min_width=6, max_width=12, whole=True),
    ]
    EMPTY = "No users. Press [b]n[/b] to create one."
    ROLE_ACTIONS = {"new": Action.USERS, "edit": Action.USERS, "delete": Action.USERS,
                    "toggle_admin": Action.USERS, "unlock": Action.USERS}
    BINDINGS = [
        Binding("slash", "filter", "Filter", tooltip="Filter the user list as you type"),
        Binding("n", "new", "New", tooltip="New user"),
        Binding("e", "edit", "Edit", tooltip="Set the selected user's role, scope or password"),
        Binding("a", "toggle_admin", "Admin", tooltip="Make the selected user an admin, or (from admin) a viewer"),
        Binding("u", "unlock", "Unlock", show=False, tooltip="Let the selected user log in again after failed logins"),
        Binding("d", "delete", "Delete", tooltip="Delete the selected user"),
        Binding("s", "sort", "Sort", show=False, tooltip="Sort by the next column (again: reverse)"),
        Binding("ctrl+r", "refresh", "Refresh", show=False, tooltip="Reload the user list"),
    ]

    def watch_changes(self) -> None:  # the server has no watch of users; ctrl+r reloads
        pass

    async def fetch(self) -> list[UserInfo]:
        return await self.gateway.list_users()

    def rows(self, resources: list[UserInfo]) -> Iterable[TableRow]:
        now = self.app.clock()  # type: ignore[attr-defined]
        for user in resources:
            yield TableRow(user.name, (user.name, user.role, scope_text(user.scope), ago(user.created_at, now),
                                       ago(user.last_login_at, now) if user.last_login_at else "never",
                                       ago(user.locked_until, now) if user.locked_until else ""),
                           (None, "accent", None, "muted", "muted", "error"),
                           (None, None, None, sort_value(user.created_at), sort_value(user.last_login_at),
                            sort_value(user.locked_until)))

    def form(self, resource: UserInfo | None) -> "UserFormScreen":
        return UserFormScreen(resource)

    def action_details(self) -> None:
        self.action_edit()

    async def action_toggle_admin(self) -> None:
        user = self._need_selection()
        if user is None:
            return
        try:
            await self.gateway.update_user(user.name, admin=not user.admin)
        except GatewayError as exc:
            self.report(exc, f"Cannot change {user.name}")
            return
        self.notify(f"{user.name} is {'no longer' if user.admin else 'now'} an admin", timeout=3)
        await self.reload()
        self.select(user.name)

    async def action_unlock(self) -> None:
        user = self._need_selection()
        if user is None:
            return
        try:
            await self.gateway.update_user(user.name, unlock=True)
        except GatewayError as exc:
            self.report(exc, f"Cannot unlock {user.name}")
            return
        self.notify(f"{user.name} may log in again", timeout=3)
        await self.reload()
        self.select(user.name)

    @work
    async def action_delete(self) -> None:
        user = self._need_selection()
        if user is None:
            return
        confirmed = await self.app.push_screen_wait(ConfirmScreen(
            f"Delete user {user.name}?",
            f"The user '{user.name}' will be deleted and their API keys revoked. This cannot be undone."))
        if not confirmed:
            return
        try:
            await self.gateway.delete_user(user.name)
        except GatewayError as exc:
            self.report(exc, f"Cannot delete user {user.name}")
            return
        self.notify(f"Deleted user {user.name}", timeout=3)
        await self.reload()


class UserFormScreen(FormScreen):
    """New user (name, role, scope, password), or a user's role, scope and new password."""

    SECTION = "users"
    NOUN = "user"

    def fields(self) -> ComposeResult:
        user = self.resource
        yield FormField("name", "Name", Input(user.name if user else "", id="name", placeholder="alice",
                                              compact=True, disabled=self.editing),
                        "letters, digits, - _ . (1-64)", required=True)
        yield FormField("role", "Role", Select([(role, role) for role in ROLES], value=user.role if user and
                                                user.role in ROLES else "viewer", allow_blank=False, id="role",
                                                compact=True),
                        "admin: all; editor: change, run; operator: run; viewer: read")
        yield FormField("scope", "Scope", Input(scope_text(user.scope) if user else "", id="scope", compact=True,
                                                placeholder="every service"),
                        "tag=TAG[,tag=TAG]: only services with one of these tags")
        yield FormField("password", "Password", Input("", id="password", password=True, compact=True,
                                                      placeholder="unchanged" if self.editing else ""),
                        "at least 8 characters" + ("; a new one revokes the user's API keys" if self.editing
                                                   else ""), required=not self.editing)
        yield FormField("again", "Again", Input("", id="again", password=True, compact=True),
                        required=not self.editing)

    @on(Input.Submitted, "#password")
    @on(Input.Blurred, "#password")
    def _password_entered(self) -> None:
        """Too short a password is said when it is first typed, not after it is typed twice."""
        password = self.query_one("#password", Input).value
        field = self.query_one("#field-password", FormField)
        field.set_error(f"a password needs at least {MIN_PASSWORD} characters"
                        if password and len(password) < MIN_PASSWORD else None)

    def collect(self) -> dict[str, Any]:
        name = self.query_one("#name", Input).value.strip()
        password = self.query_one("#password", Input).value
        if password and len(password) < MIN_PASSWORD:
            self.fail("password", f"a password needs at least {MIN_PASSWORD} characters")
        again = self.query_one("#again", Input).value
        if not name:
            self.fail("name", "a name is required")
        if not password and not self.editing:
            self.fail("password", "a password is required")
        if password != again:
            self.fail("again", "the two passwords differ")
        text = self.query_one("#scope", Input).value.strip()
        scope: tuple[str, ...] = ()
        try:
            scope = parse_scope([part for part in text.replace(" ", ",").split(",") if part])
        except GatewayError as exc:
            self.fail("scope", str(exc))
        return dict(name=name, role=str(self.query_one("#role", Select).value), scope=scope, password=password)

    async def save(self, values: dict[str, Any]) -> str:
        if not self.editing:
            user = await self.gateway.create_user(values["name"], values["password"], role=values["role"],
                                                  scope=values["scope"])
            return user.name
        role = values["role"] if values["role"] != self.resource.role else None
        scope = values["scope"] if tuple(values["scope"]) != tuple(self.resource.scope) else None
        if role is None and scope is None and not values["password"]:
            return self.resource.name
        await self.gateway.update_user(self.resource.name, password=values["password"] or None, role=role,
                                       scope=scope)
        if values["password"]:
            self.notify(f"{self.resource.name}'s API keys are revoked", timeout=3)
        return self.resource.name
