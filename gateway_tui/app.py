"""The operator's terminal UI. It talks only to the Gateway interface."""

from __future__ import annotations

import gc
import time
from functools import partial
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, Callable

from textual import events
from textual.app import App
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import ModalScreen

from .commands import GatewayCommands, OneLineSystemCommands
from .opening import OpeningGateway
from .screens.services import ServicesScreen
from .widgets.navigation import PALETTE_SECTIONS, SECTIONS

if TYPE_CHECKING:
    from gateway_daemon.config import Config
    from gateway_daemon.core import Gateway, Unauthenticated

    from .connection import ServerConnection, ServerLogin

USERS_UNAVAILABLE = ("User management exists only against a gateway server (client mode); "
                     "local mode has no users and no login.")
AUDIT_UNAVAILABLE = ("The audit trail is kept by a gateway server: connect to one in client mode (as an admin) "
                     "to read it. Local mode keeps none.")
RUNNERS_UNAVAILABLE = ("Runners work for a gateway server on etcd: connect to one in client mode to see them. "
                       "Local mode runs everything in this process.")
DARK, LIGHT = "textual-dark", "textual-light"
RUNNING_POLL_SECONDS = 2.0
RUNNING_LIMIT = 1000
SIGNED_OUT = "signed-out"  # client mode: the mode under the Login screen while nobody is logged in

_NAVIGATION = Binding.Group("Go to", compact=True)
# A key neither taken by a widget nor back at the app after this long, and whose widget is gone, was never handled.
KEY_LOST_SECONDS = 1.0
SETTLED_SECONDS = 0.5  # after this the first screen is up and what start-up made stays
GC_THRESHOLD = 10_000  # allocations between the collector's youngest passes (Python's default: 700)
OPEN_AT_THE_LATEST = 0.3  # local mode opens its engine once the first screen is drawn, or after this (seconds)
OPENING_PATIENCE = 10.0  # a screen still `opening` after this long (a hung server) gets the keys typed at it


def keep_started_objects() -> None:
    """What is in memory once the first screen is up (modules, classes, styles, the engine) lives as long as the
    app: the cycle collector stops walking it, and runs less often. A full walk of it took ~45 ms, now and then
    in the middle of a form opening. (No collection first: it would be such a walk, and what little garbage
    there is stays.)"""
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])


