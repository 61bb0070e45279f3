"""The operator's terminal UI. It talks only to the Gateway interface."""

from __future__ import annotations

import time
from functools import partial
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, Callable

from textual.app import App
from textual.binding import Binding
from textual.screen import ModalScreen

from .commands import GatewayCommands
from .screens.audit import AuditScreen
from .screens.decorators import DecoratorsScreen
from .screens.executables import ExecutablesScreen
from .screens.registries import RegistriesScreen
from .screens.repositories import RepositoriesScreen
from .screens.runners import RunnersScreen
from .screens.runs import RunsScreen
from .screens.secrets import SecretsScreen
from .screens.services import ServicesScreen
from .screens.users import UserListScreen, UsersScreen
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

_NAVIGATION = Binding.Group("Go to", compact=True)


class GatewayApp(App):
    TITLE = "Automation Gateway"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {GatewayCommands}
    MODES = {
        "services": ServicesScreen,
        "runs": RunsScreen,
        "repositories": RepositoriesScreen,
        "decorators": DecoratorsScreen,
        "secrets": SecretsScreen,
        "users": UsersScreen,
        "runners": RunnersScreen,
        "audit": AuditScreen,
        "registries": RegistriesScreen,
        "executables": ExecutablesScreen,
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
    ]

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
        self.user: str | None = None
        self.role = "admin"  # the logged-in user's role (core.policy); local mode: everything
        self.generation = 0  # a new one with every login: screens restart what they follow
        self._login_open = False
        if connection is None:
            self.gateway = gateway
            self.unavailable_sections = ({"users": USERS_UNAVAILABLE, "runners": RUNNERS_UNAVAILABLE,
                                          "audit": AUDIT_UNAVAILABLE}
                                         if mode == "local" else {})
        else:
            from .connection import SessionGateway

            self.gateway_mode = "client"
            self.gateway = SessionGateway(self._unauthenticated)
            self.unavailable_sections = {}
            # Against a server the Users section is the real list. (remove_mode needs a running loop; this is
            # before one, and the mode has no screens yet.)
            self._modes["users"] = UserListScreen

    def on_mount(self) -> None:
        if self.connection is None:
            self.switch_mode("services")
            return
        login = self.connection.stored()
        if login is None:
            self.show_login()
        else:
            self._logged_in(self.connection, login)
            self.switch_mode("services")

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

    def _logged_in(self, connection: "ServerConnection", login: "ServerLogin") -> None:
        self.connection = connection
        self.user = login.username
        self.gateway.swap(connection.open())  # type: ignore[union-attr]
        self.generation += 1
        self.sub_title = self.server_context()
        self.learn_role()

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

    def show_login(self, reason: str = "", connection: "ServerConnection | None" = None,
                   on_done: Callable[["ServerLogin | None"], Any] | None = None) -> None:
        """The Login screen over whatever is on screen; once logged in, back to it."""
        from .screens.login import LoginScreen

        target = connection or self.connection
        assert target is not None
        first = self.user is None and connection is None
        switching = connection is not None
        if not switching:
            self.sub_title = self.server_context()
        self._login_open = True

        def done(login: "ServerLogin | None") -> None:
            self._login_open = False
            if login is not None:
                self._logged_in(target, login)
            if on_done is not None:
                on_done(login)
            elif first and login is not None:
                self.switch_mode("services")

        from .connection import CONFIGURED_KEY_USER

        username = "" if self.user == CONFIGURED_KEY_USER else self.user or ""
        self.push_screen(LoginScreen(target, reason, username=username, cancellable=switching), done)

    def _unauthenticated(self, error: "Unauthenticated") -> None:
        """A call came back UNAUTHENTICATED: the key expired or was revoked. Log in again, then carry on."""
        if self._login_open or self.connection is None:
            return
        self._login_open = True
        self.connection.forget()
        reason = str(error).replace(": run gateway login", "")
        self.call_later(self.show_login, f"{reason[:1].upper()}{reason[1:]}: log in again.")

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
        login = connection.stored()
        if login is not None:
            self._logged_in(connection, login)
            self._reset_screens()
            return

        def done(login: "ServerLogin | None") -> None:
            if login is not None:
                self.call_later(self._reset_screens)

        self.show_login(connection=connection, on_done=done)

    def _reset_screens(self) -> None:
        """Another server: every section starts afresh from its list."""
        self.notify(f"Connected to {self.server_context()}", timeout=4)
        for mode in list(self._screen_stacks):
            if mode not in (self.current_mode, "_default") and mode in self.MODES:
                base = UserListScreen if mode == "users" else self.MODES[mode]  # noqa: SIM108
                self.remove_mode(mode)
                self.add_mode(mode, base)
        if len(self.screen_stack) > 1:
            while len(self.screen_stack) > 1:
                self.pop_screen()  # the section's list resumes, and reloads
        else:
            resume = getattr(self.screen, "on_screen_resume", None)
            if resume is not None:
                self.call_later(resume)

    # ------------------------------------------------------------ navigation
    def action_section(self, mode: str) -> None:
        if isinstance(self.screen, ModalScreen):
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

    def action_toggle_theme(self) -> None:
        self.theme = LIGHT if self.theme == DARK else DARK

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
        await self.gateway.close()


def terminal_settings(config: "Config") -> tzinfo | None:
    """[terminal]: with no_color, NO_COLOR is set, so the app draws in monochrome (as Textual does for a user's
    own NO_COLOR); the zone the app shows times in (timestamp_timezone; None: this machine's)."""
    import os

    from gateway_daemon.config import time_zone

    if config.get("terminal", "no_color"):
        os.environ["NO_COLOR"] = "1"
    return time_zone(config.get("terminal", "timestamp_timezone"))


def run_app(config: "Config", profile: str | None = None) -> int:
    import asyncio

    from gateway_daemon.bootstrap import open_gateway

    from .formatting import short_path

    tz = terminal_settings(config)
    messages: list[str] = []
    if config.mode == "client":
        from .connection import KeyringConnection

        app = GatewayApp(None, mode="client", tz=tz,
                         connection=KeyringConnection(config, profile, messages.append))
    else:
        if profile:
            from gateway_daemon.core import FailedPrecondition

            raise FailedPrecondition(f"--profile picks a server for client mode (this configuration is "
                                     f"mode = {config.mode})")
        gateway = asyncio.run(open_gateway(config, announce=messages.append))
        context = f"{config.mode} mode · {short_path(str(config.data_dir))}"
        app = GatewayApp(gateway, context, mode=config.mode, tz=tz)
    app.run()
    for line in messages:
        print(line)
    return app.return_code or 0
