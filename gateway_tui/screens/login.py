"""Login (client mode): username and password; a temporary password must be replaced before anything else.

Dismisses with the ServerLogin, or None when cancelled (only offered when
switching to another server: with no login there is nothing to go back to).
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalGroup
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Footer, Header, Input, Label, Static

from gateway_daemon.core import FailedPrecondition, GatewayError

from ..connection import ServerConnection, ServerLogin
from ..widgets.form import FormField

MUST_CHANGE = "This password is temporary: choose a new one (at least 8 characters) to go on."


class LoginScreen(ModalScreen[ServerLogin | None]):
    BINDINGS = [
        Binding("escape", "leave", "Quit", tooltip="Leave the gateway"),
    ]

    def __init__(self, connection: ServerConnection, reason: str = "", username: str = "",
                 cancellable: bool = False):
        super().__init__()
        self.connection = connection
        self.reason = reason
        self.username = username
        self.cancellable = cancellable
        self.must_change = False
        if cancellable:
            self._bindings.key_to_bindings["escape"] = [
                Binding("escape", "leave", "Cancel", tooltip="Stay with the server you were on")]

    def compose(self) -> ComposeResult:
        yield Header(icon="◆")
        with VerticalGroup(id="login"):
            tls = "TLS" if self.connection.use_tls else "no TLS"
            profile = f"  (profile {self.connection.profile})" if self.connection.profile else ""
            yield Label(Content.assemble(("Log in to ", "bold"), (self.connection.address, "bold"),
                                         f"  · {tls}{profile}"), id="login-title")
            yield Static(Content(self.reason), id="login-reason")
            yield FormField("username", "Username", Input(self.username, id="username", compact=True))
            yield FormField("password", "Password", Input(id="password", password=True, compact=True))
            yield Static(Content(MUST_CHANGE), id="login-must-change")
            yield FormField("new", "New password", Input(id="new-password", password=True, compact=True))
            yield FormField("again", "Again", Input(id="new-again", password=True, compact=True))
            yield Static("", id="login-error")
            leave = "cancel" if self.cancellable else "quit"
            yield Static(Content.from_markup(f"[b]enter[/b] log in   [b]esc[/b] {leave}"), id="login-hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#login-reason", Static).display = bool(self.reason)
        self._show_new_password(False)
        self.query_one("#login-error", Static).display = False
        self.query_one("#password" if self.username else "#username", Input).focus()

    def _show_new_password(self, shown: bool) -> None:
        self.must_change = shown
        for selector in ("#login-must-change", "#field-new", "#field-again"):
            self.query_one(selector).display = shown

    @property
    def error(self) -> str:
        banner = self.query_one("#login-error", Static)
        return str(banner.content) if banner.display else ""

    def show_error(self, message: str) -> None:
        banner = self.query_one("#login-error", Static)
        banner.update(Content(message))
        banner.display = bool(message)

    def _value(self, selector: str) -> str:
        return self.query_one(selector, Input).value

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        order = ["#username", "#password", *(["#new-password", "#new-again"] if self.must_change else [])]
        here = f"#{event.input.id}"
        empty = next((s for s in order if not self._value(s).strip()), None)
        if empty is not None and order.index(empty) > order.index(here):
            self.query_one(empty, Input).focus()
            return
        self.action_login()

    def action_login(self) -> None:
        username = self._value("#username").strip()
        password = self._value("#password")
        new = ""
        if not username or not password:
            self.show_error("give a username and a password")
            self.query_one("#username" if not username else "#password", Input).focus()
            return
        if self.must_change:
            new = self._value("#new-password")
            if not new:
                self.show_error("choose a new password")
                self.query_one("#new-password", Input).focus()
                return
            if new != self._value("#new-again"):
                self.show_error("the two new passwords differ")
                self.query_one("#new-again", Input).focus()
                return
        self.show_error("")
        self._login(username, password, new)

    @work(exclusive=True, group="login")
    async def _login(self, username: str, password: str, new: str) -> None:
        try:
            login = await self.connection.login(username, password, new)
        except FailedPrecondition as exc:
            if "temporary" in str(exc) and not self.must_change:
                self._show_new_password(True)
                self.query_one("#new-password", Input).focus()
                return
            self.show_error(str(exc))
            return
        except GatewayError as exc:
            self.show_error(str(exc))
            if "password" in str(exc) and not self.must_change:
                field = self.query_one("#password", Input)
                field.value = ""
                field.focus()
            return
        self.dismiss(login)

    def action_leave(self) -> None:
        if self.cancellable:
            self.dismiss(None)
        else:
            self.app.exit()
