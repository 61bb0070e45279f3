"""The operator's terminal UI. It talks only to the Gateway interface."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import App
from textual.binding import Binding

from .screens.services import ServicesScreen

if TYPE_CHECKING:
    from gateway_daemon.config import Config
    from gateway_daemon.core import Gateway


class GatewayApp(App):
    TITLE = "Automation Gateway"
    CSS_PATH = "app.tcss"
    BINDINGS = [Binding("q", "quit", "Quit"), Binding("ctrl+t", "toggle_theme", "Theme")]

    def __init__(self, gateway: "Gateway", context: str):
        super().__init__()
        self.gateway = gateway
        self.sub_title = context

    def on_mount(self) -> None:
        self.push_screen(ServicesScreen())

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    async def on_unmount(self) -> None:
        await self.gateway.close()


def run_app(config: "Config") -> int:
    import asyncio

    from gateway_daemon.bootstrap import open_gateway

    messages: list[str] = []
    gateway = asyncio.run(open_gateway(config, announce=messages.append))
    context = f"{config.mode} mode · {config.data_dir}"
    app = GatewayApp(gateway, context)
    app.run()
    for line in messages:
        print(line)
    return app.return_code or 0