class KeyOrder:
    """Keys in the order typed, each to the screen that is in front when the one before it has been handled.

    Textual hands a key to the focused widget and only checks the bindings when the key comes back up to the
    app; a fast typist's next keys are handed out before that, so the letters after `n` (New) went to the list
    and not to the form `n` opens, and a screen being built took keys it had no field for. Here one key is out
    at a time: the next waits until it is taken by a widget or its binding has run, and until the screen in
    front takes keys (built, its first field focused: a screen's `opening`). A key that comes back from a
    screen that is no longer in front goes to the one that is."""

    def __init__(self, app: "GatewayApp"):
        self.app = app
        self.held: list[events.Key] = []
        self.out: events.Key | None = None  # the key handed out and not yet handled
        self.out_screen: object = None
        self.out_since = 0.0
        self.out_to: Any = None  # the widget the key out was given to
        self.back = False  # the key out is on its way back to the app (a widget did not take it)
        self.waiting: tuple[object, float] | None = None  # the screen keys wait for to open, since when
        self._timer: Any = None

    @staticmethod
    def copy(key: events.Key) -> events.Key:
        return events.Key(key.key, key.character)

    def ready(self) -> bool:
        """Whether the screen in front takes keys now."""
        try:
            screen = self.app.screen
        except Exception:  # noqa: BLE001 - no screen yet, or the app is closing
            return False
        if not screen.is_mounted:
            return False
        if not (getattr(screen, "opening", False) or getattr(screen, "reading", False)):
            self.waiting = None
            return True
        if self.waiting is None or self.waiting[0] is not screen:
            self.waiting = (screen, time.monotonic())
        return time.monotonic() - self.waiting[1] > OPENING_PATIENCE

    def settle(self) -> None:
        """Forget the key out once a widget took it (it stopped on the way up and is not coming back)."""
        key = self.out
        if key is None or self.back:
            return
        waited = time.monotonic() - self.out_since
        lost = waited > KEY_LOST_SECONDS and not (self.out_to is not None and self.out_to.is_attached
                                                    and waited < OPENING_PATIENCE)
        if key._stop_propagation or lost:
            if not key._stop_propagation:  # never handled (its widget went): it goes to the screen in front
                self.held.insert(0, self.copy(key))
            self.out = None

    def hold(self, key: events.Key) -> bool:
        """True when `key` must wait (it was put in line)."""
        self.settle()
        if self.out is None and not self.held and self.ready():
            return False
        self.held.append(key)
        self.wake()
        return True

    def sent(self, key: events.Key) -> None:
        if key.is_forwarded:  # off to a widget: out until it is taken or comes back
            self.out, self.out_screen, self.out_since, self.back = key, self.app.screen, time.monotonic(), False
            self.out_to = self.app.focused or self.app.screen  # a key still with a widget that is there is not lost
            # (on a busy machine a key can take longer than KEY_LOST_SECONDS to be handled: it was typed twice)
            self.wake()

    def returning(self, key: events.Key) -> None:
        if key is self.out:
            self.back = True

    def came_back(self, key: events.Key) -> bool:
        """`key` is back at the app, not taken by a widget. False: its binding runs now (the next key goes after
        that). True: the screen it was given to is no longer in front, so it goes to the one that is."""
        if key is not self.out:
            return False
        if not self.app.screen_stack:  # the app is ending
            self.out = None
            return True
        if self.out_screen is not self.app.screen:
            self.out = None
            self.held.insert(0, self.copy(key))
            self.wake()
            return True
        self.app.call_later(self.done, key)
        return False

    def done(self, key: events.Key) -> None:
        from textual.command import CommandPalette

        if key is not self.out:
            return
        if isinstance(self.app.screen, CommandPalette) and key.key in ("enter", "escape"):
            # the palette closes through messages of its own after its binding: the next key waits for that
            self.app.set_timer(0.05, lambda: self.done(key) if self.out is key and self._clear() else None)
            return
        self.out = None
        self.wake()

    def _clear(self) -> bool:
        self.out = None
        self.wake()
        return True

    def wake(self) -> None:
        if self._timer is None and (self.out is not None or self.held):
            self._timer = self.app.set_timer(0.005, self._release, name="key order")

    async def _release(self) -> None:
        self._timer = None
        self.settle()
        if self.out is None and self.held and self.ready():
            key = self.held.pop(0)
            key._gateway_released = True  # type: ignore[attr-defined]
            self.app.post_message(key)
        self.wake()


def _section(module: str, name: str) -> Callable[[], Any]:
    """The screen class `name` of gateway_tui.screens.`module`, made when its section is first shown: the
    first screen does not wait for the modules of the others."""
    def make() -> Any:
        from importlib import import_module

        return getattr(import_module(f".screens.{module}", __package__), name)()
    make.__qualname__ = name
    return make


