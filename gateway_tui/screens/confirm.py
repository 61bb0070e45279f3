"""A yes/no question over the current screen, for anything that cannot be undone; and delete after a yes."""

from __future__ import annotations

from typing import Awaitable, Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import HorizontalGroup, VerticalGroup
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Label, Static

from gateway_daemon.core import GatewayError


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True only on an explicit yes; Cancel has the focus."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", tooltip="Confirm"),
        Binding("n,escape", "answer(False)", "No", tooltip="Cancel"),
    ]

    def __init__(self, title: str, message: str, confirm: str = "Delete"):
        super().__init__()
        self.title_text = title
        self.message = message
        self.confirm = confirm

    def compose(self) -> ComposeResult:
        with VerticalGroup(id="dialog"):
            yield Label(Content(self.title_text), id="dialog-title")
            yield Static(Content(self.message), id="dialog-message")
            with HorizontalGroup(id="dialog-buttons"):
                yield Button(f"{self.confirm} (y)", variant="error", id="yes")
                yield Button("Cancel (n)", variant="default", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class UnsavedScreen(ModalScreen[str]):
    """A form with changes is being left: save ("save"), discard them ("discard") or keep editing ("keep")."""

    BINDINGS = [
        Binding("s", "answer('save')", "Save", tooltip="Save the form, then leave"),
        Binding("d", "answer('discard')", "Discard", tooltip="Leave without saving: the changes are lost"),
        Binding("k,escape", "answer('keep')", "Keep editing", tooltip="Back to the form"),
    ]

    def __init__(self, title: str):
        super().__init__()
        self.title_text = title

    def compose(self) -> ComposeResult:
        with VerticalGroup(id="dialog"):
            yield Label(Content(self.title_text), id="dialog-title")
            yield Static(Content("It has changes that are not saved."), id="dialog-message")
            with HorizontalGroup(id="dialog-buttons"):
                yield Button("Save (s)", variant="primary", id="save")
                yield Button("Discard (d)", variant="error", id="discard")
                yield Button("Keep editing (k)", variant="default", id="keep")

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id or "keep")

    def action_answer(self, answer: str) -> None:
        self.dismiss(answer)


def ask_to_delete(screen: Screen, kind: str, noun: str, name: str,
                  deleted: Callable[[], Awaitable[None] | None]) -> None:
    """Ask for a yes, then delete and call `deleted`; errors become notifications. The question is on screen
    before the next key is read (a `y` typed at once answers it)."""
    async def answered(confirmed: bool | None) -> None:
        if not confirmed:
            return
        try:
            await screen.app.gateway.delete(kind, name)  # type: ignore[attr-defined]
        except GatewayError as exc:
            screen.app.report(exc, f"Cannot delete {noun} {name}")  # type: ignore[attr-defined]
            return
        screen.app.notify(f"Deleted {noun} {name}", timeout=3)
        result = deleted()
        if result is not None:
            await result

    screen.app.push_screen(
        ConfirmScreen(f"Delete {noun} {name}?", f"The {noun} '{name}' will be deleted. This cannot be undone."),
        answered)
