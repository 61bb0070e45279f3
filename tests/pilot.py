"""What the TUI tests do with Textual's pilot: open the TUI in client mode, wait for a state, type into a field,
read a table."""

from __future__ import annotations

import time
from typing import Callable

from textual.widgets import Input

from gateway_tui.widgets.resource_table import ResourceTable


def client_app(client):
    """The TUI in client mode with `client`'s config (a gateway_server.Client), its key from the keyring."""
    from gateway_daemon.config import load_config
    from gateway_tui.app import GatewayApp
    from gateway_tui.connection import KeyringConnection

    config = load_config(str(client.config), environ={})
    return GatewayApp(None, mode="client", connection=KeyringConnection(config))


def app_state(app) -> str:
    """What the app shows, for a failure's message: its screens, the focus, a screen's reason or error line, the
    notifications."""
    parts = [f"screens {[type(screen).__name__ for screen in app.screen_stack]}", f"focused {app.focused!r}"]
    for name in ("reason", "error"):
        value = getattr(app.screen, name, None) if app.screen_stack else None
        if isinstance(value, str) and value:
            parts.append(f"{name} {value!r}")
    parts += [f"notification {note.message!r}" for note in app._notifications]
    return "; ".join(parts)


async def until(pilot, condition: Callable[[], object], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition} ({app_state(pilot.app)})")
        await pilot.pause(0.02)


async def type_into(pilot, selector: str, text: str) -> None:
    widget = pilot.app.screen.query_one(selector, Input)
    widget.focus()
    widget.value = ""
    await pilot.press(*text)


def table_keys(app) -> list[str]:
    return app.screen.query_one(ResourceTable).shown_keys


def cell(app, key: str, column: str, selector: str = "ResourceTable") -> str | None:
    """The text in the row `key`, column `column`, of the table on screen (None when the row is not there)."""
    table = app.screen.query_one(selector, ResourceTable)
    row = table.row(key)
    if row is None:
        return None
    return row.cells[[c.key for c in table.columns].index(column)]
