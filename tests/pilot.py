"""What the TUI tests do with Textual's pilot: wait for a state, type into a field, read a table."""

from __future__ import annotations

import time
from typing import Callable

from textual.widgets import Input

from gateway_tui.widgets.resource_table import ResourceTable


async def until(pilot, condition: Callable[[], object], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.02)


async def type_into(pilot, selector: str, text: str) -> None:
    widget = pilot.app.screen.query_one(selector, Input)
    widget.focus()
    widget.value = ""
    await pilot.press(*text)


def table_keys(app) -> list[str]:
    return app.screen.query_one(ResourceTable).shown_keys
