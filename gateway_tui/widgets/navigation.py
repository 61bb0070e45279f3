"""The strip under the header naming every section and its key."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import HorizontalGroup
from textual.widgets import Static

# (mode, key, label); the app binds the keys and the palette lists them.
SECTIONS = (
    ("services", "1", "Services"),
    ("runs", "2", "Runs"),
    ("repositories", "3", "Repositories"),
    ("decorators", "4", "Decorators"),
    ("secrets", "5", "Secrets"),
    ("users", "6", "Users"),
    ("runners", "7", "Runners"),
)
# Shown in the strip only while it is the current section (reached with its key; for admins on a server).
# Registries and executable objects: reached with their key or from the palette (PALETTE_SECTIONS).
PALETTE_SECTIONS = (("registries", "9", "Registries"), ("executables", "0", "Executables"))
EXTRA_SECTIONS = (("audit", "8", "Audit"), *PALETTE_SECTIONS)
# Labels for a strip too narrow for the whole words (80 columns).
SHORT_LABELS = {"repositories": "Repos"}


class NavItem(Static):
    DEFAULT_CSS = """
    NavItem {
        width: auto;
        padding: 0 1;
        color: $text-muted;
        &:hover { background: $boost; color: $text; }
        &.-active { background: $primary; color: $text; text-style: bold; }
        &.-unavailable { color: $text-disabled; text-style: italic; }
        &.-unavailable.-active { background: $panel-lighten-1; color: $text-muted; }
    }
    """

    def __init__(self, mode: str, key: str, label: str, active: bool, disabled_reason: str = ""):
        classes = "-active" if active else ""
        if disabled_reason:
            classes += " -unavailable"
        super().__init__(f"[b]{key}[/b] {label}", classes=classes, markup=True)
        self.mode = mode
        self.nav_key, self.nav_label = key, label
        self.short = False
        if disabled_reason:
            self.tooltip = disabled_reason

    def shorten(self, short: bool) -> None:
        if short != self.short:
            self.short = short
            label = SHORT_LABELS.get(self.mode, self.nav_label) if short else self.nav_label
            self.update(f"[b]{self.nav_key}[/b] {label}")

    @staticmethod
    def width_for(key: str, label: str) -> int:
        return len(key) + 1 + len(label) + 2  # with its padding

    def on_click(self) -> None:
        self.app.action_section(self.mode)  # type: ignore[attr-defined]


class NavBar(HorizontalGroup):
    """`1 Services  2 Runs  …`, the current section highlighted."""

    DEFAULT_CSS = """
    NavBar {
        height: 1;
        background: $panel;
        padding: 0 1;
    }
    """

    def __init__(self, active: str):
        super().__init__(id="nav")
        self.active = active

    def compose(self) -> ComposeResult:
        unavailable = getattr(self.app, "unavailable_sections", {})
        for mode, key, label in self.sections:
            yield NavItem(mode, key, label, mode == self.active, unavailable.get(mode, ""))

    @property
    def sections(self) -> tuple[tuple[str, str, str], ...]:
        return SECTIONS + tuple(s for s in EXTRA_SECTIONS if s[0] == self.active)

    def on_resize(self) -> None:
        full = sum(NavItem.width_for(key, label) for _mode, key, label in self.sections)
        short = full > self.content_size.width
        for item in self.query(NavItem):
            item.shorten(short)
