"""`?`: the keys of the screen underneath, read from its own bindings (so the list stays true), over it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static

from ..widgets.navigation import EXTRA_SECTIONS, SECTIONS

_SECTION_KEYS = {key for _mode, key, _label in SECTIONS + EXTRA_SECTIONS}
_NAMES = {"⏎": "enter", "↑": "up", "↓": "down", "←": "left", "→": "right"}


def key_name(display: str) -> str:
    """A key as the help reads it: 'ctrl+r' for Textual's '^r', 'enter' for '⏎'."""
    if display.startswith("^") and len(display) > 1:
        return f"ctrl+{display[1:]}"
    return _NAMES.get(display, display)


# Textual's own keys of every screen (focus next/previous, copy): the same everywhere, left out
_UNIVERSAL = {"app.focus_next", "app.focus_previous", "screen.copy_text"}


def screen_keys(screen: Screen) -> list[tuple[str, list[tuple[str, str]]]]:
    """The keys active on `screen`, from its bindings, as (group title, [(keys, what they do)]): the screen's
    own first, then those of the widget in focus (moving around in it), then the app's. Keys that do the same
    share a line ('up k'); the section keys are left out (the help names them on one line)."""
    app = screen.app
    groups: dict[str, dict[str, list[str]]] = {"This screen": {}, "Moving around": {}, "Everywhere": {}}
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if (not binding.description or key in _SECTION_KEYS or not active.enabled or binding.system
                or binding.action in _UNIVERSAL):
            continue
        what = binding.tooltip or binding.description
        group = "Everywhere" if active.node is app else "This screen" if active.node is screen else "Moving around"
        names = groups[group].setdefault(what, [])
        name = key_name(app.get_key_display(binding))
        if name not in names:
            names.append(name)
    return [(title, [(" ".join(names), what) for what, names in entries.items()])
            for title, entries in groups.items() if entries]


class HelpScreen(ModalScreen[None]):
    """The keys of the screen under it; any of esc, q, ? or enter closes it."""

    BINDINGS = [Binding("escape,question_mark,q,enter", "close", "Close", tooltip="Close the help")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    #help {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        padding: 0 1; border: round $primary; border-title-color: $text-primary; background: $surface;
    }
    #help-keys { height: auto; }
    #help-hint { color: $text-muted; height: 1; }
    """

    def __init__(self, below: Screen):
        super().__init__()
        self.groups = screen_keys(below)
        self.title_text = f"Keys: {getattr(below, 'SECTION', '') or 'this screen'}"

    def compose(self) -> ComposeResult:
        lines: list[Content] = []
        width = min(16, max((len(key) for _, entries in self.groups for key, _ in entries), default=4)) + 2

        def block(title: str, entries: list[tuple[str, str]]) -> None:
            if not entries:
                return
            if lines:
                lines.append(Content(""))
            lines.append(Content.styled(title, "bold"))
            for key, what in entries:
                lines.append(Content.assemble((key.ljust(width), "bold $text-accent"), what))

        for title, entries in self.groups:
            block(title, entries)
        lines += [Content(""), Content.styled("Sections", "bold"),
                  Content("  ".join(f"{key} {label}" for _mode, key, label in SECTIONS + EXTRA_SECTIONS))]
        with VerticalScroll(id="help") as box:
            box.border_title = self.title_text
            yield Static(Content("\n").join(lines), id="help-keys")
            yield Label("esc or ? closes this", id="help-hint")

    def action_close(self) -> None:
        self.dismiss(None)
