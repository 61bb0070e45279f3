"""The operator's terminal UI. It talks only to the Gateway interface."""

from __future__ import annotations

import time
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, Callable

from textual.app import App
from textual.binding import Binding
from textual.screen import ModalScreen

from .commands import GatewayCommands
from .screens.decorators import DecoratorsScreen
from .screens.repositories import RepositoriesScreen
from .screens.runs import RunsScreen
from .screens.secrets import SecretsScreen
from .screens.services import ServicesScreen
from .screens.users import UsersScreen
from .widgets.navigation import SECTIONS

if TYPE_CHECKING:
    from gateway_daemon.config import Config
    from gateway_daemon.core import Gateway

USERS_UNAVAILABLE = ("User management exists only against a gateway server (client mode); "
                     "local mode has no users and no login.")
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
    }
    BINDINGS = [
        *(Binding(key, f"section('{mode}')", label, tooltip=f"Go to {label}", group=_NAVIGATION)
          for mode, key, label in SECTIONS),
        Binding("ctrl+t", "toggle_theme", "Theme", tooltip="Switch between the dark and the light theme"),
        Binding("q", "quit", "Quit", tooltip="Quit the gateway"),
    ]

    def __init__(self, gateway: "Gateway", context: str, *, mode: str = "local", tz: tzinfo | None = None,
                 clock: Callable[[], float] = time.time, theme: str = DARK):
        """`context` is the header's second line (mode and data dir); `tz` and `clock` fix how times show."""
        super().__init__()
        self.gateway = gateway
        self.sub_title = context
        self.gateway_mode = mode
        self.tz = tz
        self.clock = clock
        self.theme = theme
        self.unavailable_sections = {"users": USERS_UNAVAILABLE} if mode == "local" else {}

    def on_mount(self) -> None:
        self.switch_mode("services")

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

        message = str(error) if isinstance(error, GatewayError) else f"{type(error).__name__}: {error}"
        self.notify(message, title=title or "Error", severity="error", timeout=8)

    async def on_unmount(self) -> None:
        await self.gateway.close()


def run_app(config: "Config") -> int:
    import asyncio

    from gateway_daemon.bootstrap import open_gateway

    from .formatting import short_path

    messages: list[str] = []
    gateway = asyncio.run(open_gateway(config, announce=messages.append))
    context = f"{config.mode} mode · {short_path(str(config.data_dir))}"
    app = GatewayApp(gateway, context, mode=config.mode)
    app.run()
    for line in messages:
        print(line)
    return app.return_code or 0