class GatewayApp(App):
    TITLE = "Automation Gateway"
    CSS_PATH = "app.tcss"
    COMMANDS = {OneLineSystemCommands, GatewayCommands}  # one line per item (Textual's own put help under it)
    MODES = {
        "services": ServicesScreen,  # the first screen; the others are loaded when first shown
        "runs": _section("runs", "RunsScreen"),
        "repositories": _section("repositories", "RepositoriesScreen"),
        "decorators": _section("decorators", "DecoratorsScreen"),
        "secrets": _section("secrets", "SecretsScreen"),
        "users": _section("users", "UsersScreen"),
        "runners": _section("runners", "RunnersScreen"),
        "audit": _section("audit", "AuditScreen"),
        "registries": _section("registries", "RegistriesScreen"),
        "executables": _section("executables", "ExecutablesScreen"),
    }
    # The footer fits 80 columns: the section keys show in the tab bar, the theme in the palette (ctrl+p).
    BINDINGS = [
        *(Binding(key, f"section('{mode}')", label, tooltip=f"Go to {label}", group=_NAVIGATION, show=False)
          for mode, key, label in SECTIONS),
        # roles and audit (issue 14): the Audit section, for admins against a server; off the footer
        Binding("8", "section('audit')", "Audit", show=False, tooltip="Go to the audit trail (admins)"),
        # registries and executable objects (issue 13): off the strip and the footer, in the palette
        *(Binding(key, f"section('{mode}')", label, show=False, tooltip=f"Go to {label}")
          for mode, key, label in PALETTE_SECTIONS),
        Binding("ctrl+t", "toggle_theme", "Theme", show=False,
                tooltip="Switch between the dark and the light theme"),
        Binding("q", "quit", "Quit", tooltip="Quit the gateway"),
        Binding("question_mark", "help", "Help", show=False, tooltip="The keys of this screen"),
    ]
    # The logged-in user's role (core.policy); local mode: everything. What it does not allow is greyed out
    # (screens' check_action, the navigation strip, which follows it).
    role: reactive[str] = reactive("admin")
    running: reactive[int] = reactive(0)  # runs running now, counted in the header (RUNNING_POLL_SECONDS)

    def __init__(self, gateway: "Gateway | None", context: str = "", *, mode: str = "local",
                 tz: tzinfo | None = None, clock: Callable[[], float] = time.time, theme: str = DARK,
                 connection: "ServerConnection | None" = None):
        """`context` is the header's second line in local mode (mode and data dir); `tz` and `clock` fix how
        times show.  With a `connection` (client mode) the gateway is the server's, for whoever logs in."""
        super().__init__()
        self.sub_title = context
        self.gateway_mode = mode
        self.tz = tz
        self.clock = clock
        self.theme = theme
        self.connection = connection
        self.own_process = False  # the app is what this process runs (`gateway`): it may tune the collector
        self.open_error: Exception | None = None  # the local engine could not be opened (OpeningGateway)
        self._opening_started = False
        self.user: str | None = None
        self.generation = 0  # a new one with every login: screens restart what they follow
        self.section = "services"  # the section a login goes (back) to
        self._login_open = False
        self.key_order = KeyOrder(self)
        if connection is None:
            self.gateway = gateway
            self.unavailable_sections = ({"users": USERS_UNAVAILABLE, "runners": RUNNERS_UNAVAILABLE,
                                          "audit": AUDIT_UNAVAILABLE}
                                         if mode == "local" else {})
        else:
            from .screens.login import SignedOutScreen

            self.gateway_mode = "client"
            self.gateway = connection.open()  # until a login: calls are refused by the server, and no news
            self._retired: list[Gateway] = []  # earlier logins' gateways: closed as the app ends
            self.unavailable_sections = {}
            # Against a server the Users section is the real list. (remove_mode needs a running loop; this is
            # before one, and the mode has no screens yet.)
            self._modes["users"] = _section("users", "UserListScreen")
            self._modes[SIGNED_OUT] = SignedOutScreen

    # ------------------------------------------------------------ keys, in the order typed (KeyOrder)
    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            if self._closing or self._exit or not self.is_running or not self.screen_stack:
                return  # the app is ending (q, or its process is told to stop): keys typed after it land nowhere
                # (a held key let out while the screens were being closed switched to a section with none left)
            if not getattr(event, "_gateway_released", False) and self.key_order.hold(event):
                return
            await super().on_event(event)
            self.key_order.sent(event)
            return
        await super().on_event(event)

    def post_message(self, message: Any) -> bool:
        if isinstance(message, events.Key):
            self.key_order.returning(message)
        return super().post_message(message)

    def update_styles(self, node: Any, animate: bool = True) -> None:
        """Restyle a node whose classes changed, once it is in the DOM. A widget still being built (a form's
        `Input(compact=True)` sets a class in its constructor) is styled when it is mounted, as one built outside
        the app is: styling it before, without its parents, cost the New-service form ~5 ms of its ~90."""
        if node is self or node.is_attached:
            super().update_styles(node, animate)

    async def _on_key(self, event: events.Key) -> None:
        if self.key_order.came_back(event):
            event.prevent_default()  # not this screen's binding: the key is typed again at the one in front
            event.stop()

    def on_mount(self) -> None:
        if self.own_process:
            self.set_timer(SETTLED_SECONDS, keep_started_objects)
        if isinstance(self.gateway, OpeningGateway):  # once the first screen is drawn, or a key typed ahead
            # made a screen wait for its data before it could draw
            self.call_after_refresh(self._open_gateway)
            self.set_timer(OPEN_AT_THE_LATEST, self._open_gateway)
        self.set_interval(RUNNING_POLL_SECONDS, self.count_running)
        self.count_running()
        if self.connection is None:
            self.switch_mode("services")
            return
        login = self.connection.stored()
        if login is None:
            self.show_login()
        else:
            self._enter(self.connection, login)

    def _open_gateway(self) -> None:
        """Local mode: the engine opens once the first screen is drawn (OpeningGateway)."""
        if not self._opening_started:
            self._opening_started = True
            self.run_worker(self._open(), group="open", exit_on_error=False)

    async def _open(self) -> None:
        """If the engine cannot be opened, the app ends and `gateway` says why (run_app), as it does for an
        error found before the app starts."""
        assert isinstance(self.gateway, OpeningGateway)
        try:
            await self.gateway.start()
        except Exception as exc:  # noqa: BLE001 - said by run_app once the terminal is back
            self.open_error = exc
            self.exit(return_code=1)

    # ------------------------------------------------------------ client mode: login, profiles
    def server_context(self) -> str:
        """The header's second line in client mode: server, TLS, user (and the profile, if one)."""
        connection = self.connection
        assert connection is not None
        parts = [connection.address, f"TLS {'on' if connection.use_tls else 'off'}",
                 self.user or "not logged in"]
        if connection.profile:
            parts.append(f"profile {connection.profile}")
        return " · ".join(parts)

    # ---- identity: who is logged in. Any change of it (a login, a logout, another user, another server, a key
    # revoked under the TUI) goes through _sign_out and _enter, which drop every screen with all it holds.
    def _drop_screens(self) -> None:
        """Every section's screens go, with whatever they hold (rows, details, forms, output, a revealed secret),
        and the notifications with them: each section is made anew, for whoever is logged in, when next shown.
        Meanwhile the empty sign-out screen is shown."""
        if self.current_mode in self.MODES:
            self.section = self.current_mode
        self.switch_mode(SIGNED_OUT)
        for mode in list(self._screen_stacks):
            if mode in self.MODES:
                base = self._modes[mode]
                self.remove_mode(mode)
                self.add_mode(mode, base)
        self.clear_notifications()

    def _sign_out(self) -> None:
        """Nobody is logged in any more: nothing of the last user's stays on screen or in memory."""
        self._drop_screens()
        assert self.connection is not None
        self._use_gateway(self.connection.open())
        self.user = None
        self.role = "viewer"
        self.sub_title = self.server_context()

    def _enter(self, connection: "ServerConnection", login: "ServerLogin", section: str | None = None) -> None:
        """A login, whoever's: the sections are made anew for it (nothing an earlier login's screens held is
        kept), starting at `section` (by default the one the user was in)."""
        self._drop_screens()
        self._logged_in(connection, login)
        self.switch_mode(section or self.section)

    def _logged_in(self, connection: "ServerConnection", login: "ServerLogin") -> None:
        self.connection = connection
        self.user = login.username
        gateway = connection.open(lambda error: self._unauthenticated(error) if self.gateway is gateway else None)
        self._use_gateway(gateway)
        self.generation += 1
        self.sub_title = self.server_context()
        if login.admin is not None:
            self.role = "admin" if login.admin else "viewer"  # until the server names the role
        self.learn_role()

    def _use_gateway(self, gateway: "Gateway") -> None:
        """The gateway of a new identity; the one before is kept until the app ends (a run may still stream
        through it, and its key may be revoked with it)."""
        self._retired.append(self.gateway)
        self.gateway = gateway

    # ---- roles (issue 14): what the user may do greys out what they may not (screens' check_action)
    def learn_role(self) -> None:
        self.run_worker(self._learn_role(), group="role", exclusive=True, exit_on_error=False)

    async def _learn_role(self) -> None:
        from gateway_daemon.core import GatewayError

        try:
            me = await self.gateway.whoami()
        except GatewayError:
            return  # the next call says why
        self.role = me.role or ("admin" if me.admin else "viewer")
        self.refresh_bindings()
    # ---- end roles

    def show_login(self, reason: str = "", username: str = "", settle: bool = False) -> None:
        """Nobody is logged in: the Login screen over an empty one; once logged in, the sections anew.
        `settle`: it comes up uninvited, so the keys typed at the screen before it are dropped."""
        from .screens.login import LoginScreen

        connection = self.connection
        assert connection is not None
        self._sign_out()
        self._login_open = True

        def done(login: "ServerLogin | None") -> None:
            self._login_open = False
            if login is not None:
                self._enter(connection, login)

        self.push_screen(LoginScreen(connection, reason, username=username, settle=settle), done)

    def _log_in_over(self, connection: "ServerConnection", cancel: str,
                     on_login: Callable[["ServerLogin"], Any], username: str = "") -> None:
        """The Login screen over what is on screen (esc goes back to it); `on_login` once logged in."""
        from .screens.login import LoginScreen

        self._login_open = True

        def done(login: "ServerLogin | None") -> None:
            self._login_open = False
            if login is not None:  # (the Login screen is off the stack by now: the modes may go)
                on_login(login)

        self.push_screen(LoginScreen(connection, username=username, cancellable=True, cancel=cancel), done)

    def _unauthenticated(self, error: "Unauthenticated") -> None:
        """A call came back UNAUTHENTICATED: the key expired or was revoked. Log in again, then carry on."""
        if self._login_open or self.connection is None:
            return
        self._login_open = True
        self.connection.forget()
        reason = str(error).replace(": run gateway login", "")
        self.call_later(self.show_login, f"{reason[:1].upper()}{reason[1:]}: log in again.", self._known_username,
                        True)

    @property
    def _known_username(self) -> str:
        """Who is logged in, when the TUI knows the name ('' for a key from the config, which names no user)."""
        from .connection import CONFIGURED_KEY_USER

        return "" if self.user == CONFIGURED_KEY_USER else self.user or ""

    @property
    def logged_in(self) -> bool:
        """Client mode, with a user logged in (what the palette's Log out, Switch user, Change password need)."""
        return self.connection is not None and self.user is not None

    def _session_key(self) -> "tuple[Gateway | None, bool]":
        """The gateway holding this session's key (to revoke it once the session ends), and whether that key is
        the configuration's [client] api_key (never revoked by the TUI)."""
        from .connection import CONFIGURED_KEY_USER

        return (self.gateway if self.user is not None else None), self.user == CONFIGURED_KEY_USER

    def action_logout(self) -> None:
        """End this session: its key is forgotten here and revoked on the server; the Login screen comes up."""
        connection = self.connection
        if connection is None or self.user is None:
            return
        target, configured = self._session_key()
        connection.forget()
        self.show_login()
        self.section = "services"
        if configured:
            self.notify("Logged out. The [client] api_key of the configuration is not revoked: this session "
                        "no longer uses it.", timeout=6)
        else:
            self.notify(f"Logged out of {connection.address}", timeout=4)
            if target is not None:
                self.run_worker(self._revoke(target), group="revoke", exit_on_error=False)

    async def _revoke(self, target: "Gateway") -> None:
        """The key of a session that ended, revoked on the server (a key already refused is no news)."""
        from gateway_daemon.core import GatewayError, Unauthenticated

        try:
            await target.logout()
        except Unauthenticated:
            pass
        except GatewayError as exc:
            self.notify(f"The server did not revoke the API key of the session that ended: {exc}",
                        severity="warning", timeout=8)

    def action_switch_user(self) -> None:
        """Log in as another user of this server (esc keeps the current login); the current key is revoked."""
        connection = self.connection
        if connection is None or self.user is None:
            return
        target, configured = self._session_key()

        def switched(login: "ServerLogin") -> None:
            self._enter(connection, login, "services")
            self.notify(f"Logged in as {login.username}", timeout=4)
            if target is not None and not configured:
                self.run_worker(self._revoke(target), group="revoke", exit_on_error=False)

        self._log_in_over(connection, f"Stay logged in as {self.user}", switched)

    def action_change_password(self) -> None:
        if self.logged_in:
            self.run_worker(self._change_password(), group="identity", exclusive=True, exit_on_error=False)

    async def _change_password(self) -> None:
        """The logged-in user's password: the current one, the new one twice. The server revokes the user's
        other keys; this session goes on with the new key it is given."""
        from gateway_daemon.core import GatewayError

        from .connection import CONFIGURED_KEY_USER
        from .screens.login import LoginScreen

        connection = self.connection
        assert connection is not None
        username = self.user or ""
        if username == CONFIGURED_KEY_USER:  # the key from the config names no user: ask the server
            try:
                username = (await self.gateway.whoami()).username
            except GatewayError as exc:
                self.report(exc, "Cannot change the password")
                return
        self._login_open = True
        try:
            login = await self.push_screen_wait(LoginScreen(connection, username=username, change_password=True))
        finally:
            self._login_open = False
        if login is not None and self.connection is connection:
            self._logged_in(connection, login)  # the same user: the screens stay, and follow on the new key
            self.notify(f"Password changed for {login.username}; your other API keys are revoked", timeout=6)

    def action_switch_profile(self) -> None:
        """Pick a server profile from the palette; connect to it (logging in if its key is missing)."""
        from textual.command import SimpleCommand

        connection = self.connection
        if connection is None:
            self.notify("Server profiles are for client mode", severity="warning", timeout=4)
            return
        commands = []
        for profile in [None, *connection.profiles()]:
            try:
                candidate = connection.for_profile(profile)
            except Exception as exc:  # noqa: BLE001 - a bad profile is one line, not a crash
                self.report(exc, f"Profile {profile}")
                continue
            label = profile or "default ([client])"
            current = " (current)" if profile == connection.profile else ""
            commands.append(SimpleCommand(f"{label}{current}", partial(self.switch_profile, candidate),
                                          f"{candidate.address} · TLS {'on' if candidate.use_tls else 'off'}"))
        self.search_commands(commands, placeholder="Switch to which server profile?")

    def switch_profile(self, connection: "ServerConnection") -> None:
        """Another server: every section starts afresh, at the section the user was in."""
        def connected(login: "ServerLogin") -> None:
            self._enter(connection, login)
            self.notify(f"Connected to {self.server_context()}", timeout=4)

        login = connection.stored()
        if login is not None:
            connected(login)
        else:
            self._log_in_over(connection, "Stay with the server you were on", connected, self._known_username)

    # ------------------------------------------------------------ q is a letter where something is typed or chosen
    def typing(self) -> bool:
        """Whether a key here is part of something being typed or chosen: a form, an editor, an input, a
        dropdown, a dialog, a run's inputs. `q` does not quit there."""
        from textual.widgets import Input, Select, TextArea
        from textual.widgets._select import SelectOverlay

        from textual.command import CommandPalette

        screen = self.screen
        if isinstance(screen, CommandPalette):
            return False  # its search field takes the q; its Quit command stays in its list
        if isinstance(screen, ModalScreen) or getattr(screen, "opening", False) or getattr(screen, "typed_into",
                                                                                                   False):
            return True
        focused = self.focused
        return isinstance(focused, (Input, TextArea, Select, SelectOverlay)) or (
            focused is not None and isinstance(focused.parent, Select))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "quit" and self.typing():
            return False
        return True

    # ------------------------------------------------------------ the header's count of running runs
    def count_running(self) -> None:
        self.run_worker(self._count_running(), group="running", exclusive=True, exit_on_error=False)

    async def _count_running(self) -> None:
        from gateway_daemon.core import GatewayError

        if self.connection is not None and self.user is None:
            self.running = 0
            return
        try:
            runs = await self.gateway.list_runs(status="running", limit=RUNNING_LIMIT)
        except (GatewayError, AttributeError):  # the next call that matters says why; signed out: none
            return
        self.running = len(runs)

    # ------------------------------------------------------------ navigation
    def action_section(self, mode: str) -> None:
        if not self.screen_stack or isinstance(self.screen, ModalScreen):
            return
        if mode == self.current_mode:
            while len(self.screen_stack) > 1:
                self.pop_screen()
        else:
            self.switch_mode(mode)

    def open_run(self, service: str, inputs: dict[str, Any] | None = None) -> None:
        """The run form of `service` (prefilled with `inputs`), over the current section."""
        from .screens.run import RunScreen

        self.push_screen(RunScreen(service, inputs=inputs, section=self.current_mode))

    def open_run_output(self, run_id: str) -> None:
        from .screens.run import RunScreen

        self.push_screen(RunScreen(None, run_id=run_id, section=self.current_mode))

    def action_help(self) -> None:
        """The keys of the screen on top, over it (not over another help or a question)."""
        from .screens.help import HelpScreen

        if isinstance(self.screen, ModalScreen):
            return
        self.push_screen(HelpScreen(self.screen))

    def action_toggle_theme(self) -> None:
        self.theme = LIGHT if self.theme == DARK else DARK

    # ------------------------------------------------------------ notices
    def announce(self, text: str) -> None:
        """Something the gateway says while the app runs (a new secrets key made: keep a copy), as a
        notification that stays a while; it is printed again when the app ends."""
        import threading

        if not self.is_running:
            return
        if threading.get_ident() == self._thread_id:
            self._announce(text)
        else:
            self.call_from_thread(self._announce, text)

    def _announce(self, text: str) -> None:
        self.notify(text[:1].upper() + text[1:], title="Note", severity="warning", timeout=30)

    # ------------------------------------------------------------ errors
    def report(self, error: BaseException, title: str = "") -> None:
        """An error as a notification: the gateway's own one-line message, never a traceback."""
        from gateway_daemon.core import GatewayError

        from gateway_daemon.core import Unauthenticated

        if isinstance(error, Unauthenticated) and self.connection is not None:
            return  # the Login screen says it
        message = str(error) if isinstance(error, GatewayError) else f"{type(error).__name__}: {error}"
        self.notify(message, title=title or "Error", severity="error", timeout=8)

    async def on_unmount(self) -> None:
        for gateway in [*getattr(self, "_retired", []), self.gateway]:
            try:
                await gateway.close()
            except Exception:  # noqa: BLE001 - leaving: a channel that will not close is no news
                pass


