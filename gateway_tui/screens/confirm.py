"""A yes/no question over the current screen, for anything that cannot be undone; and delete after a yes."""

from __future__ import annotations

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


async def confirm_and_delete(screen: Screen, kind: str, noun: str, name: str) -> bool:
    """Ask for a yes, then delete; errors become notifications. True when deleted. Call from a worker."""
    confirmed = await screen.app.push_screen_wait(
        ConfirmScreen(f"Delete {noun} {name}?", f"The {noun} '{name}' will be deleted. This cannot be undone.")
    )
    if not confirmed:
        return False
    try:
        await screen.app.gateway.delete(kind, name)  # type: ignore[attr-defined]
    except GatewayError as exc:
        screen.app.report(exc, f"Cannot delete {noun} {name}")  # type: ignore[attr-defined]
        return False
    screen.notify(f"Deleted {noun} {name}", timeout=3)
    return True
