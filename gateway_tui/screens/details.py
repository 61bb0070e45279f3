"""One resource, read only: its fields, and what to do with it."""

from __future__ import annotations

from typing import Any, ClassVar, Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Label, Static

from gateway_daemon.core import GatewayError

from .base import SectionScreen
from .confirm import ask_to_delete


def field_lines(pairs: Iterable[tuple[str, Any]], width: int = 16) -> Content:
    """`key  value` lines, keys muted and aligned."""
    lines = []
    for key, value in pairs:
        text = value if isinstance(value, str) else ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        lines.append(Content.styled(key.ljust(width), "$foreground-muted") + Content(text or "—"))
    return Content("\n").join(lines)


class DetailsScreen(SectionScreen):
    """One resource, read only: its fields, and what to do with it."""

    BINDINGS = [
        Binding("e", "edit", "Edit", tooltip="Edit this resource"),
        Binding("d", "delete", "Delete", tooltip="Delete this resource"),
        Binding("escape", "back", "Back", tooltip="Back to the list"),
    ]
    KIND: ClassVar[str] = ""
    NOUN: ClassVar[str] = ""

    def __init__(self, name: str):
        super().__init__()
        self.name_ = name
        self.resource: Any = None

    def compose_body(self) -> ComposeResult:
        yield Label(Content(f"{self.NOUN.capitalize()} {self.name_}"), id="details-title")
        with VerticalScroll(id="details"):
            yield Static("", id="fields")
            yield from self.compose_extra()

    def compose_extra(self) -> ComposeResult:
        yield from ()

    def pairs(self, resource: Any) -> Iterable[tuple[str, Any]]:
        raise NotImplementedError

    async def on_screen_resume(self) -> None:
        await self.load()

    async def load(self) -> None:
        if not self.showing:
            return
        try:
            self.resource = await self.gateway.get(self.KIND, self.name_)
        except GatewayError as exc:
            self.report(exc, f"Cannot show {self.NOUN} {self.name_}")
            if self.is_current:
                self.dismiss()
            return
        if not self.showing:
            return
        self.query_one("#fields", Static).update(field_lines(self.pairs(self.resource)))
        await self.load_extra()

    async def load_extra(self) -> None:
        pass

    def form(self) -> Screen:
        raise NotImplementedError

    def action_edit(self) -> None:
        if self.resource is not None:
            self.app.push_screen(self.form())

    def action_delete(self) -> None:
        def deleted() -> None:
            if self.is_current:
                self.dismiss()

        ask_to_delete(self, self.KIND, self.NOUN, self.name_, deleted)

    def action_back(self) -> None:
        self.dismiss()
