"""Services: the home screen, a table of every service."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from gateway_daemon.core import GatewayError

COLUMNS = ("Name", "Type", "Repository", "Decorator", "Tags", "Description")


class ServicesScreen(Screen):
    BINDINGS = [Binding("ctrl+r", "refresh", "Refresh")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="hint", classes="empty-hint")
        yield DataTable(id="services", cursor_type="row", zebra_stripes=True)
        yield Footer()

    async def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*COLUMNS)
        await self.action_refresh()

    async def action_refresh(self) -> None:
        table = self.query_one(DataTable)
        hint = self.query_one("#hint", Static)
        try:
            services = await self.app.gateway.list("service")
        except GatewayError as exc:
            self.notify(str(exc), severity="error", title="Cannot list services")
            return
        table.clear()
        for service in services:
            table.add_row(service.name, service.type, service.repository, service.decorator or "-",
                          ", ".join(service.tags) or "-", service.description or "", key=service.name)
        hint.update(
            "" if services else
            "No services yet. Create one with: gateway create repository NAME --url URL, "
            "then gateway create service python-script NAME --repository REPO --filename main.py"
        )
        hint.display = not services
