"""Login (client mode): username and password; a temporary password must be replaced before anything else.
The same screen changes the logged-in user's password (the current one, then the new one twice).

Dismisses with the ServerLogin, or None when cancelled (only offered when there is
a login to go back to: switching user or server, changing the password).

A Login screen that comes up uninvited (the key was revoked under the TUI) takes
no keys for its first SETTLE_SECONDS: keys typed at the screen that was there
land nowhere, neither in the password field nor on a binding, and the fields are
emptied before one takes the focus.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalGroup
from textual.content import Content
from textual import events
from textual.screen import ModalScreen, Screen
from textual.widgets import Header, Input, Label, Static

from gateway_daemon.core import FailedPrecondition, GatewayError, Unauthenticated
from gateway_daemon.core.access.auth import MIN_PASSWORD

from ..connection import ServerConnection, ServerLogin
from ..widgets.footer import GatewayFooter
from ..widgets.form import FormField

MUST_CHANGE = "This password is temporary: choose a new one (at least 8 characters) to go on."
CHANGE = "Choose a new password (at least 8 characters). Every API key of yours is revoked but this session's."
SETTLE_SECONDS = 0.5  # an uninvited Login screen ignores keys this long: they were typed at the screen before


class SignedOutScreen(Screen):
    """What lies under the Login screen while nobody is logged in: the header, and nothing of anyone's."""

    def compose(self) -> ComposeResult:
        yield Header(icon="◆")


class LoginScreen(ModalScreen[ServerLogin | None]):
    """`cancel` names what esc goes back to (empty: esc quits); `change_password`: the logged-in
    `username`'s password is changed (and a new key kept); `settle`: the screen came up uninvited."""

    AUTO_FOCUS = ""  # nothing by itself: on_mount focuses, once the screen takes keys
    BINDINGS = [
        Binding("escape", "leave", "Quit", tooltip="Leave the gateway"),
    ]

    def __init__(self, connection: ServerConnection, reason: str = "", username: str = "",
                 cancellable: bool = False, *, cancel: str = "Stay with the server you were on",
                 change_password: bool = False, settle: bool = False):
        super().__init__()
        self.connection = connection
        self.reason = reason
        self.username = username
        self.cancellable = cancellable or change_password
        self.change_password = change_password
        self.settling = settle
        self.must_change = False
        if self.cancellable:
            self._bindings.key_to_bindings["escape"] = [
                Binding("escape", "leave", "Cancel", tooltip="Keep your password" if change_password else cancel)]

    def compose(self) -> ComposeResult:
        yield Header(icon="◆")
        with VerticalGroup(id="login"):
            tls = "TLS" if self.connection.use_tls else "no TLS"
            profile = f"  (profile {self.connection.profile})" if self.connection.profile else ""
            if self.change_password:
                title = Content.assemble(("Change the password of ", "bold"), (self.username, "bold"),
                                         f" at {self.connection.address}  · {tls}{profile}")
            else:
                title = Content.assemble(("Log in to ", "bold"), (self.connection.address, "bold"),
                                         f"  · {tls}{profile}")
            yield Label(title, id="login-title")
            yield Static(Content(self.reason), id="login-reason")
            yield FormField("username", "Username", Input(self.username, id="username", compact=True,
                                                          disabled=self.change_password))
            yield FormField("password", "Old password" if self.change_password else "Password",
                            Input(id="password", password=True, compact=True))
            yield Static(Content(CHANGE if self.change_password else MUST_CHANGE), id="login-must-change")
            yield FormField("new", "New password", Input(id="new-password", password=True, compact=True))
            yield FormField("again", "Again", Input(id="new-again", password=True, compact=True))
            yield Static("", id="login-error")
            leave = "cancel" if self.cancellable else "quit"
            enter = "change the password" if self.change_password else "log in"
            yield Static(Content.from_markup(f"[b]enter[/b] {enter}   [b]esc[/b] {leave}"), id="login-hint")
        yield GatewayFooter()

    def on_mount(self) -> None:
        self.query_one("#login-reason", Static).display = bool(self.reason)
        self._show_new_password(self.change_password)
        self.query_one("#login-error", Static).display = False
        if self.settling:
            self.set_timer(SETTLE_SECONDS, self._settled)
        else:
            self._focus_first()

    def _focus_first(self) -> None:
        self.query_one("#password" if self.username else "#username", Input).focus()

    def _settled(self) -> None:
        """Keys are taken from now on; whatever reached a field before is not the user's answer to this screen."""
        self.settling = False
        for selector in ("#password", "#new-password", "#new-again"):
            self.query_one(selector, Input).value = ""
        if not self.username:
            self.query_one("#username", Input).value = ""
        self._focus_first()

    def on_key(self, event: events.Key) -> None:
        if self.settling:  # typed at the screen before this one: neither a field's nor a binding's
            event.stop()
            event.prevent_default()

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
        if here == "#new-password" and not self._new_long_enough():
            return  # said at once, before it is typed a second time
        empty = next((s for s in order if not self._value(s).strip()), None)
        if empty is not None and order.index(empty) > order.index(here):
            self.query_one(empty, Input).focus()
            return
        self.action_login()

    def _new_long_enough(self) -> bool:
        """The new password is long enough; else the error, the field emptied and focused for another try."""
        if len(self._value("#new-password")) >= MIN_PASSWORD:
            return True
        self.show_error(f"a password needs at least {MIN_PASSWORD} characters")
        field = self.query_one("#new-password", Input)
        field.value = ""
        field.focus()
        return False

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
            if not self._new_long_enough():
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
            if isinstance(exc, Unauthenticated) or "password" in str(exc) and not self.must_change:
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