def terminal_settings(config: "Config") -> tzinfo | None:
    """[terminal]: with no_color, NO_COLOR is set, so the app draws in monochrome (as Textual does for a user's
    own NO_COLOR); the zone the app shows times in (timestamp_timezone; None: this machine's)."""
    import os

    from gateway_daemon.config import time_zone

    if config.get("terminal", "no_color"):
        os.environ["NO_COLOR"] = "1"
    return time_zone(config.get("terminal", "timestamp_timezone"))


def build_app(config: "Config", messages: list[str], profile: str | None = None) -> GatewayApp:
    """The app for `config`. What the gateway announces (a new secrets key made: keep a copy) goes into
    `messages`, printed once the app ends, and shows in the app as a notification when it happens there."""
    from .formatting import short_path

    tz = terminal_settings(config)
    apps: list[GatewayApp] = []

    def announce(text: str) -> None:
        messages.append(text)
        if apps:
            apps[0].announce(text)

    if config.mode == "client":
        from .connection import KeyringConnection

        app = GatewayApp(None, mode="client", tz=tz, connection=KeyringConnection(config, profile, announce))
    else:
        if profile:
            from gateway_daemon.core import FailedPrecondition

            raise FailedPrecondition(f"--profile picks a server for client mode (this configuration is "
                                     f"mode = {config.mode})")
        if config.mode != "local":  # a daemon's configuration: said before any screen
            from gateway_daemon.bootstrap import check_gateway_mode

            check_gateway_mode(config)

        async def open_engine() -> "Gateway":  # once the first screen is drawn (OpeningGateway)
            from gateway_daemon.bootstrap import open_gateway

            return await open_gateway(config, announce=announce)

        gateway = OpeningGateway(open_engine)
        context = f"{config.mode} mode · {short_path(str(config.data_dir))}"
        app = GatewayApp(gateway, context, mode=config.mode, tz=tz)
    apps.append(app)
    return app


def run_app(config: "Config", profile: str | None = None) -> int:
    messages: list[str] = []
    app = build_app(config, messages, profile)
    app.own_process = True
    app.run()
    for line in messages:
        print(line)
    if app.open_error is not None:  # said as any error before the app starts is (gateway_tui.cli)
        raise app.open_error
    return app.return_code or 0
